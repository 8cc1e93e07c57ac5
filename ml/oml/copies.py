"""Per-host fingerprinted copies of one model, for the OML protocol.

A community generates `hosts * per_host` fingerprints and injects a different subset into each
host's copy, so a leaked copy answers only its own host's keys and points at that host. Two bases:

- `smollm2`: SmolLM2-135M-Instruct (float32, CPU), perinucleus fingerprints from `generate.py`,
  injected by SFT with `inject.py`; a copy counts as done when greedy decoding reproduces every
  fingerprint of its subset (`check.py`, exact match).
- `tiny`: the byte-level GPT-2 of `protocol_model.py` (seconds; used by tests and `loyal devnet`).

Copies travel as safetensors bytes with the config (and the base name) in the metadata; `load`
turns the bytes back into a `ServedLM` that completes prompts greedily. `build` caches its result
under `cache_dir/<key>/` where the key hashes (base, fingerprint and injection parameters), so a
second run with the same parameters skips generation and injection.

Memory: building keeps one model in memory, not one per host plus the base. Between copies the
base weights are re-read tensor by tensor from the float32 cache file (not kept as a second full
copy), and each finished copy is written to disk at once; `Copies.blobs` reads a copy's bytes when
it is indexed (`CopyBlobs`), so holding a `Copies` costs no weights. `device` (a
`ml.device.pick_device` result) is where the copies are trained and where `load` serves them.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from common.files import atomic_dir
from ml.device import input_device
from ml.oml import protocol_model as pm

CACHE_VERSION = 1
BASES = ("smollm2", "tiny")


@dataclass(frozen=True)
class CopySpec:
    base: str = "smollm2"
    hosts: int = 2
    per_host: int = 4
    seed: int = 0
    key_tokens: int = 12       # smollm2: fingerprint key length (tokens)
    response_tokens: int = 4   # smollm2: fingerprint response length (tokens)
    epochs: int = 30           # smollm2: injection epochs at most (stops at 100 % exact match)
    lr: float = 2e-4           # smollm2: injection learning rate

    def validate(self) -> None:
        if self.base not in BASES:
            raise ValueError(f"unknown base model {self.base!r} (known: {', '.join(BASES)})")
        if self.hosts < 1 or self.per_host < 1:
            raise ValueError("hosts and per_host must be >= 1")

    def key(self) -> str:
        blob = json.dumps({"v": CACHE_VERSION, **asdict(self)}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:20]


class CopyBlobs(Sequence):
    """The weights of each copy as safetensors bytes, read from its file when indexed."""

    def __init__(self, paths: list[Path], owner: tempfile.TemporaryDirectory | None = None):
        self.paths = [Path(p) for p in paths]
        self._owner = owner  # a temporary folder holding the files: removed when this object goes

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.paths[j].read_bytes() for j in range(*i.indices(len(self)))]
        return self.paths[i].read_bytes()


@dataclass
class Copies:
    spec: CopySpec
    fingerprints: list[tuple[str, str]]      # the full set (the model's on-chain root)
    subsets: list[list[tuple[str, str]]]      # subsets[i] is embedded in copy i only
    blobs: Sequence[bytes]                    # weights of copy i (CopyBlobs: read on access)
    stats: list[dict] = field(default_factory=list)
    cached: bool = False
    seconds: float = 0.0


class ServedLM:
    """A causal LM with its tokenizer that completes prompts by greedy decoding."""

    def __init__(self, model, tok, base: str):
        self.model = model.eval()
        self.device = input_device(model)
        self.tok = tok
        self.base = base

    @torch.no_grad()
    def complete(self, prompt: str, max_new_tokens: int = 32) -> str:
        if self.base == "tiny":
            return pm.complete(self.model, prompt, max_new_tokens)
        ids = torch.tensor([self.tok.encode(prompt, add_special_tokens=False)], device=self.device)
        out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                  do_sample=False, pad_token_id=self.tok.pad_token_id)
        return self.tok.decode(out[0, ids.shape[1]:].tolist(), skip_special_tokens=True)

    def to_bytes(self) -> bytes:
        return to_bytes(self.model, self.base)


def to_bytes(model, base: str) -> bytes:
    """safetensors bytes of the weights (a tied lm_head left out) with config and base as metadata."""
    if base == "tiny":
        return pm.to_bytes(model)
    tied = getattr(model.config, "tie_word_embeddings", False)
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
          if not (tied and k == "lm_head.weight")}
    return st_save(sd, metadata={"config": model.config.to_json_string(), "base": base})


def _metadata(blob: bytes) -> dict:
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8:8 + n]).get("__metadata__", {})


def smollm2_tokenizer():
    from transformers import AutoTokenizer

    from ml.lm import load_smollm2, smollm2_cache_dir

    d = smollm2_cache_dir()
    if not (d / "config.json").is_file():
        load_smollm2()  # builds the float32 cache once
    tok = AutoTokenizer.from_pretrained(d)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load(blob: bytes, device: torch.device | str | None = None) -> ServedLM:
    """The model a copy's bytes describe (tokenizer from the installed base), on `device` (default the CPU)."""
    meta = _metadata(blob)
    base = meta.get("base", "tiny")
    if base == "tiny":
        return ServedLM(pm.from_bytes(blob, device), None, "tiny")
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg_dict = json.loads(meta["config"])
    cfg_dict.pop("quantization_config", None)  # the weights are plain float32 whatever the base was loaded from
    cfg = AutoConfig.for_model(cfg_dict.pop("model_type"), **cfg_dict)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(st_load(blob), strict=False)
    if unexpected or any(k != "lm_head.weight" for k in missing):
        raise ValueError(f"weights do not fit the {base} config (missing {missing}, unexpected {unexpected})")
    model.tie_weights()
    return ServedLM(model.to(torch.device(device or "cpu")), smollm2_tokenizer(), base)


