"""The canonical tensor codec: one byte string per set of float32 tensors, whatever wrote them.

Layout (a valid safetensors file, written here so the bytes do not depend on the installed
safetensors version):

    u64 little-endian header length N || header (N bytes) || tensor data

header = compact JSON (no spaces, ASCII) of `{name: {"dtype":"F32","shape":[...],"data_offsets":[a,b]}}`
with names sorted, no `__metadata__`, right-padded with spaces to a multiple of 8 bytes; data is
each tensor's little-endian float32 values, row-major, in name order, back to back (the bytes
safetensors' own writer gives for such a state today).

`to_bytes` produces it; `from_bytes` parses with safetensors and accepts only bytes that re-encode
identically, so a state has exactly one byte string (one hash, one content id) and nobody can make
a second one for it. Both the training ledger (adapter states and deltas) and DIN (model weights
and updates) use this codec; each turns `TensorCodecError` into its own protocol error.
"""
from __future__ import annotations

import json
import struct
from collections.abc import Mapping

import torch
from safetensors.torch import load as _st_load

from common.errors import LoyalError

State = dict[str, torch.Tensor]


class TensorCodecError(LoyalError):
    """Tensors or bytes outside the canonical layout (not float32, empty, metadata, other order...)."""


def canonical(state: Mapping[str, torch.Tensor]) -> State:
    """`state` with names sorted and each tensor a detached, contiguous CPU copy; float32 only."""
    out = {}
    for name in sorted(state):
        t = state[name]
        if t.dtype != torch.float32:
            raise TensorCodecError(f"tensor {name!r} is {t.dtype}, the canonical codec holds float32 only")
        out[name] = t.detach().to("cpu").contiguous().clone()
    return out


def _encode(state: State) -> bytes:
    header, chunks, offset = {}, [], 0
    for name in sorted(state):
        data = state[name].numpy().astype("<f4", copy=False).tobytes(order="C")
        header[name] = {"dtype": "F32", "shape": list(state[name].shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(chunks)


def to_bytes(state: Mapping[str, torch.Tensor]) -> bytes:
    """Canonical safetensors bytes of `state` (at least one float32 tensor)."""
    if not state:
        raise TensorCodecError("a tensor state has at least one tensor")
    return _encode(canonical(state))


def from_bytes(data: bytes) -> State:
    """The state (names sorted) of canonical bytes; anything else (unparsable, other dtype, metadata,
    order, padding) raises TensorCodecError."""
    data = bytes(data)
    try:
        state = _st_load(data)
    except Exception as e:  # safetensors raises its own SafetensorError / ValueError
        raise TensorCodecError(f"not a safetensors blob ({e})") from None
    if not state:
        raise TensorCodecError("a tensor state has at least one tensor")
    state = canonical(state)
    if _encode(state) != data:
        raise TensorCodecError("safetensors bytes are not in the canonical layout")
    return state
