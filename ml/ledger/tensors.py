"""Adapter states and deltas as canonical safetensors bytes, and the fold that defines a fork's state.

Canonical layout (a valid safetensors file, written by this module so the bytes do not depend on
the installed safetensors version):

    u64 little-endian header length N || header (N bytes) || tensor data

header = compact JSON (no spaces, ASCII) of `{name: {"dtype":"F32","shape":[...],"data_offsets":[a,b]}}`
with names sorted, no `__metadata__`, right-padded with spaces to a multiple of 8 bytes; data is
each tensor's little-endian float32 values, row-major, in name order, back to back.
`to_bytes` produces it; `from_bytes` parses with safetensors and accepts only bytes that re-encode
identically, so the same state always has exactly one byte string and one hash.

A fork's state is a fold over its deltas: `state_0 = {}` and `state_i = fold(state_{i-1}, delta_i)`,
where `fold` adds tensors elementwise in float32 (`fold({}, d) = d`). The trainer loads the folded
state back into its model after every step (not its own float result), so trainer and verifier
hold bit-identical weights.
"""
from __future__ import annotations

import json
import struct

import torch
from safetensors.torch import load as _st_load

from .errors import NonCanonicalTensors

State = dict[str, torch.Tensor]


def _canonical(state: State) -> State:
    out = {}
    for name in sorted(state):
        t = state[name]
        if t.dtype != torch.float32:
            raise NonCanonicalTensors(f"tensor {name!r} is {t.dtype}, adapters are float32")
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


def to_bytes(state: State) -> bytes:
    """Canonical safetensors bytes of `state` (float32 tensors)."""
    if not state:
        raise NonCanonicalTensors("an adapter state or delta has at least one tensor")
    return _encode(_canonical(state))


def from_bytes(data: bytes) -> State:
    """Parse canonical bytes; anything else (other dtype, metadata, order) raises NonCanonicalTensors."""
    try:
        state = _st_load(data)
    except Exception as e:  # safetensors raises its own SafetensorError / ValueError
        raise NonCanonicalTensors(f"not a safetensors blob: {e}") from None
    if not state or _encode(_canonical(state)) != data:
        raise NonCanonicalTensors("safetensors bytes are not in the canonical layout")
    return state


def fold(state: State, delta: State) -> State:
    """`state + delta` elementwise in float32; `fold({}, delta) == delta`."""
    if not state:
        return _canonical(delta)
    if set(state) != set(delta):
        missing = sorted(set(state) ^ set(delta))[:3]
        raise NonCanonicalTensors(f"delta and state name different tensors (e.g. {missing})")
    out = {}
    for name in sorted(state):
        if state[name].shape != delta[name].shape:
            raise NonCanonicalTensors(f"tensor {name!r}: delta shape {tuple(delta[name].shape)} != state shape {tuple(state[name].shape)}")
        out[name] = torch.add(state[name], delta[name])
    return out


def diff(new: State, state: State) -> State:
    """`new - state` elementwise in float32 (`diff(new, {}) == new`): the delta a step produced."""
    if not state:
        return _canonical(new)
    return {name: torch.sub(new[name].detach().cpu(), state[name]) for name in sorted(state)}
