"""The fingerprint file: JSONL, one `{"key", "response", "strategy"}` object per line.

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


def commitment_root(fps: list[Fingerprint]) -> str:
    """0x-hex Merkle root over the (key, response) pairs, as put on-chain."""
    from ml.oml.commitment import FingerprintTree  # eth hashing: imported only when a root is computed

    return "0x" + FingerprintTree([(f.key, f.response) for f in fps]).root.hex()


def write_jsonl(path: Path, objs: list[dict]) -> None:
    """Write one JSON object per line atomically (a temporary file renamed over `path`); refuses an empty set."""
    if not objs:
        raise FingerprintFileError("refusing to write an empty fingerprint set")
    atomic_write(path, "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs))


def save(fps: list[Fingerprint], path: Path) -> str:
    """Write the JSONL file atomically; return the commitment root."""
    write_jsonl(path, [asdict(f) for f in fps])
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
        out.append(Fingerprint(obj["key"], obj["response"], obj["strategy"]))
    if not out:
        raise FingerprintFileError(f"{path}: empty fingerprint file")
    kinds = sorted({f.strategy for f in out})
    if len(kinds) > 1:
        raise FingerprintFileError(f"{path}: mixed strategies {kinds}; one file holds one strategy")
    if strategy is not None and kinds[0] != strategy:
        raise FingerprintFileError(f"{path}: file holds {kinds[0]!r} fingerprints, expected {strategy!r}")
    if len({(f.key, f.response) for f in out}) != len(out):
        raise FingerprintFileError(f"{path}: duplicate (key, response) pair")
    return out
