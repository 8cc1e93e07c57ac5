"""common.tensors: one byte string per float32 state; every other encoding of it is refused."""
from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from common.tensors import TensorCodecError, from_bytes, to_bytes

STATE = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([0.5, -1.0])}


def _encoded(header: dict, data: bytes, *, separators=(",", ":"), extra_pad: int = 0) -> bytes:
    """A safetensors file for `header` and `data`, with its JSON written in some other way."""
    h = json.dumps(header, separators=separators).encode()
    h += b" " * (-len(h) % 8 + extra_pad)
    return struct.pack("<Q", len(h)) + h + data


def test_round_trip_and_safetensors_compatible():
    blob = to_bytes(STATE)
    back = from_bytes(blob)
    assert list(back) == ["b", "w"] and all(torch.equal(back[k], STATE[k]) for k in STATE)
    assert blob == st_save({k: STATE[k] for k in sorted(STATE)}), "the bytes safetensors' writer gives"
    assert all(torch.equal(st_load(blob)[k], STATE[k]) for k in STATE)
    assert to_bytes({"w": STATE["w"].t().contiguous().t(), "b": STATE["b"]}) == blob, "layout in memory is irrelevant"


def test_other_encodings_of_the_same_tensors_are_refused():
    blob = to_bytes(STATE)
    n = struct.unpack("<Q", blob[:8])[0]
    header, data = json.loads(blob[8:8 + n]), blob[8 + n:]
    variants = {
        "metadata": st_save({k: STATE[k] for k in sorted(STATE)}, metadata={"x": "y"}),
        "wider padding": _encoded(header, data, extra_pad=8),
        "spaced JSON": _encoded(header, data, separators=(", ", ": ")),
        "reversed names": _encoded(dict(reversed(header.items())), data),
    }
    for name, other in variants.items():
        assert other != blob
        assert torch.equal(st_load(other)["w"], STATE["w"]), f"{name}: safetensors reads the same tensors"
        with pytest.raises(TensorCodecError, match="canonical"):
            from_bytes(other)


def test_non_float32_empty_and_garbage_are_refused():
    with pytest.raises(TensorCodecError, match="float32"):
        to_bytes({"a": torch.ones(2, dtype=torch.float64)})
    with pytest.raises(TensorCodecError, match="float32"):
        from_bytes(st_save({"a": torch.ones(2, dtype=torch.float16)}))
    with pytest.raises(TensorCodecError, match="at least one tensor"):
        to_bytes({})
    with pytest.raises(TensorCodecError, match="not a safetensors blob"):
        from_bytes(b"\x00" * 40)


def test_ledger_and_din_write_the_same_bytes():
    from ml.din import model as din_model
    from ml.ledger import tensors as ledger_tensors

    assert ledger_tensors.to_bytes(STATE) == din_model.to_bytes(STATE) == to_bytes(STATE)
