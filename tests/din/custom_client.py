"""A participant's own Flower client, as a participant would write it: its own data loader (every
other digit image straight from scikit-learn, not the DIN split), its own torch module
with the task's layout, its own training loop; `loyal din participant --client
tests.din.custom_client:client_fn`. Also a few broken clients for the error paths."""
from __future__ import annotations

import numpy as np
import torch
from flwr.client import NumPyClient
from sklearn.datasets import load_digits
from torch import nn


def load_my_data(partition: int, partitions: int) -> tuple[np.ndarray, np.ndarray]:
    """This participant's data: the images i with i % partitions == partition."""
    d = load_digits()
    keep = np.arange(len(d.target)) % partitions == partition
    return (d.data[keep] / 16.0).astype(np.float32), d.target[keep].astype(np.int64)


class Net(nn.Module):
    """Same layout as the task's model (names and shapes), written independently."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class MyClient(NumPyClient):
    def __init__(self, x: np.ndarray, y: np.ndarray, device: str = "cpu"):
        self.x, self.y, self.device = x, y, torch.device(device)
        self.net = Net().to(self.device)
        self.names = sorted(self.net.state_dict())  # the layout order DIN uses

    def fit(self, parameters, config):
        self.net.load_state_dict({k: torch.tensor(a) for k, a in zip(self.names, parameters)})
        torch.manual_seed(int(config["seed"]))
        opt = torch.optim.Adam(self.net.parameters(), lr=0.01)
        x, y = torch.from_numpy(self.x).to(self.device), torch.from_numpy(self.y).to(self.device)
        for _ in range(3):
            for b in torch.randperm(len(y)).split(32):
                opt.zero_grad()
                nn.functional.cross_entropy(self.net(x[b]), y[b]).backward()
                opt.step()
        state = self.net.state_dict()
        return [state[k].detach().cpu().numpy() for k in self.names], len(y), {}


def client_fn(context):
    """Flower's client_fn shape: the Context carries the device and, if given, the partition."""
    cfg = context.node_config
    x, y = load_my_data(int(cfg.get("partition-id", 0)), int(cfg.get("num-partitions", 2)))
    return MyClient(x, y, str(cfg["device"])).to_client()  # a Flower Client wrapper is fine too


# -- broken clients (error paths) ---------------------------------------------------------------
class WrongLayout(MyClient):
    def fit(self, parameters, config):
        params, n, m = super().fit(parameters, config)
        return params[:3], n, m  # forgets a tensor


class Diverges(MyClient):
    def fit(self, parameters, config):
        params, n, m = super().fit(parameters, config)
        params[1][0, 0] = np.nan
        return params, n, m


class Crashes(MyClient):
    def fit(self, parameters, config):
        raise RuntimeError("CUDA out of memory\nTried to allocate 2 GiB")


class ReturnsNonsense(MyClient):
    def fit(self, parameters, config):
        return "done"


def wrong_layout():
    return WrongLayout(*load_my_data(0, 2))


def diverges():
    return Diverges(*load_my_data(0, 2))


def crashes():
    return Crashes(*load_my_data(0, 2))


def nonsense():
    return ReturnsNonsense(*load_my_data(0, 2))


def not_a_client(context):
    return {"fit": None}


def factory_raises(context):
    raise FileNotFoundError("/data/my-images not mounted")


instance = MyClient(*load_my_data(1, 2))
NOT_CALLABLE = 42
