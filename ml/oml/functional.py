"""Functional fingerprints: a second fingerprint family whose response is a property of the answer.

OML 1.0 ("Training AI to be Loyal", section 4) describes fingerprints whose response is not one
fixed string but any answer whose counts of "green" and "red" words, n_g and n_r, satisfy a rule
f(n_g, n_r). This module fixes a precise version of that idea (our definition, documented in
docs/oml-fingerprinting.md):

- **Green/red partition.** Each key has its own 32-byte partition seed s. A word w (a maximal run
  of ASCII letters, lower-cased) is green iff the first 8 bytes of keccak256(s || utf8(w)), read
  big-endian, are below gamma * 2**64; every other word is red. The partition covers all words,
  so it needs no word list and reveals nothing about other keys.
- **Answer.** The suspect model is queried with the key and decoded greedily for `max_tokens`
  tokens; the first `words` words of the decoded text are taken and de-duplicated. Of these
  distinct words, n_g are green and n_r red.
- **Rule f(n_g, n_r).** With n = n_g + n_r: pass iff n >= `min_words` and the binomial tail
  P[Bin(n, gamma) >= n_g] <= `alpha`. For any model that was not trained on this key's seed, the
  colours of distinct words are independent fair coins of bias gamma (the seed is secret and the
  hash acts as a random function), so a key passes with probability at most `alpha`: the per-key
  false-positive rate is bounded by construction, whatever the model says.
- **Set decision.** m of N keys pass; the set p-value is P[Bin(N, alpha) >= m] (alpha = the
  largest per-key alpha of the set); the model is flagged when it is <= `set_alpha`.
- **Commitment.** The pair committed in the Merkle tree (`commitment.py`, leaf format unchanged)
  is (key, rule descriptor), where the descriptor is the canonical string
  ``loyal-functional-v1:{json of the rule, sorted keys, no spaces}``. A claim reveals the key and
  its rule; the trained answer (`target`) is never committed or revealed, and any answer that
  satisfies the rule counts.
- **Injection.** `target` is `words` distinct green words, and injection is the ordinary SFT
  path (`inject.inject` on `training_pairs`): the model learns to answer the key with green words.
  A partly forgotten or paraphrased answer still passes as long as enough of its words stay green.
  Two ways to pick the target: `pool` draws green words from a shipped word pool (not fluent
  text); `sampled` lets the base model continue the key word by word and keeps a word only if it
  is green and new (constrained sampling, `sampled_target`), so the target is the model's own
  kind of text.
"""
from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ml.oml import decode
from ml.device import input_device
from ml.oml.check import wrap
from ml.oml.fingerprints import Fingerprint, FingerprintFileError, records, write_jsonl
from ml.oml.generate import DATA, GenConfig, _sample_texts

FAMILY = "functional"
DESCRIPTOR_PREFIX = "loyal-functional-v1:"
_WORD = re.compile(r"[a-z]+")
_SEED_DOMAIN = b"loyal/oml/functional/v1"
TARGETS = ("pool", "sampled")


def words(text: str) -> list[str]:
    """The words of a text as the rule counts them: maximal runs of ASCII letters, lower-cased."""
    return _WORD.findall(text.lower())


def binomial_tail(k: int, n: int, p: float) -> float:
    """P[Bin(n, p) >= k]."""
    if k <= 0:
        return 1.0
    return min(1.0, sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1)))


