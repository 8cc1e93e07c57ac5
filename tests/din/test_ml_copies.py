"""Copy detection (ml.din.copies): the later commitment of an identical or near-identical pair is
the copy; honest updates of different shards are not; the decision does not depend on how the
machine sums."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from ml.din import client, data
from ml.din import copies as C
from ml.din import model as M


@pytest.fixture(scope="module")
def honest():
    sp = data.split(20, seed=0)
    genesis = M.to_bytes(M.state_of(M.build(seed=0)))
    layout = M.layout_of(M.from_bytes(genesis))
    ups = {f"p{i}": client.train_update(genesis, s, {"seed": 0}) for i, s in enumerate(sp.shards)}
    return ups, layout


def perturbed(blob: bytes, layout, scale: float, seed: int = 1) -> bytes:
    v = M.flatten(M.from_bytes(blob, layout), layout)
    noise = np.random.default_rng(seed).standard_normal(v.shape).astype(np.float32)
    return M.to_bytes(M.unflatten(v + np.float32(scale * float(np.abs(v).mean())) * noise, layout))


def test_honest_updates_are_not_copies(honest):
    ups, layout = honest
    assert C.find_copies(ups, {w: i for i, w in enumerate(ups)}, layout) == {}


def test_identical_and_near_copies_lose_to_the_earlier_commitment(honest):
    ups, layout = honest
    ups = dict(ups)
    ups["copier"] = ups["p3"]
    ups["disguised"] = perturbed(ups["p4"], layout, 1e-3)
    assert ups["disguised"] != ups["p4"]
    order = {w: i for i, w in enumerate(ups)}
    assert C.find_copies(ups, order, layout) == {"copier": "p3", "disguised": "p4"}
    # the pair decides who commits first: then the original is the one scored as the copy
    order["copier"], order["p3"] = order["p3"], order["copier"]
    assert C.find_copies(ups, order, layout)["p3"] == "copier"
    # only the participants asked about are checked (an evaluator asks about its subgroup)
    assert C.find_copies(ups, order, layout, among=["disguised", "p5"]) == {"disguised": "p4"}


def test_a_copier_must_move_far_to_pass(honest):
    ups, layout = honest
    u = M.flatten(M.from_bytes(ups["p4"], layout), layout).astype(np.float64)
    for scale, flagged in ((0.05, True), (3.0, False)):
        v = M.flatten(M.from_bytes(perturbed(ups["p4"], layout, scale), layout), layout).astype(np.float64)
        cos = float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))
        assert C.similar(u, v) == flagged == (cos >= C.COPY_COSINE), cos


def test_unusable_and_zero_updates_are_not_compared(honest):
    ups, layout = honest
    zero = M.to_bytes(M.unflatten(np.zeros(M.size_of(layout), np.float32), layout))
    got = C.find_copies({"a": zero, "b": b"garbage", "c": ups["p0"], "d": b"garbage"},
                        {"a": 1, "b": 2, "c": 3, "d": 4}, layout)
    assert got == {"d": "b"}  # byte-identical blobs are copies whatever they hold


def test_decision_is_exact_whatever_the_summation_order():
    # a pair whose float64 cosine sits on the threshold: the exact rational answer decides, and
    # summing the coordinates in another order (as another BLAS would) does not change it
    rng = np.random.default_rng(3)
    u = rng.standard_normal(4810).astype(np.float32).astype(np.float64)
    v = (u + 0.3 * rng.standard_normal(4810)).astype(np.float32).astype(np.float64)
    exact = lambda a, b: sum(Fraction(x) * Fraction(y) for x, y in zip(a.tolist(), b.tolist()))  # noqa: E731
    cos2 = exact(u, v) ** 2 / (exact(u, u) * exact(v, v))
    t = float(np.sqrt(float(cos2)))
    perm = rng.permutation(4810)
    for threshold in (np.nextafter(t, 0), t, np.nextafter(t, 2)):
        answers = {C.similar(u, v, threshold), C.similar(u[perm], v[perm], threshold),
                   C.similar(u[::-1].copy(), v[::-1].copy(), threshold)}
        assert len(answers) == 1
    assert C.similar(u, v, t - 1e-6) and not C.similar(u, v, t + 1e-6)
