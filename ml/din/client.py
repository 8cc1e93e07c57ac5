"""Local training, written as a Flower NumPyClient so existing Flower client code can join DIN.

`DinClient.fit(parameters, config)` follows Flower's contract: `parameters` is the global model as
a list of NumPy arrays (in layout order: tensor names sorted), it trains on the participant's own
shard and returns `(trained parameters, number of samples, metrics)`. The same class runs under
Flower's own ClientApp machinery (`client_app()`), see tests/din/test_ml_client.py.

On DIN there is no Flower server: the chain coordinates the round. The participant daemon calls
`fit_update(global_bytes, client, config, name)` with any NumPyClient (the built-in `DinClient`, or
a participant's own, see `ml/din/client_loader.py`): it runs the client's `fit` and returns what is
uploaded: the canonical safetensors bytes of the *update* (trained minus global weights), after
checking the client returned the task's layout (a `ClientError` naming the client otherwise).
`train_update(global_bytes, shard, ...)` is the same with the built-in client. The data never
leaves the participant; only the update does.

**Contract of a client's `fit(parameters, config)`**: `parameters` is the global model as a list
of float32 NumPy arrays in layout order (tensor names sorted; for the built-in MLP: fc1.bias,
fc1.weight, fc2.bias, fc2.weight); it returns `(parameters, num_examples, metrics)` like any Flower
NumPyClient, with the trained parameters in the same order and shapes (any float dtype, converted
to float32; finite). `config` holds `seed` (the round: seed training with it for reproducible
updates), `round` and `task`.

Built-in client config keys (all optional): `epochs` (int, 5), `lr` (float, 0.5), `batch_size`
(int, 16), `seed` (int, 0; seeds batch order so a participant's training is reproducible).

Device: `DinClient(shard, device=...)` trains on that torch device (model and batches moved there;
batch order is drawn on the CPU, so it is the same on every device). On the CPU the update is
bit-reproducible for a given seed; on CUDA it is reproducible up to the GPU's float arithmetic.
`ml.device.pick_device("auto"|"cpu"|"cuda"|"cuda:N")` resolves the `--device` option.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from flwr.client import ClientApp, NumPyClient

from common.errors import LoyalError
from ml.din import model as M
from ml.din.data import Shard
from ml.din.errors import BadUpdate, ClientError

DEFAULTS = {"epochs": 5, "lr": 0.5, "batch_size": 16, "seed": 0}


def to_ndarrays(state: Mapping[str, torch.Tensor]) -> list[np.ndarray]:
    """A state dict as Flower's parameter list: float32 arrays in layout order (names sorted)."""
    return [state[k].detach().cpu().numpy().astype(np.float32) for k in sorted(state)]


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
    """A participant's trainer: owns its shard and a local copy of the model (on `device`). The
    model's hidden size follows the parameters it is given (the task's genesis model)."""

    def __init__(self, shard: Shard, hidden: int = 64, device: torch.device | str | None = None):
        self.shard = shard
        self.device = torch.device(device or "cpu")
        self._build(hidden)

    def _build(self, hidden: int) -> None:
        self.model = M.MLP(hidden).to(self.device)
        self.layout = M.layout_of(M.state_of(self.model))

    def get_parameters(self, config):
        return to_ndarrays(M.state_of(self.model))

    def set_parameters(self, parameters) -> None:
        # layout order: fc1.bias (hidden,), fc1.weight, fc2.bias, fc2.weight
        if len(parameters) == len(self.layout) and np.ndim(parameters[0]) == 1:
            hidden = int(np.shape(parameters[0])[0])
            if hidden != self.layout[0][1][0]:
                self._build(hidden)
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
        x = torch.from_numpy(self.shard.x).to(self.device)
        y = torch.from_numpy(self.shard.y).to(self.device)
        gen = torch.Generator().manual_seed(int(cfg["seed"]))  # CPU: the same batch order on any device
        opt = torch.optim.SGD(self.model.parameters(), lr=float(cfg["lr"]))
        self.model.train()
        total, n_batches = 0.0, 0
        for _ in range(int(cfg["epochs"])):
            perm = torch.randperm(len(self.shard), generator=gen).to(self.device)
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
            logits = self.model(torch.from_numpy(self.shard.x).to(self.device))
            y = torch.from_numpy(self.shard.y).to(self.device)
            loss = float(torch.nn.functional.cross_entropy(logits, y))
            acc = float((logits.argmax(1) == y).float().mean())
        return loss, len(self.shard), {"accuracy": acc}


def client_app(shard_of_node, hidden: int = 64) -> ClientApp:
    """A Flower ClientApp serving DinClient; `shard_of_node(context) -> Shard` picks the data
    (e.g. from `context.node_config`)."""

    def client_fn(context):
        return DinClient(shard_of_node(context), hidden).to_client()

    return ClientApp(client_fn=client_fn)


def _describe(layout: M.Layout) -> str:
    return ", ".join(f"{k} {shape}" for k, shape in layout)


def fit_update(global_bytes: bytes, client: NumPyClient, config: Mapping | None = None,
               name: str = "the client") -> bytes:
    """What the participant daemon calls each round (no Flower server): `client.fit` from the
    global model's bytes, checked against the global model's layout, returned as the update's
    canonical bytes (trained - global, float32). A client that raises, returns something else
    than `(parameters, num_examples, metrics)`, or parameters of another layout or non-finite ones
    gets a ClientError naming it (`name`) and the layout it must return."""
    glob = M.from_bytes(global_bytes)
    layout = M.layout_of(glob)
    M.check(glob, layout, "global model")
    try:
        result = client.fit(to_ndarrays(glob), dict(config or {}))
    except LoyalError:
        raise
    except Exception as e:  # the participant's own code: name it, in one line
        raise ClientError(name, f"fit raised {type(e).__name__}: {e}") from e
    if not (isinstance(result, (tuple, list)) and len(result) == 3 and isinstance(result[0], (list, tuple))):
        raise ClientError(name, f"fit returned {type(result).__name__}, not (parameters, num_examples, metrics) "
                          "with parameters a list of arrays")
    try:
        trained = from_ndarrays(list(result[0]), layout)
        M.check(trained, layout, name)
    except (ValueError, TypeError) as e:
        raise ClientError(name, f"returned parameters that do not fit the task's model ({e}); "
                          f"expected {len(layout)} arrays: {_describe(layout)}") from None
    except BadUpdate as e:
        raise ClientError(name, f"returned unusable parameters: {e.reason}") from None
    return M.to_bytes(M.sub(trained, glob))


def train_update(global_bytes: bytes, shard: Shard, config: Mapping | None = None,
                 device: torch.device | str | None = None) -> bytes:
    """`fit_update` with the built-in digits client on `shard` (on `device`, default the CPU)."""
    return fit_update(global_bytes, DinClient(shard, device=device), config, "the built-in digits client")
