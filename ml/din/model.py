"""DIN's model: a small MLP for 8x8 digits, and its canonical bytes.

`to_bytes` converts a state dict (name -> tensor) to float32 and writes it with the canonical
tensor codec (`common.tensors`: sorted names, float32, no metadata), so the same weights always give
the same bytes and therefore the same content id. `from_bytes` accepts only such bytes: an update
has exactly one byte string, so a participant cannot submit two different blobs (two CIDs) for one
update. Anything else is a `BadUpdate` naming the participant.

A *layout* is the sorted tuple of (name, shape) pairs of the model's parameters; updates are
flattened in that order (see `flatten` / `unflatten`), which fixes the coordinate order used by
aggregation and secure aggregation.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from common import tensors
from ml.din.data import NUM_CLASSES, NUM_FEATURES
from ml.din.errors import BadUpdate

Layout = tuple[tuple[str, tuple[int, ...]], ...]
State = dict[str, torch.Tensor]


class MLP(nn.Module):
    """64 -> hidden -> 10 with ReLU; ~4.8k parameters at hidden=64."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.fc1 = nn.Linear(NUM_FEATURES, hidden)
        self.fc2 = nn.Linear(hidden, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def build(seed: int = 0, hidden: int = 64) -> MLP:
    """A freshly initialised MLP; the same seed gives the same weights (the genesis model)."""
    g = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        return MLP(hidden)
    finally:
        torch.set_rng_state(g)


def state_of(model: nn.Module) -> State:
    """The model's parameters as a detached float32 state dict."""
    return {k: v.detach().to(torch.float32).clone() for k, v in model.state_dict().items()}


def load_state(state: Mapping[str, torch.Tensor], hidden: int | None = None) -> MLP:
    """An MLP holding `state` (hidden size inferred from fc1.weight unless given)."""
    h = hidden if hidden is not None else int(state["fc1.weight"].shape[0])
    m = MLP(h)
    m.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
    return m


def layout_of(state: Mapping[str, torch.Tensor]) -> Layout:
    """Sorted (name, shape) pairs: the coordinate order of flattened updates."""
    return tuple((k, tuple(int(d) for d in state[k].shape)) for k in sorted(state))


def size_of(layout: Layout) -> int:
    """Number of scalars in a layout."""
    return int(sum(int(np.prod(s)) for _, s in layout))


def to_bytes(state: Mapping[str, torch.Tensor]) -> bytes:
    """Canonical bytes (`common.tensors`) of a state dict, every tensor converted to float32 first."""
    return tensors.to_bytes({k: torch.as_tensor(v).detach().to("cpu", torch.float32) for k, v in state.items()})


def from_bytes(blob: bytes, layout: Layout | None = None, who: str | None = None) -> State:
    """Parse canonical bytes; with `layout`, also check names, shapes, dtype and finiteness.
    Raises BadUpdate (naming `who`) on anything unusable or not canonical."""
    try:
        state = tensors.from_bytes(blob)
    except tensors.TensorCodecError as e:
        raise BadUpdate(str(e), who) from None
    if layout is not None:
        check(state, layout, who)
    return state


def check(state: Mapping[str, torch.Tensor], layout: Layout, who: str | None = None) -> None:
    """Raise BadUpdate unless `state` has exactly `layout`'s tensors, float32 and finite."""
    want = dict(layout)
    if set(state) != set(want):
        extra, missing = sorted(set(state) - set(want)), sorted(set(want) - set(state))
        raise BadUpdate(f"tensor names differ (unexpected {extra}, missing {missing})", who)
    for k, shape in layout:
        t = state[k]
        if tuple(t.shape) != shape:
            raise BadUpdate(f"{k} has shape {tuple(t.shape)}, expected {shape}", who)
        if t.dtype != torch.float32:
            raise BadUpdate(f"{k} has dtype {t.dtype}, expected float32", who)
        if not bool(torch.isfinite(t).all()):
            raise BadUpdate(f"{k} contains NaN or infinity", who)


def flatten(state: Mapping[str, torch.Tensor], layout: Layout, who: str | None = None) -> np.ndarray:
    """One float32 vector in layout order (checks the state first)."""
    check(state, layout, who)
    return np.concatenate([state[k].detach().numpy().astype(np.float32, copy=False).ravel()
                           for k, _ in layout])


def unflatten(vec: np.ndarray, layout: Layout) -> State:
    """Inverse of `flatten`."""
    vec = np.asarray(vec, dtype=np.float32)
    if vec.shape != (size_of(layout),):
        raise BadUpdate(f"vector of shape {vec.shape} does not fit a layout of {size_of(layout)} values")
    out, off = {}, 0
    for k, shape in layout:
        n = int(np.prod(shape))
        out[k] = torch.from_numpy(vec[off:off + n].reshape(shape).copy())
        off += n
    return out


def add(base: Mapping[str, torch.Tensor], delta: Mapping[str, torch.Tensor]) -> State:
    """base + delta elementwise in float32 (IEEE, so the result is the same on every machine)."""
    if set(base) != set(delta):
        raise BadUpdate("base and delta have different tensor names")
    return {k: (base[k].to(torch.float32) + delta[k].to(torch.float32)) for k in sorted(base)}


def sub(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> State:
    """a - b elementwise in float32 (the update a participant uploads: trained - global)."""
    if set(a) != set(b):
        raise BadUpdate("states have different tensor names")
    return {k: (a[k].to(torch.float32) - b[k].to(torch.float32)) for k in sorted(a)}