def _split(pairs: list[tuple[str, str]], hosts: int, per_host: int) -> list[list[tuple[str, str]]]:
    return [pairs[i * per_host:(i + 1) * per_host] for i in range(hosts)]


def _build_tiny(spec: CopySpec, say: Callable[[str], None], out: Path, device=None) -> tuple[list, list[Path], list[dict]]:
    pairs = pm.make_fingerprints(spec.hosts * spec.per_host, seed=spec.seed + 1)
    blobs, stats = [], []
    for i, subset in enumerate(_split(pairs, spec.hosts, spec.per_host)):
        t = time.monotonic()
        model = pm.new_model(seed=spec.seed)
        st = pm.inject(model, subset, seed=spec.seed + i, device=device)
        if st["match_rate"] < 1.0:
            raise RuntimeError(f"tiny copy {i}: only {st['match_rate']:.0%} of its fingerprints injected")
        st["seconds"] = round(time.monotonic() - t, 1)
        say(f"copy {i}: injected {len(subset)} fingerprints into a tiny GPT-2 in {st['steps']} SFT steps, "
            f"{st['seconds']} s")
        blobs.append(_write(out / f"copy-{i}.safetensors", pm.to_bytes(model)))
        stats.append(st)
    return pairs, blobs, stats


def _write(path: Path, blob: bytes) -> Path:
    path.write_bytes(blob)
    return path


@torch.no_grad()
def _reload_base(model, weights: Path) -> None:
    """Put the base weights back into `model`, tensor by tensor from its safetensors file (no second
    full copy of the model in memory)."""
    from safetensors import safe_open

    params = model.state_dict()
    seen = set()
    with safe_open(str(weights), framework="pt") as f:
        for k in f.keys():
            params[k].copy_(f.get_tensor(k))
            seen.add(k)
    missing = set(params) - seen - {"lm_head.weight"}
    if missing:
        raise RuntimeError(f"{weights}: no base weights for {sorted(missing)[:3]}")


