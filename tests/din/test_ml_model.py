"""Model bytes: same weights -> same bytes (-> same CID); malformed updates are named and refused."""
import random

import pytest
import torch
from ml.din import model as M
from ml.din.errors import BadUpdate


def test_same_weights_give_the_same_bytes_and_cid_in_any_insertion_order(store):
    state = M.state_of(M.build(seed=1))
    blob = M.to_bytes(state)
    cid = store.put(blob)
    keys = list(state)
    for i in range(5):
        random.Random(i).shuffle(keys)
        shuffled = {k: state[k].clone() for k in keys}
        assert M.to_bytes(shuffled) == blob and store.put(M.to_bytes(shuffled)) == cid
    assert M.to_bytes(M.state_of(M.build(seed=1))) == blob  # genesis is reproducible from its seed
    assert M.to_bytes(M.state_of(M.build(seed=2))) != blob


def test_round_trip_and_non_contiguous_or_float64_input():
    state = M.state_of(M.build(seed=0))
    back = M.from_bytes(M.to_bytes(state), M.layout_of(state))
    assert all(torch.equal(state[k], back[k]) for k in state)
    odd = {k: (v.t().contiguous().t() if v.ndim == 2 else v).double() for k, v in state.items()}
    assert M.to_bytes(odd) == M.to_bytes(state)


def test_bad_updates_are_refused_with_the_reason_and_sender():
    state = M.state_of(M.build(seed=0))
    layout = M.layout_of(state)
    with pytest.raises(BadUpdate, match="p3: not a safetensors blob"):
        M.from_bytes(b"\x00" * 40, layout, "p3")
    wrong = dict(state, **{"fc1.weight": torch.zeros(3, 64)})
    with pytest.raises(BadUpdate, match=r"fc1.weight has shape \(3, 64\)"):
        M.from_bytes(M.to_bytes(wrong), layout, "p4")
    nan = {k: v.clone() for k, v in state.items()}
    nan["fc2.bias"][0] = float("nan")
    with pytest.raises(BadUpdate, match="NaN or infinity"):
        M.from_bytes(M.to_bytes(nan), layout)
    extra = dict(state, extra=torch.zeros(1))
    with pytest.raises(BadUpdate, match=r"unexpected \['extra'\]"):
        M.check(extra, layout)


def test_an_update_has_one_byte_string_other_encodings_are_refused():
    """Same tensors written with metadata or as float64 parse with safetensors but are not the
    canonical bytes: refused, so one update cannot be submitted under two content ids."""
    from safetensors.torch import save as st_save

    state = M.state_of(M.build(seed=0))
    layout = M.layout_of(state)
    blob = M.to_bytes(state)
    with_meta = st_save({k: state[k] for k in sorted(state)}, metadata={"round": "1"})
    assert with_meta != blob
    with pytest.raises(BadUpdate, match="p5: safetensors bytes are not in the canonical layout"):
        M.from_bytes(with_meta, layout, "p5")
    with pytest.raises(BadUpdate, match="p6: tensor 'fc1.bias' is torch.float64"):
        M.from_bytes(st_save({k: v.double() for k, v in state.items()}), layout, "p6")
    assert all(torch.equal(M.from_bytes(blob, layout, "p7")[k], state[k]) for k in state)


def test_flatten_unflatten_inverse():
    state = M.state_of(M.build(seed=0))
    layout = M.layout_of(state)
    v = M.flatten(state, layout)
    assert v.shape == (M.size_of(layout),) and v.dtype.name == "float32"
    assert M.to_bytes(M.unflatten(v, layout)) == M.to_bytes(state)
