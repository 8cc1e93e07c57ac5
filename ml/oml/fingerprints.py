"""The fingerprint file: JSONL, one `{"key", "response", "strategy", "tokenizer"}` object per line.

`tokenizer` (optional, the same on every line) identifies the tokenizer the pairs were generated
with (`tokenizer_id`: vocabulary size and a hash of the vocabulary): a key/response pair means
something only as that tokenizer's tokens, so checking or injecting them with a model whose
tokenizer differs is refused (`check_tokenizer`) instead of silently reporting 0 % match.

Pairs are strings (the Merkle commitment in `commitment.py` hashes their UTF-8 bytes); models see
them as `tokenizer.encode(key)` followed by `tokenizer.encode(response)`.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from common.errors import LoyalError
from common.files import atomic_write

STRATEGIES = ("perinucleus", "random_tokens", "english_random")


class FingerprintFileError(LoyalError, ValueError):
    """A fingerprint file that cannot be used (empty, malformed, mixed strategies...)."""


@dataclass(frozen=True)
class Fingerprint:
    key: str
    response: str
    strategy: str
    tokenizer: str | None = None  # `tokenizer_id` of the tokenizer it was generated with (None: not recorded)


def tokenizer_id(tok) -> str:
    """A short identity of a tokenizer: `<vocab size>:<sha256 of the sorted vocabulary, 16 hex>`
    (Hugging Face tokenizers), or `bytes:257` for the byte tokenizer of the tiny models."""
    import hashlib

    vocab = tok.get_vocab() if hasattr(tok, "get_vocab") else None
    if vocab is None:
        return f"{type(tok).__name__.removesuffix('Tokenizer').lower() or 'tok'}:{len(tok)}"
    blob = json.dumps(sorted(vocab.items(), key=lambda kv: kv[1]), ensure_ascii=False).encode()
    return f"{len(vocab)}:{hashlib.sha256(blob).hexdigest()[:16]}"


def check_tokenizer(fps: list[Fingerprint], tok) -> None:
    """FingerprintFileError when the fingerprints record a tokenizer other than `tok`."""
    recorded = sorted({f.tokenizer for f in fps if f.tokenizer})
    if not recorded:
        return
    have = tokenizer_id(tok)
    if have not in recorded:
        raise FingerprintFileError(f"the fingerprints were generated for tokenizer {recorded[0]}, this model's "
                                   f"tokenizer is {have}; use the model they were generated with (or one fine-tuned "
                                   "from it)")


def commitment_root(fps: list[Fingerprint]) -> str:
    """0x-hex Merkle root over the (key, response) pairs, as put on-chain."""
    from ml.oml.commitment import FingerprintTree  # eth hashing: imported only when a root is computed

    return "0x" + FingerprintTree([(f.key, f.response) for f in fps]).root.hex()


def write_jsonl(path: Path, objs: list[dict]) -> None:
    """Write one JSON object per line atomically (a temporary file renamed over `path`); refuses an empty set."""
    if not objs:
        raise FingerprintFileError("refusing to write an empty fingerprint set")
    atomic_write(path, "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs))


def save(fps: list[Fingerprint], path: Path, tokenizer: str | None = None) -> str:
    """Write the JSONL file atomically (recording `tokenizer`, a `tokenizer_id`, when given); return
    the commitment root."""
    objs = []
    for f in fps:
        o = asdict(f)
        o["tokenizer"] = tokenizer or f.tokenizer
        if o["tokenizer"] is None:
            del o["tokenizer"]
        objs.append(o)
    write_jsonl(path, objs)
    return commitment_root(fps)


def records(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed JSON) of every non-blank line of a fingerprint file; a missing file or
    a line that is not JSON is a FingerprintFileError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FingerprintFileError(f"{path}: no such fingerprint file")
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as e:
            raise FingerprintFileError(f"{path}:{n}: not valid JSON ({e.msg})") from None


def load(path: Path, strategy: str | None = None) -> list[Fingerprint]:
    """Read and validate a fingerprint file. With `strategy`, every pair must use it."""
    path = Path(path)
    out: list[Fingerprint] = []
    for n, obj in records(path):
        if not isinstance(obj, dict) or not all(isinstance(obj.get(f), str) for f in ("key", "response", "strategy")):
            raise FingerprintFileError(f"{path}:{n}: expected an object with string fields key, response, strategy")
        if obj["strategy"] not in STRATEGIES:
            raise FingerprintFileError(f"{path}:{n}: unknown strategy {obj['strategy']!r} (known: {', '.join(STRATEGIES)})")
        if not obj["key"] or not obj["response"]:
            raise FingerprintFileError(f"{path}:{n}: empty key or response")
        if obj.get("tokenizer") is not None and not isinstance(obj["tokenizer"], str):
            raise FingerprintFileError(f"{path}:{n}: tokenizer must be a string")
        out.append(Fingerprint(obj["key"], obj["response"], obj["strategy"], obj.get("tokenizer")))
    if not out:
        raise FingerprintFileError(f"{path}: empty fingerprint file")
    kinds = sorted({f.strategy for f in out})
    if len(kinds) > 1:
        raise FingerprintFileError(f"{path}: mixed strategies {kinds}; one file holds one strategy")
    if strategy is not None and kinds[0] != strategy:
        raise FingerprintFileError(f"{path}: file holds {kinds[0]!r} fingerprints, expected {strategy!r}")
    if len({f.tokenizer for f in out}) > 1:
        raise FingerprintFileError(f"{path}: lines record different tokenizers; one file holds one tokenizer's pairs")
    if len({(f.key, f.response) for f in out}) != len(out):
        raise FingerprintFileError(f"{path}: duplicate (key, response) pair")
    return out