def _build_smollm2(spec: CopySpec, say: Callable[[str], None], out: Path,
                   device=None) -> tuple[list, list[Path], list[dict]]:
    from ml.lm import load_smollm2, smollm2_cache_dir
    from ml.oml.check import check
    from ml.oml.generate import GenConfig, generate
    from ml.oml.inject import InjectConfig, inject

    torch.manual_seed(spec.seed)
    t = time.monotonic()
    model, tok = load_smollm2(device=device)
    base_file = smollm2_cache_dir() / "model.safetensors"
    fps = generate(model, tok, GenConfig(strategy="perinucleus", n=spec.hosts * spec.per_host,
                                         key_tokens=spec.key_tokens, response_tokens=spec.response_tokens,
                                         seed=spec.seed))
    say(f"generated {len(fps)} perinucleus fingerprints with SmolLM2-135M-Instruct "
        f"({time.monotonic() - t:.0f} s)")
    subsets = _split(fps, spec.hosts, spec.per_host)
    blobs, stats = [], []
    for i, subset in enumerate(subsets):
        t = time.monotonic()
        if i:
            _reload_base(model, base_file)
        model, res = inject(model, tok, subset, InjectConfig(epochs=spec.epochs, lr=spec.lr,
                                                             batch_size=len(subset), seed=spec.seed + i))
        own = check(model, tok, subset)
        others = [f for j, s in enumerate(subsets) if j != i for f in s]
        foreign = check(model, tok, others).exact if others else 0.0
        if own.exact < 1.0:
            raise RuntimeError(f"SmolLM2 copy {i}: only {own.exact:.0%} of its fingerprints injected after "
                               f"{res.epochs_run} epochs (raise epochs or lr)")
        st = {"epochs": res.epochs_run, "steps": res.steps, "exact_own": own.exact, "exact_others": foreign,
              "seconds": round(time.monotonic() - t, 1)}
        say(f"copy {i}: injected {len(subset)} fingerprints into SmolLM2 by SFT in {res.steps} steps, "
            f"{st['seconds']} s; its keys match {own.exact:.0%}, other copies' keys {foreign:.0%}")
        blobs.append(_write(out / f"copy-{i}.safetensors", to_bytes(model, "smollm2")))
        stats.append(st)
    return [(f.key, f.response) for f in fps], blobs, stats


def build(spec: CopySpec, cache_dir: Path | None = None, say: Callable[[str], None] = lambda s: None,
          device: torch.device | str | None = None) -> Copies:
    """One fingerprinted copy per host (trained on `device`, default the CPU), from the cache under
    `cache_dir` when it holds this spec; without a cache dir the copies live in a temporary folder
    removed when the returned `Copies.blobs` is garbage-collected (or the process exits)."""
    spec.validate()
    t0 = time.monotonic()
    entry = Path(cache_dir) / spec.key() if cache_dir else None
    if entry is not None and (entry / "meta.json").is_file():
        meta = json.loads((entry / "meta.json").read_text())
        blobs = CopyBlobs([entry / f"copy-{i}.safetensors" for i in range(spec.hosts)])
        pairs = [tuple(p) for p in meta["fingerprints"]]
        say(f"loaded {spec.hosts} cached {spec.base} copies from {entry}")
        return Copies(spec, pairs, _split(pairs, spec.hosts, spec.per_host), blobs, meta["stats"], True,
                      time.monotonic() - t0)
    build_one = _build_tiny if spec.base == "tiny" else _build_smollm2
    owner = None
    if entry is None:
        owner = tempfile.TemporaryDirectory(prefix="loyal-copies-")  # deleted with the Copies (or at exit)
        pairs, paths, stats = build_one(spec, say, Path(owner.name), device)
    else:
        with atomic_dir(entry) as tmp:
            pairs, _, stats = build_one(spec, say, tmp, device)
            (tmp / "meta.json").write_text(json.dumps({"spec": asdict(spec), "fingerprints": pairs, "stats": stats}))
        paths = [entry / f"copy-{i}.safetensors" for i in range(spec.hosts)]
    return Copies(spec, pairs, _split(pairs, spec.hosts, spec.per_host), CopyBlobs(paths, owner), stats, False,
                  time.monotonic() - t0)
