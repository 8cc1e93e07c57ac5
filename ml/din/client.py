"""Local training, written as a Flower NumPyClient so existing Flower client code can join DIN.

`DinClient.fit(parameters, config)` follows Flower's contract: `parameters` is the global model as
a list of NumPy arrays (in layout order: tensor names sorted), it trains on the participant's own
shard and returns `(trained parameters, number of samples, metrics)`. The same class runs under
Flower's own ClientApp machinery (`client_app()`), see tests/din/test_ml_client.py.

On DIN there is no Flower server: the chain coordinates the round. The participant daemon calls
`train_update(global_bytes, shard, ...)`, which runs the very same `fit` and returns what is
uploaded: the canonical safetensors bytes of the *update* (trained minus global weights). The
data never leaves the participant; only the update does.

Config keys (all optional): `epochs` (int, 5), `lr` (float, 0.5), `batch_size` (int, 16),
`seed` (int, 0; seeds batch order so a participant's training is reproducible).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from flwr.client import ClientApp, NumPyClient

from ml.din import model as M
from ml.din.data import Shard

DEFAULTS = {"epochs": 5, "lr": 0.5, "batch_size": 16, "seed": 0}


def to_ndarrays(state: Mapping[str, torch.Tensor]) -> list[np.ndarray]:
    """A state dict as Flower's parameter list: float32 arrays in layout order (names sorted)."""
    return [state[k].detach().numpy().astype(np.float32) for k in sorted(state)]


def from_ndarrays(arrays: list[np.ndarray], layout: M.Layout) -> M.State:
    """Inverse of `to_ndarrays`; ValueError on a wrong count or shape."""
    if len(arrays) != len(layout):
        raise ValueError(f"got {len(arrays)} arrays for a model of {len(layout)} tensors")
    out = {}
    for a, (k, shape) in zip(arrays, layout):
        if tuple(np.shape(a)) != shape:
            raise ValueError(f"{k}: got shape {tuple(np.shape(a))}, expected {shape}")
        out[k] = torch.tensor(np.asarray(a, dtype=np.float32))
    return out


class DinClient(NumPyClient):
    """A participant's trainer: owns its shard and a local copy of the model."""

    def __init__(self, shard: Shard, hidden: int = 64):
        self.shard = shard
        self.model = M.MLP(hidden)
        self.layout = M.layout_of(M.state_of(self.model))

    def get_parameters(self, config):
        return to_ndarrays(M.state_of(self.model))

    def set_parameters(self, parameters) -> None:
        self.model.load_state_dict(from_ndarrays(parameters, self.layout))

    def fit(self, parameters, config):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a ~5k-parameter MLP: extra threads only add sync overhead
        try:
            return self._fit(parameters, {**DEFAULTS, **dict(config or {})})
        finally:
            torch.set_num_threads(threads)

    def _fit(self, parameters, cfg):
        self.set_parameters(parameters)
        x = torch.from_numpy(self.shard.x)
        y = torch.from_numpy(self.shard.y)
        gen = torch.Generator().manual_seed(int(cfg["seed"]))
        opt = torch.optim.SGD(self.model.parameters(), lr=float(cfg["lr"]))
        self.model.train()
        total, n_batches = 0.0, 0
        for _ in range(int(cfg["epochs"])):
            perm = torch.randperm(len(self.shard), generator=gen)
            for i in range(0, len(perm), int(cfg["batch_size"])):
                b = perm[i:i + int(cfg["batch_size"])]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(self.model(x[b]), y[b])
                loss.backward()
                opt.step()
                total += loss.item()
                n_batches += 1
        return self.get_parameters({}), len(self.shard), {"train_loss": total / max(n_batches, 1)}

    def evaluate(self, parameters, config):
        self.set_parameters(parameters)
        self.model.eval()
        with torch.no_grad():
            logits = self.model(torch.from_numpy(self.shard.x))
            y = torch.from_numpy(self.shard.y)
            loss = float(torch.nn.functional.cross_entropy(logits, y))
            acc = float((logits.argmax(1) == y).float().mean())
        return loss, len(self.shard), {"accuracy": acc}


def client_app(shard_of_node, hidden: int = 64) -> ClientApp:
    """A Flower ClientApp serving DinClient; `shard_of_node(context) -> Shard` picks the data
    (e.g. from `context.node_config`)."""

    def client_fn(context):
        return DinClient(shard_of_node(context), hidden).to_client()

    return ClientApp(client_fn=client_fn)


def train_update(global_bytes: bytes, shard: Shard, config: Mapping | None = None) -> bytes:
    """What the participant daemon calls each round (no Flower server): train from the global
    model's bytes on `shard`, return the update's canonical bytes (trained - global, float32)."""
    glob = M.from_bytes(global_bytes)
    layout = M.layout_of(glob)
    M.check(glob, layout, "global model")
    client = DinClient(shard, hidden=int(glob["fc1.weight"].shape[0]))
    if client.layout != layout:
        raise ValueError(f"global model layout {layout} is not a DIN MLP layout")
    trained, _, _ = client.fit(to_ndarrays(glob), dict(config or {}))
    return M.to_bytes(M.sub(from_ndarrays(trained, layout), glob))