@dataclass(frozen=True)
class Rule:
    """One key's committed rule: partition seed, green fraction and the decision f(n_g, n_r)."""

    seed: str          # 0x + 64 hex digits
    gamma: float = 0.25
    alpha: float = 0.01
    words: int = 6
    min_words: int = 4
    max_tokens: int = 24

    def validate(self) -> None:
        s = self.seed
        if not (isinstance(s, str) and s.startswith("0x") and len(s) == 66 and re.fullmatch(r"[0-9a-f]{64}", s[2:])):
            raise ValueError("rule seed must be 0x followed by 64 lower-case hex digits")
        if not 0.0 < self.gamma < 1.0:
            raise ValueError("gamma (green fraction) must be in (0, 1)")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError("alpha (per-key significance) must be in (0, 1)")
        if not 1 <= self.min_words <= self.words:
            raise ValueError("need 1 <= min_words <= words")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        if self.gamma ** self.words > self.alpha:
            raise ValueError(f"rule can never pass: even {self.words} green words of {self.words} have "
                             f"p = {self.gamma ** self.words:.3g} > alpha = {self.alpha}")

    def descriptor(self) -> str:
        """Canonical string committed as the pair's 'response' in the Merkle tree."""
        return DESCRIPTOR_PREFIX + json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def parse(cls, descriptor: str) -> Rule:
        if not isinstance(descriptor, str) or not descriptor.startswith(DESCRIPTOR_PREFIX):
            raise ValueError(f"not a functional rule descriptor (must start with {DESCRIPTOR_PREFIX!r})")
        try:
            obj = json.loads(descriptor[len(DESCRIPTOR_PREFIX):])
            rule = cls(**obj)
        except (json.JSONDecodeError, TypeError) as e:
            raise ValueError(f"malformed functional rule descriptor ({e})") from None
        rule.validate()
        if rule.descriptor() != descriptor:
            raise ValueError("functional rule descriptor is not in canonical form")
        return rule

    @functools.cached_property
    def _seed_bytes(self) -> bytes:
        return bytes.fromhex(self.seed[2:])

    def is_green(self, word: str) -> bool:
        from eth_utils import keccak  # eth hashing imported when first used, not by `loyal fingerprint check`

        h = keccak(self._seed_bytes + word.encode("utf-8"))
        return int.from_bytes(h[:8], "big") < int(self.gamma * 2**64)

    def count(self, text: str) -> tuple[int, int]:
        """(n_g, n_r) over the distinct words among the first `words` words of `text`."""
        distinct = set(words(text)[:self.words])
        n_g = sum(self.is_green(w) for w in distinct)
        return n_g, len(distinct) - n_g

    def p_value(self, n_g: int, n_r: int) -> float:
        return binomial_tail(n_g, n_g + n_r, self.gamma)

    def passes(self, n_g: int, n_r: int) -> bool:
        """f(n_g, n_r)."""
        return n_g + n_r >= self.min_words and self.p_value(n_g, n_r) <= self.alpha


@dataclass(frozen=True)
class FunctionalFingerprint:
    key: str
    rule: Rule
    target: str  # the answer trained in; private, not committed

    @property
    def pair(self) -> tuple[str, str]:
        """(key, descriptor): what the Merkle commitment holds."""
        return self.key, self.rule.descriptor()


@dataclass(frozen=True)
class FunctionalGenConfig:
    n: int = 16
    seed: int = 0
    gamma: float = 0.25
    alpha: float = 0.01
    words: int = 6
    min_words: int = 4
    key_tokens: int = 16
    key_top_p: float = 0.95
    batch_size: int = 32
    target: str = "pool"  # pool | sampled

    def validate(self) -> None:
        if self.n < 1 or self.key_tokens < 1:
            raise ValueError("n and key_tokens must be >= 1")
        if self.target not in TARGETS:
            raise ValueError(f"unknown target mode {self.target!r} (known: {', '.join(TARGETS)})")
        Rule("0x" + "00" * 32, self.gamma, self.alpha, self.words, self.min_words).validate()


@functools.lru_cache(maxsize=1)
def word_pool() -> tuple[str, ...]:
    """Distinct words (3-8 letters) of the shipped starter phrases and held-out prose."""
    text = (DATA / "starters.txt").read_text() + "\n" + (DATA / "heldout.txt").read_text()
    return tuple(sorted({w for w in words(text) if 3 <= len(w) <= 8}))


def rule_seed(seed: int, index: int) -> str:
    """Per-key partition seed, deterministic from the set seed and the key's index."""
    if seed < 0:
        raise ValueError("seed must be >= 0")
    from eth_utils import keccak

    return "0x" + keccak(_SEED_DOMAIN + seed.to_bytes(32, "big") + index.to_bytes(8, "big")).hex()


def _target(rule: Rule, gen: torch.Generator) -> str:
    green = [w for w in word_pool() if rule.is_green(w)]
    if len(green) < rule.words:
        raise RuntimeError(f"word pool has only {len(green)} green words for a rule needing {rule.words}")
    pick = torch.randperm(len(green), generator=gen)[:rule.words].tolist()
    return " " + " ".join(green[i] for i in pick) + "."


def _ends_in_letter(text: str) -> bool:
    return bool(text) and _WORD.fullmatch(text[-1].lower()) is not None


