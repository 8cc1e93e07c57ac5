"""Bit-reproducible aggregation and a real 3-round FedAvg over 10 non-IID shards."""
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.din import aggregate as A
from ml.din import client as C
from ml.din import data
from ml.din import model as M
from ml.din import scoring as S
from ml.din.errors import BadUpdate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def round0():
    split = data.split(10, seed=0)
    genesis = M.to_bytes(M.state_of(M.build(seed=0)))
    layout = M.layout_of(M.from_bytes(genesis))
    updates = {f"p{i}": C.train_update(genesis, s, {"seed": 0}) for i, s in enumerate(split.shards)}
    return split, genesis, layout, updates


def test_aggregate_bytes_do_not_depend_on_order(round0):
    _, _, layout, updates = round0
    ref = A.aggregate(updates, layout)
    items = list(updates.items())
    for i in range(5):
        random.Random(i).shuffle(items)
        assert A.aggregate(dict(items), layout) == ref
        vecs = [M.flatten(M.from_bytes(b), layout) for _, b in items]
        assert M.to_bytes(M.unflatten(A.mean_vector(vecs), layout)) == ref


def test_aggregate_bytes_are_identical_in_a_fresh_process(round0, tmp_path):
    """Another evaluator = another interpreter: it recomputes the same bytes from the same inputs."""
    _, _, layout, updates = round0
    for k, b in updates.items():
        (tmp_path / f"{k}.safetensors").write_bytes(b)
    code = (
        "import sys, pathlib\n"
        "from ml.din import aggregate as A, model as M\n"
        "d = pathlib.Path(sys.argv[1])\n"
        "ups = {p.stem: p.read_bytes() for p in sorted(d.glob('*.safetensors'), reverse=True)}\n"
        "lay = M.layout_of(M.from_bytes(next(iter(ups.values()))))\n"
        "sys.stdout.buffer.write(A.aggregate(ups, lay))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True,
                         check=True, env={**os.environ, "PYTHONHASHSEED": "123"}).stdout
    assert out == A.aggregate(updates, layout)


def test_fixed_point_mean_matches_the_float_mean_within_the_scale(round0):
    _, _, layout, updates = round0
    vecs = np.stack([M.flatten(M.from_bytes(b), layout) for b in updates.values()]).astype(np.float64)
    agg = M.flatten(M.from_bytes(A.aggregate(updates, layout)), layout).astype(np.float64)
    assert np.max(np.abs(agg - vecs.mean(0))) <= 2.0 ** -A.SCALE_BITS


def test_weighted_mean_and_global_combination(round0):
    _, genesis, layout, updates = round0
    ids = sorted(updates)
    g1, g2 = ids[:3], ids[3:]
    a1 = A.aggregate({k: updates[k] for k in g1}, layout)
    a2 = A.aggregate({k: updates[k] for k in g2}, layout)
    combined = A.combine({"s1": a1, "s2": a2}, {"s1": len(g1), "s2": len(g2)}, layout)
    assert A.combine({"s2": a2, "s1": a1}, {"s1": len(g1), "s2": len(g2)}, layout) == combined
    flat = M.flatten(M.from_bytes(combined), layout).astype(np.float64)
    everyone = M.flatten(M.from_bytes(A.aggregate(updates, layout)), layout).astype(np.float64)
    assert np.max(np.abs(flat - everyone)) <= 2 * 2.0 ** -A.SCALE_BITS  # one rounding per subgroup
    # weights really weigh: weight 3 vs 1 is the 3:1 mix
    w = A.aggregate({"a": updates[ids[0]], "b": updates[ids[1]]}, layout, weights={"a": 3, "b": 1})
    va, vb = (M.flatten(M.from_bytes(updates[i]), layout).astype(np.float64) for i in ids[:2])
    assert np.max(np.abs(M.flatten(M.from_bytes(w), layout) - (3 * va + vb) / 4)) <= 2.0 ** -A.SCALE_BITS
    nxt = A.next_global(genesis, combined)
    assert nxt == A.next_global(genesis, combined) and nxt != genesis


def test_bad_updates_are_named(round0):
    _, _, layout, updates = round0
    state = M.from_bytes(updates["p0"])
    state["fc1.bias"][3] = float("nan")
    with pytest.raises(BadUpdate, match="p9: .*NaN"):
        A.aggregate({**updates, "p9": M.to_bytes(state)}, layout)
    huge = {k: torch.full_like(v, 1e6) for k, v in state.items()}
    with pytest.raises(BadUpdate, match="px: .*exceeds the fixed-point bound"):
        A.aggregate({**updates, "px": M.to_bytes(huge)}, layout)
    clean = M.from_bytes(updates["p0"])
    with pytest.raises(BadUpdate, match="py: .*shape"):
        A.aggregate({**updates, "py": M.to_bytes({**clean, "fc2.bias": torch.zeros(11)})}, layout)
    with pytest.raises(ValueError, match="positive integer"):
        A.aggregate(updates, layout, weights={k: 0 for k in updates})


@pytest.mark.slow
def test_three_rounds_of_fedavg_over_ten_shards_improve_test_accuracy(round0):
    split, genesis, layout, first = round0
    g, accs = genesis, [S.evaluate(M.from_bytes(genesis), split.test).accuracy]
    for r in range(3):
        ups = first if r == 0 else {f"p{i}": C.train_update(g, s, {"seed": r})
                                    for i, s in enumerate(split.shards)}
        g = A.next_global(g, A.aggregate(ups, layout))
        accs.append(S.evaluate(M.from_bytes(g), split.test).accuracy)
    assert accs[0] < 0.2  # random init on 10 classes
    assert accs[1] > accs[0] + 0.2 and accs[3] > accs[1] and accs[3] > 0.75, accs


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.floats(-A.MAX_ABS, A.MAX_ABS, width=32), min_size=6, max_size=6),
                min_size=1, max_size=8),
       st.randoms(use_true_random=False))
def test_property_fixed_point_mean_is_order_independent_and_close(rows, rnd):
    vecs = [np.array(r, dtype=np.float32) for r in rows]
    ref = A.mean_vector(vecs)
    shuffled = vecs[:]
    rnd.shuffle(shuffled)
    assert A.mean_vector(shuffled).tobytes() == ref.tobytes()
    exact = np.mean(np.stack(vecs).astype(np.float64), axis=0)
    # fixed-point rounding (2^-25 per value) plus the float32 cast of the result
    assert np.all(np.abs(ref - exact) <= 2.0 ** -24 + np.abs(exact) * 2.0 ** -23)
