"""Copy detection among one round's revealed updates (clear mode), the same on every machine.

DIN's copy rule: an update that is byte-identical to, or within a small cosine distance of, an
update whose commitment came earlier in the same round is a copy and scores 0. "Earlier" is the
position of the commitment's `DinTasks.UpdateCommitted` event in the chain: commitments close before
any CID is revealed, so a participant can only copy what a colluder handed it before committing,
and the pair itself decides which of them is first; either way one of the two earns nothing.

Threshold: cosine similarity >= COPY_COSINE (0.95). Measured on the digits task (genesis model,
5 local epochs): distinct honest participants' updates reach at most 0.69 (20 shards) and 0.80
(100 shards); the same shard trained with another seed 0.91-1.0, i.e. a copy of the same data. A
copier must therefore move its update ~1/3 of its length away from the original to pass, which
also pulls it off the original's direction. Updates that are unusable (`BadUpdate`) or zero are
not compared (they score 0 anyway).

Determinism: every coordinate is a float32, so each float64 product u_i * v_i is exact and
`math.fsum` returns the correctly rounded sum; the comparison `dot^2 >= t^2 * |u|^2 * |v|^2` then
uses a fixed sequence of IEEE operations. Honest evaluators get the same answer bit for bit,
whatever their BLAS or summation order.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from ml.din import model as M
from ml.din.aggregate import encode
from ml.din.errors import BadUpdate

COPY_COSINE = 0.95


def _vector(blob: bytes, layout: M.Layout, who: str) -> np.ndarray | None:
    """The update as float64 (exactly its float32 values), or None when unusable or zero."""
    try:
        u = M.flatten(M.from_bytes(blob, layout, who), layout, who)
        encode(u, who)  # the range check aggregation and scoring apply
    except BadUpdate:
        return None
    u = u.astype(np.float64)
    return u if np.any(u) else None


def _dot(u: np.ndarray, v: np.ndarray) -> float:
    return math.fsum((u * v).tolist())


def similar(u: np.ndarray, v: np.ndarray, threshold: float = COPY_COSINE) -> bool:
    """cos(u, v) >= threshold, decided the same way on every IEEE machine (see the module doc).
    A BLAS estimate (relative error ~1e-15) settles pairs far below the threshold; the exact
    comparison decides the rest."""
    approx = float(u @ v) / (float(np.linalg.norm(u)) * float(np.linalg.norm(v)))
    if approx < threshold - 1e-9:
        return False
    d = _dot(u, v)
    return d > 0 and d * d >= threshold * threshold * _dot(u, u) * _dot(v, v)


def find_copies(updates: Mapping[str, bytes], order: Mapping[str, int], layout: M.Layout, *,
                among: Iterable[str] | None = None, threshold: float = COPY_COSINE) -> dict[str, str]:
    """copier -> the earliest-committed update it copies, for each participant in `among` (default:
    all) whose update equals, or is within `threshold` cosine of, an update of `updates` committed
    earlier (`order`: participant -> position of its commitment, smaller = earlier; missing = last)."""
    last = max(order.values(), default=0) + 1
    rank = {who: (order.get(who, last), who) for who in updates}
    vectors: dict[str, np.ndarray | None] = {}

    def vec(who: str) -> np.ndarray | None:
        if who not in vectors:
            vectors[who] = _vector(updates[who], layout, who)
        return vectors[who]

    out: dict[str, str] = {}
    for who in sorted(among if among is not None else updates, key=lambda w: rank[w]):
        for other in sorted((o for o in updates if rank[o] < rank[who]), key=lambda o: rank[o]):
            if updates[other] == updates[who]:
                out[who] = other
                break
            u, v = vec(who), vec(other)
            if u is not None and v is not None and similar(u, v, threshold):
                out[who] = other
                break
    return out