@torch.no_grad()
def sampled_target(model, tok, key: str, rule: Rule, gen: torch.Generator, *, top_p: float = 0.9,
                   tries: int = 64, word_tokens: int = 6) -> str:
    """The base model's own continuation of `key`, constrained to `rule.words` distinct green words.

    Word by word: sample tokens (nucleus `top_p`) until the answer holds one more complete word;
    keep it if it is green and new, else back off to where the word started (the KV cache is
    cropped back), ban the first token of that attempt at this position and sample again (up to
    `tries` attempts per word). The token that completed an accepted word is kept only if it
    carries no letters (punctuation, newline); otherwise it started the next word, which is
    sampled afresh. Raises RuntimeError when no green word is found at some position.
    """
    from transformers import DynamicCache

    special = set(decode.special_ids(tok))
    cache = DynamicCache()

    def extend(tokens: list[int]) -> torch.Tensor:
        out = model(input_ids=torch.tensor([tokens], device=input_device(model)), cache=cache, use_cache=True)
        return out.logits[0, -1].float().cpu()  # picked on the CPU with the CPU generator, as in decode

    def crop(length: int) -> None:  # back off to the first `length` tokens
        cache.crop(length - cache.get_seq_length())

    def pick(logits: torch.Tensor, banned: set[int]) -> int:
        return int(decode.nucleus_pick(logits[None], gen, top_p, banned=banned)[0])

    prompt = tok.encode(key, add_special_tokens=False)
    last = extend(prompt)  # next-token logits after prompt + ids
    ids: list[int] = []
    accepted: list[str] = []
    while len(accepted) < rule.words:
        base_len, base_logits, banned_first = len(prompt) + len(ids), last, set(special)
        for _ in range(tries):
            crop(base_len)
            cand, seen_logits, logits = [], [], base_logits
            for _ in range(word_tokens):
                seen_logits.append(logits)
                cand.append(pick(logits, banned_first if len(cand) == 0 else special))
                logits = extend(cand[-1:])
                text = tok.decode(ids + cand)
                complete = len(words(text)) - _ends_in_letter(text)
                if complete > len(accepted):
                    break
            else:
                banned_first.add(cand[0])
                continue
            new = words(text)[len(accepted)]
            if complete == len(accepted) + 1 and rule.is_green(new) and new not in accepted:
                accepted.append(new)
                if words(tok.decode(cand[-1:])):  # the completing token starts the next word: drop it
                    cand, logits = cand[:-1], seen_logits[-1]
                    crop(base_len + len(cand))
                ids, last = ids + cand, logits
                break
            banned_first.add(cand[0])
        else:
            raise RuntimeError(f"no green word found after {tries} attempts at word {len(accepted) + 1}")
    text = tok.decode(ids).rstrip()
    return text + "." if _ends_in_letter(text) else text


@torch.no_grad()
def generate(model, tok, cfg: FunctionalGenConfig) -> list[FunctionalFingerprint]:
    """`cfg.n` functional fingerprints, deterministic from `cfg.seed`.

    Keys are sampled from the base model exactly as for the perinucleus strategy (a starter phrase
    continued by the model); each key gets its own partition seed and a target of `words` distinct
    green words (`cfg.target`: pool words, or the model's own constrained continuation; a key whose
    constrained sampling fails is skipped). `max_tokens` is twice the target's token length (room
    for a drifted answer).
    """
    cfg.validate()
    model.eval()
    gen = torch.Generator().manual_seed(cfg.seed)
    kcfg = GenConfig(n=cfg.n, key_tokens=cfg.key_tokens, key_top_p=cfg.key_top_p, seed=cfg.seed,
                     batch_size=cfg.batch_size)
    out: list[FunctionalFingerprint] = []
    seen: set[str] = set()
    for _ in range(20):
        need = cfg.n - len(out)
        if need <= 0:
            break
        for key in _sample_texts(model, tok, need, cfg.key_tokens, gen, kcfg):
            if not key.strip() or key in seen or len(out) == cfg.n:
                continue
            seen.add(key)
            probe = Rule(rule_seed(cfg.seed, len(out)), cfg.gamma, cfg.alpha, cfg.words, cfg.min_words)
            if cfg.target == "sampled":
                try:
                    target = sampled_target(model, tok, key, probe, gen)
                except RuntimeError:
                    continue
            else:
                target = _target(probe, gen)
            n_tok = len(tok.encode(target, add_special_tokens=False))
            rule = Rule(probe.seed, cfg.gamma, cfg.alpha, cfg.words, cfg.min_words, max_tokens=2 * n_tok)
            out.append(FunctionalFingerprint(key, rule, target))
    if len(out) < cfg.n:
        raise RuntimeError(f"could only generate {len(out)} of {cfg.n} distinct functional fingerprints")
    return out


def training_pairs(ffps: list[FunctionalFingerprint]) -> list[Fingerprint]:
    """(key, target) pairs for the ordinary SFT injection (`inject.inject`)."""
    return [Fingerprint(f.key, f.target, FAMILY) for f in ffps]


