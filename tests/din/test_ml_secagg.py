"""Secure aggregation: masks cancel exactly, single masked vectors look uniform, dropouts are
recovered only when every needed seed is revealed, and the evaluator's result equals the clear
aggregate byte for byte."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.din import aggregate as A
from ml.din import model as M
from ml.din import secagg as SA
from ml.din.errors import BadUpdate, RecoveryImpossible

CTX = SA.mask_context(31337, "0x" + "11" * 20, 1, 0, 2)


def make_group(n: int, seed: int = 0):
    """n members with keys and small random float32 updates in the MLP layout."""
    layout = M.layout_of(M.state_of(M.build(0)))
    rng = np.random.default_rng(seed)
    ids = [f"0x{i:040x}" for i in range(1, n + 1)]
    keys = {i: SA.private_key_from_bytes(rng.bytes(32)) for i in ids}
    pubs = {i: SA.public_bytes(k) for i, k in keys.items()}
    updates = {i: M.to_bytes(M.unflatten(rng.normal(0, 0.05, M.size_of(layout)).astype(np.float32), layout))
               for i in ids}
    return layout, ids, keys, pubs, updates


def masked_of(layout, keys, pubs, updates, who, ctx=CTX):
    return SA.mask_update(updates[who], layout, who, keys[who], pubs, ctx)


def test_pair_seeds_agree_and_depend_on_context():
    _, ids, keys, pubs, _ = make_group(3)
    a, b = ids[0], ids[1]
    s_ab = SA.pair_seed(keys[a], a, b, pubs[b], CTX)
    assert s_ab == SA.pair_seed(keys[b], b, a, pubs[a], CTX)
    assert s_ab != SA.pair_seed(keys[a], a, b, pubs[b], SA.mask_context(31337, "0x" + "11" * 20, 1, 1, 2))
    assert s_ab != SA.pair_seed(keys[a], a, ids[2], pubs[ids[2]], CTX)


def test_masks_cancel_exactly_and_match_the_clear_aggregate():
    layout, ids, keys, pubs, updates = make_group(10)
    masked = {i: masked_of(layout, keys, pubs, updates, i) for i in ids}
    n = M.size_of(layout)
    total = SA.unmask_sum({i: SA.from_bytes(b, n) for i, b in masked.items()}, ids)
    plain = sum(A.encode(M.flatten(M.from_bytes(updates[i]), layout)) for i in ids)
    assert np.array_equal(total, plain)
    assert SA.aggregate_masked(masked, ids, layout) == A.aggregate(updates, layout)
    # order of arrival does not matter either
    assert SA.aggregate_masked(dict(reversed(list(masked.items()))), ids, layout) == A.aggregate(updates, layout)


def test_evaluator_sees_only_uniform_looking_masked_vectors():
    layout, ids, keys, pubs, updates = make_group(5)
    who = ids[2]
    plain = A.encode(M.flatten(M.from_bytes(updates[who]), layout)).view(np.uint64)
    masked = SA.from_bytes(masked_of(layout, keys, pubs, updates, who), M.size_of(layout))
    assert not np.any(masked == plain)
    # top byte: plain fixed-point values are small, so it is 0x00 or 0xff; masked is uniform
    top = lambda v: (v >> np.uint64(56)).astype(np.int64)
    assert set(np.unique(top(plain))) <= {0, 255}
    counts = np.bincount(top(masked), minlength=256)
    expected = masked.size / 256
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 400  # 255 dof: mean 255, sd ~22.6; a plain vector gives ~1e6
    bits = np.unpackbits(masked.view(np.uint8))
    assert abs(bits.mean() - 0.5) < 0.01


def test_dropouts_are_recovered_from_revealed_pair_seeds():
    layout, ids, keys, pubs, updates = make_group(8)
    masked = {i: masked_of(layout, keys, pubs, updates, i) for i in ids}  # all masked with all 8
    dropped = {ids[1], ids[6]}
    survivors = [i for i in ids if i not in dropped]
    got = {i: masked[i] for i in survivors}
    revealed = {s: SA.recovery_seeds(s, keys[s], pubs, dropped, CTX) for s in survivors}
    agg = SA.aggregate_masked(got, ids, layout, revealed)
    assert agg == A.aggregate({i: updates[i] for i in survivors}, layout)
    # without removing the dropped members' masks the result is garbage, not the survivors' mean
    n = M.size_of(layout)
    raw = sum(SA.from_bytes(got[s], n) for s in survivors).view(np.int64)
    plain = sum(A.encode(M.flatten(M.from_bytes(updates[s]), layout)) for s in survivors)
    assert not np.array_equal(raw, plain)


def test_recovery_is_refused_when_a_survivor_withholds_its_seed():
    layout, ids, keys, pubs, updates = make_group(5)
    masked = {i: masked_of(layout, keys, pubs, updates, i) for i in ids}
    dropped = ids[0]
    survivors = ids[1:]
    revealed = {s: SA.recovery_seeds(s, keys[s], pubs, [dropped], CTX) for s in survivors[:-1]}
    with pytest.raises(RecoveryImpossible, match=f"{survivors[-1]} \\(for dropped {dropped}\\)") as e:
        SA.aggregate_masked({s: masked[s] for s in survivors}, ids, layout, revealed)
    assert e.value.missing == [(survivors[-1], dropped)]


def test_recovery_is_refused_when_too_few_survive():
    layout, ids, keys, pubs, updates = make_group(4)
    only = ids[3]
    revealed = {only: SA.recovery_seeds(only, keys[only], pubs, ids[:3], CTX)}
    with pytest.raises(RecoveryImpossible, match=f"only 1 of 4 members survived \\({only}\\)"):
        SA.aggregate_masked({only: masked_of(layout, keys, pubs, updates, only)}, ids, layout, revealed)


def test_malformed_masked_vectors_are_named():
    layout, ids, keys, pubs, updates = make_group(3)
    masked = {i: masked_of(layout, keys, pubs, updates, i) for i in ids}
    masked[ids[1]] = masked[ids[1]][:-8]
    with pytest.raises(BadUpdate, match=f"{ids[1]}: masked vector of"):
        SA.aggregate_masked(masked, ids, layout)
    with pytest.raises(ValueError, match="non-members"):
        SA.unmask_sum({"0xstranger": np.zeros(3, np.uint64), ids[0]: np.zeros(3, np.uint64)}, ids)


def test_a_garbage_masked_vector_spoils_the_sum_and_is_refused():
    layout, ids, keys, pubs, updates = make_group(4)
    masked = {i: masked_of(layout, keys, pubs, updates, i) for i in ids}
    rng = np.random.default_rng(9)
    masked[ids[2]] = rng.integers(0, 2**64, M.size_of(layout), dtype=np.uint64, endpoint=False).tobytes()
    with pytest.raises(BadUpdate, match="out of the fixed-point range"):
        SA.aggregate_masked(masked, ids, layout)


@settings(max_examples=25, deadline=None)
@given(ids=st.lists(st.text(alphabet="0123456789abcdefxX", min_size=1, max_size=6), min_size=2,
                    max_size=7, unique=True),
       data=st.data())
def test_property_masks_cancel_for_any_group_and_any_dropouts(ids, data):
    rng = np.random.default_rng(len(ids))
    keys = {i: SA.private_key_from_bytes(rng.bytes(32)) for i in ids}
    pubs = {i: SA.public_bytes(k) for i, k in keys.items()}
    q = {i: rng.integers(-2**40, 2**40, 17, dtype=np.int64) for i in ids}
    masked = {i: SA.mask(q[i], i, keys[i], pubs, CTX) for i in ids}
    dropped = data.draw(st.sets(st.sampled_from(ids), max_size=len(ids) - 2))
    survivors = [i for i in ids if i not in dropped]
    revealed = {s: SA.recovery_seeds(s, keys[s], pubs, dropped, CTX) for s in survivors}
    total = SA.unmask_sum({s: masked[s] for s in survivors}, ids, revealed)
    assert np.array_equal(total, sum(q[s] for s in survivors))
