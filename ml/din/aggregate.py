"""Bit-reproducible aggregation: every evaluator that aggregates the same updates gets the same
bytes, hence the same content id, whatever the order it fetched them in.

Fixed point. An update vector (float32, layout order) is encoded as int64
    q = rint(float64(x) * 2**SCALE_BITS)        (round half to even)
after checking every |x| <= MAX_ABS and finite. float32 -> float64 and the multiplication by a
power of two are exact, and rint is exactly specified by IEEE 754, so q is the same on every
machine. Sums of int64 are exact and associative, so the order of the updates does not matter.
The bound keeps sums exact: n * MAX_ABS * 2**SCALE_BITS = n * 2**39 < 2**63 for n < 2**24.

Weights. `aggregate(updates)` is the equal-weight mean (the protocol default: sample counts are
self-reported and unverifiable, so weighting by them lets one participant claim a huge count and
dominate). Integer `weights` give the weighted mean sum(w_i q_i) / sum(w_i). Secure aggregation
uses equal weights (see secagg.py).

Decoding. mean = float32(float64(sum) / (float64(sum of weights) * 2**SCALE_BITS)): correctly
rounded IEEE operations applied elementwise, hence identical everywhere.

Global model. A round's accepted subgroup aggregates (mean updates) are combined with
`combine(...)`: the same fixed-point mean weighted by the subgroups' member counts (so the result
equals the mean over all accepted participants up to one rounding per subgroup), and the new
global model is `previous + combined` (float32 add). Anyone with the CIDs recomputes it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ml.din import model as M
from ml.din.errors import BadUpdate

SCALE_BITS = 24
SCALE = float(2 ** SCALE_BITS)
MAX_ABS = float(2 ** 15)


def encode(vec: np.ndarray, who: str | None = None) -> np.ndarray:
    """float32 vector -> int64 fixed point; BadUpdate if not finite or |x| > MAX_ABS."""
    v = np.asarray(vec)
    if v.dtype != np.float32:
        raise BadUpdate(f"expected float32 values, got {v.dtype}", who)
    if not np.isfinite(v).all():
        raise BadUpdate("contains NaN or infinity", who)
    if v.size and float(np.abs(v).max()) > MAX_ABS:
        raise BadUpdate(f"value {float(np.abs(v).max()):.4g} exceeds the fixed-point bound {MAX_ABS:g}", who)
    return np.rint(v.astype(np.float64) * SCALE).astype(np.int64)


def decode_sum(total: np.ndarray, weight_sum: int) -> np.ndarray:
    """int64 sum of `weight_sum` (weighted) encoded vectors -> float32 mean."""
    if weight_sum <= 0:
        raise ValueError("weight sum must be positive")
    t = np.asarray(total, dtype=np.int64)
    return (t.astype(np.float64) / (float(weight_sum) * SCALE)).astype(np.float32)


def _weights(n: int, weights: Sequence[int] | None) -> list[int]:
    if n == 0:
        raise ValueError("nothing to aggregate")
    if weights is None:
        return [1] * n
    w = [int(x) for x in weights]
    if len(w) != n or any(x <= 0 for x in w) or any(x != y for x, y in zip(w, weights)):
        raise ValueError("weights must be one positive integer per update")
    if sum(w) >= 2 ** 24:
        raise ValueError("total weight must stay below 2**24 for exact sums")
    return w


def mean_vector(vectors: Sequence[np.ndarray], weights: Sequence[int] | None = None,
                who: Sequence[str] | None = None) -> np.ndarray:
    """Fixed-point (weighted) mean of float32 vectors; order-independent to the bit."""
    w = _weights(len(vectors), weights)
    names = list(who) if who is not None else [None] * len(vectors)
    total = np.zeros(np.shape(vectors[0]), dtype=np.int64)
    for v, wi, name in zip(vectors, w, names):
        if np.shape(v) != total.shape:
            raise BadUpdate(f"vector of shape {np.shape(v)}, expected {total.shape}", name)
        total += encode(v, name) * wi
    return decode_sum(total, sum(w))


def aggregate(updates: Mapping[str, bytes], layout: M.Layout,
              weights: Mapping[str, int] | None = None) -> bytes:
    """A subgroup aggregate: the fixed-point mean of the members' update bytes, as canonical
    safetensors bytes. `updates` maps participant id -> update bytes; any unusable update raises
    BadUpdate naming its sender (the evaluator drops it and scores it 0, see scoring.py)."""
    ids = sorted(updates)
    vecs = [M.flatten(M.from_bytes(updates[i], layout, i), layout, i) for i in ids]
    w = [weights[i] for i in ids] if weights is not None else None
    return M.to_bytes(M.unflatten(mean_vector(vecs, w, ids), layout))


def combine(subgroup_aggregates: Mapping[str, bytes], member_counts: Mapping[str, int],
            layout: M.Layout) -> bytes:
    """The round's global update, as canonical bytes: the accepted subgroup aggregates
    (subgroup id -> bytes) weighted by how many participants each one averages
    (`member_counts`; in secure-aggregation mode the survivors)."""
    return aggregate(subgroup_aggregates, layout, weights=member_counts)


def next_global(previous: bytes, global_update: bytes) -> bytes:
    """The next global model's bytes: previous + combined update (float32)."""
    prev = M.from_bytes(previous)
    layout = M.layout_of(prev)
    upd = M.from_bytes(global_update, layout, "global update")
    return M.to_bytes(M.add(prev, upd))