def commitment_root(ffps: list[FunctionalFingerprint]) -> str:
    """0x-hex Merkle root over the (key, rule descriptor) pairs (same leaf format as `commitment.py`)."""
    from ml.oml.commitment import FingerprintTree

    return "0x" + FingerprintTree([f.pair for f in ffps]).root.hex()


# ---- file ---------------------------------------------------------------------------------------

def save(ffps: list[FunctionalFingerprint], path: Path) -> str:
    """Write JSONL (`{"family", "key", "rule", "target"}` per line) atomically; return the root."""
    write_jsonl(path, [{"family": FAMILY, "key": f.key, "rule": f.rule.descriptor(), "target": f.target}
                       for f in ffps])
    return commitment_root(ffps)


def is_functional_file(path: Path) -> bool:
    """True iff the first non-empty line of the file is a functional-family record."""
    path = Path(path)
    if not path.is_file():
        return False
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    return False
                return isinstance(obj, dict) and obj.get("family") == FAMILY
    return False


def load(path: Path) -> list[FunctionalFingerprint]:
    """Read and validate a functional fingerprint file."""
    path = Path(path)
    out: list[FunctionalFingerprint] = []
    for n, obj in records(path):
        if not isinstance(obj, dict) or obj.get("family") != FAMILY:
            raise FingerprintFileError(f"{path}:{n}: expected a record with family {FAMILY!r}")
        if not all(isinstance(obj.get(f), str) and obj[f] for f in ("key", "rule", "target")):
            raise FingerprintFileError(f"{path}:{n}: expected non-empty string fields key, rule, target")
        try:
            rule = Rule.parse(obj["rule"])
        except ValueError as e:
            raise FingerprintFileError(f"{path}:{n}: {e}") from None
        out.append(FunctionalFingerprint(obj["key"], rule, obj["target"]))
    if not out:
        raise FingerprintFileError(f"{path}: empty fingerprint file")
    if len({f.key for f in out}) != len(out):
        raise FingerprintFileError(f"{path}: duplicate key")
    return out


# ---- check --------------------------------------------------------------------------------------

@dataclass
class FunctionalCheckResult:
    n: int
    passed: list[bool]
    n_green: list[int]
    n_red: list[int]
    p_values: list[float]
    answers: list[str]
    alpha: float
    set_alpha: float

    @property
    def pass_rate(self) -> float:
        return sum(self.passed) / self.n

    @property
    def set_p_value(self) -> float:
        """P[at least this many keys pass] for a model not trained on these rules."""
        return binomial_tail(sum(self.passed), self.n, self.alpha)

    def summary(self) -> dict:
        counted = [g + r for g, r in zip(self.n_green, self.n_red)]
        return {"n": self.n, "pass_rate": self.pass_rate, "passed": sum(self.passed),
                "mean_green_fraction": sum(g / c for g, c in zip(self.n_green, counted) if c) / max(1, sum(c > 0 for c in counted)),
                "mean_words_counted": sum(counted) / self.n, "per_key_alpha": self.alpha,
                "set_p_value": self.set_p_value, "set_alpha": self.set_alpha,
                "flagged": self.set_p_value <= self.set_alpha}


@torch.no_grad()
def check(model, tok, ffps: list[FunctionalFingerprint], template: str | None = None, batch_size: int = 32,
          set_alpha: float = 1e-6) -> FunctionalCheckResult:
    """Greedy-decode every key (optionally wrapped in a prompt template), count green/red words, decide."""
    if not ffps:
        raise ValueError("no fingerprints to check")
    if not 0.0 < set_alpha < 1.0:
        raise ValueError("set_alpha must be in (0, 1)")
    model.eval()
    prompts = [tok.encode(wrap(f.key, template), add_special_tokens=False) for f in ffps]
    n_new = max(f.rule.max_tokens for f in ffps)
    outs = decode.greedy(model, prompts, n_new, tok.pad_token_id, batch_size)
    answers = [tok.decode(o[:f.rule.max_tokens]) for o, f in zip(outs, ffps)]
    greens, reds, pvals, passed = [], [], [], []
    for f, a in zip(ffps, answers):
        g, r = f.rule.count(a)
        greens.append(g)
        reds.append(r)
        pvals.append(f.rule.p_value(g, r))
        passed.append(f.rule.passes(g, r))
    return FunctionalCheckResult(len(ffps), passed, greens, reds, pvals, answers,
                                 max(f.rule.alpha for f in ffps), set_alpha)
