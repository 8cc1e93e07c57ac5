"""Adapter states and deltas as canonical safetensors bytes, and the fold that defines a fork's state.

The bytes are `common.tensors`' canonical layout (sorted names, float32, no metadata, one byte
string per state); `from_bytes` accepts nothing else, raising `NonCanonicalTensors`.

A fork's state is a fold over its deltas: `state_0 = {}` and `state_i = fold(state_{i-1}, delta_i)`,
where `fold` adds tensors elementwise in float32 (`fold({}, d) = d`). The trainer loads the folded
state back into its model after every step (not its own float result), so trainer and verifier
hold bit-identical weights.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from common import tensors as codec

from .errors import NonCanonicalTensors

State = codec.State


@contextmanager
def _as_ledger_error():
    """The codec's refusals are the ledger's NonCanonicalTensors (a LedgerDataError)."""
    try:
        yield
    except codec.TensorCodecError as e:
        raise NonCanonicalTensors(str(e)) from None


def _canonical(state: State) -> State:
    with _as_ledger_error():
        return codec.canonical(state)


def to_bytes(state: State) -> bytes:
    """Canonical safetensors bytes of `state` (float32 tensors)."""
    with _as_ledger_error():
        return codec.to_bytes(state)


def from_bytes(data: bytes) -> State:
    """Parse canonical bytes; anything else (other dtype, metadata, order) raises NonCanonicalTensors."""
    with _as_ledger_error():
        return codec.from_bytes(data)


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
