"""DIN's data: scikit-learn's digits (8x8 images, 10 classes, shipped inside the package, no
download), split deterministically into an owner-held test set and N non-IID participant shards.

Split (all randomness from `numpy.random.default_rng(seed)`, so the same arguments give the same
shards on every machine):
  1. test set: a stratified `test_fraction` of every class, kept by the Model Owner;
  2. the rest is dealt to participants class by class with proportions ~ Dirichlet(alpha) over the
     N participants (small alpha = more skewed label mixes); draws are repeated until every shard
     has at least `min_size` samples.

Pixels are the digits' integers 0..16 divided by 16, so every value is exact in float32 and the
canonical test-set bytes (hence `test_set_commitment`) do not depend on float formatting.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from eth_utils import keccak
from sklearn.datasets import load_digits

NUM_CLASSES = 10
NUM_FEATURES = 64
_MAGIC = b"loyal-din-shard-v1\x00"


@dataclass(frozen=True)
class Shard:
    """A labelled dataset: `x` float32 (n, 64) in [0, 1], `y` int64 (n,) in 0..9."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to_bytes(self) -> bytes:
        """Canonical bytes: magic, n (uint32 BE), x as little-endian float32 row-major, y as uint8."""
        n = len(self)
        return (_MAGIC + n.to_bytes(4, "big") + np.ascontiguousarray(self.x, dtype="<f4").tobytes()
                + np.ascontiguousarray(self.y, dtype=np.uint8).tobytes())

    @classmethod
    def from_bytes(cls, blob: bytes) -> "Shard":
        """Inverse of `to_bytes`; raises ValueError on a malformed blob."""
        if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + 4:
            raise ValueError("not a DIN shard blob (bad magic)")
        off = len(_MAGIC)
        n = int.from_bytes(blob[off:off + 4], "big")
        off += 4
        if len(blob) != off + n * NUM_FEATURES * 4 + n:
            raise ValueError(f"DIN shard blob of {n} samples has the wrong length {len(blob)}")
        x = np.frombuffer(blob, dtype="<f4", count=n * NUM_FEATURES, offset=off).reshape(n, NUM_FEATURES)
        y = np.frombuffer(blob, dtype=np.uint8, count=n, offset=off + n * NUM_FEATURES * 4)
        return cls(x.astype(np.float32), y.astype(np.int64))


@dataclass(frozen=True)
class Split:
    """The owner's test set and one shard per participant (index i = participant i)."""

    test: Shard
    shards: list[Shard]


def load() -> Shard:
    """The full digits dataset (1797 samples), pixels scaled to [0, 1]."""
    d = load_digits()
    return Shard((d.data / 16.0).astype(np.float32), d.target.astype(np.int64))


def split(n_participants: int, *, alpha: float = 0.5, test_fraction: float = 0.2, seed: int = 0,
          min_size: int = 5, max_tries: int = 1000) -> Split:
    """Deterministic non-IID split into an owner test set and `n_participants` shards."""
    if n_participants < 1:
        raise ValueError("need at least one participant")
    if not 0 < test_fraction < 1 or alpha <= 0:
        raise ValueError("test_fraction must be in (0, 1) and alpha > 0")
    full = load()
    rng = np.random.default_rng(seed)
    test_idx, pool = [], []
    for c in range(NUM_CLASSES):
        idx = rng.permutation(np.flatnonzero(full.y == c))
        k = int(round(test_fraction * len(idx)))
        test_idx.append(idx[:k])
        pool.append(idx[k:])
    if sum(len(p) for p in pool) < n_participants * min_size:
        raise ValueError(f"{n_participants} shards of >= {min_size} samples do not fit the data")
    for _ in range(max_tries):
        owners: list[list[np.ndarray]] = [[] for _ in range(n_participants)]
        for idx in pool:
            props = rng.dirichlet(np.full(n_participants, alpha))
            cuts = (np.cumsum(props)[:-1] * len(idx)).astype(np.int64)
            for i, part in enumerate(np.split(idx, cuts)):
                owners[i].append(part)
        sizes = [sum(len(p) for p in o) for o in owners]
        if min(sizes) >= min_size:
            break
    else:
        raise ValueError(f"no Dirichlet(alpha={alpha}) draw gave every shard {min_size} samples; "
                         "raise alpha or lower min_size")
    shards = []
    for o in owners:
        idx = np.sort(np.concatenate(o))
        shards.append(Shard(full.x[idx], full.y[idx]))
    t = np.sort(np.concatenate(test_idx))
    return Split(Shard(full.x[t], full.y[t]), shards)


def test_set_commitment(test: Shard) -> bytes:
    """bytes32 for the task's on-chain commitment: keccak256 of the test set's canonical bytes.
    Anyone holding the revealed blob checks `keccak(blob) == commitment` (see `Shard.from_bytes`)."""
    return keccak(test.to_bytes())


def flip_labels(shard: Shard) -> Shard:
    """The demo poisoner's data: every label y replaced by 9 - y (inputs unchanged)."""
    return Shard(shard.x, (NUM_CLASSES - 1 - shard.y).astype(np.int64))


test_set_commitment.__test__ = False  # a library function, not a pytest test when imported by name
