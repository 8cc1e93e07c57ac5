"""Participants bring their own Flower client (`--client module:attr`) and pick the torch device;
`fit_update` checks every client's result against the task's layout and names the client."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.client import NumPyClient

from common.errors import ConfigError
from ml import device as D
from ml.din import client as C
from ml.din import data
from ml.din import model as M
from ml.din.client_loader import context, load_client
from ml.din.errors import ClientError
from tests.din import custom_client

GENESIS = M.to_bytes(M.state_of(M.build(seed=0)))
LAYOUT = M.layout_of(M.from_bytes(GENESIS))
CTX = context("cpu", task=7, shard=1, shards=2)


# -- loading ------------------------------------------------------------------------------------
def test_flower_client_fn_gets_the_context_and_is_unwrapped():
    cl = load_client("tests.din.custom_client:client_fn", CTX)
    assert isinstance(cl, custom_client.MyClient) and isinstance(cl, NumPyClient)
    assert cl.device == torch.device("cpu")
    assert len(cl.y) == len(range(1, 1797, 2))  # partition-id 1 of num-partitions 2 reached the factory
    assert CTX.node_config["task-id"] == 7


@pytest.mark.parametrize("spec", ["tests.din.custom_client:instance", "tests.din.custom_client:wrong_layout",
                                  "tests/din/custom_client.py:client_fn"])
def test_instances_zero_argument_factories_and_files_load(spec):
    assert isinstance(load_client(spec, CTX), NumPyClient)


@pytest.mark.parametrize("spec, says", [
    ("tests.din.custom_client", "expected module:attr"),
    ("no_such_pkg_xyz.train:client_fn", "no module named 'no_such_pkg_xyz'"),
    ("tests.din.custom_client:nope", "has no attribute 'nope'"),
    ("tests/din/absent.py:client_fn", "no such file"),
    ("tests.din.custom_client:NOT_CALLABLE", "not a Flower NumPyClient or a factory"),
    ("tests.din.custom_client:not_a_client", "returned a dict, not a Flower NumPyClient"),
    ("tests.din.custom_client:factory_raises", "raised FileNotFoundError: /data/my-images not mounted"),
])
def test_a_bad_client_spec_is_one_line_naming_it(spec, says):
    with pytest.raises(ConfigError) as e:
        load_client(spec, CTX)
    msg = str(e.value)
    assert says in msg and spec in msg and "\n" not in msg


def test_an_import_that_raises_is_named(tmp_path):
    bad = tmp_path / "broken_client.py"
    bad.write_text("import torch\nraise ImportError('needs torchvision')\n")
    with pytest.raises(ConfigError, match="importing .*broken_client.py raised ImportError: needs torchvision"):
        load_client(f"{bad}:client_fn", CTX)


# -- the layout contract ------------------------------------------------------------------------
def test_a_custom_client_update_has_the_task_layout():
    cl = load_client("tests.din.custom_client:client_fn", CTX)
    upd = C.fit_update(GENESIS, cl, {"seed": 3}, "tests.din.custom_client:client_fn")
    state = M.from_bytes(upd, LAYOUT, "custom")  # names, shapes, float32, finite
    assert any(float(t.abs().max()) > 0 for t in state.values())
    again = C.fit_update(GENESIS, load_client("tests.din.custom_client:client_fn", CTX), {"seed": 3})
    assert upd == again


@pytest.mark.parametrize("factory, says", [
    ("wrong_layout", "expected 4 arrays: fc1.bias (64,), fc1.weight (64, 64), fc2.bias (10,), fc2.weight (10, 64)"),
    ("diverges", "NaN or infinity"),
    ("crashes", "fit raised RuntimeError: CUDA out of memory Tried to allocate 2 GiB"),
    ("nonsense", "fit returned str, not (parameters, num_examples, metrics)"),
])
def test_a_client_that_breaks_the_contract_is_named(factory, says):
    name = f"tests.din.custom_client:{factory}"
    with pytest.raises(ClientError) as e:
        C.fit_update(GENESIS, load_client(name, CTX), {"seed": 0}, name)
    msg = " ".join(str(e.value).split())
    assert msg.startswith(f"client {name}: ") and says in msg


# -- device -------------------------------------------------------------------------------------
def test_pick_device():
    assert D.pick_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert D.pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="expected auto, cpu, cuda, cuda:N or mps"):
        D.pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device here"):
            D.pick_device("cuda")


def test_the_built_in_client_trains_on_its_device_and_stays_bit_reproducible_on_cpu():
    shard = data.split(10, seed=3).shards[0]
    cl = C.DinClient(shard, device="cpu")
    seen = set()
    cl.model.register_forward_pre_hook(lambda m, args: seen.update({args[0].device, next(m.parameters()).device}))
    a = C.fit_update(GENESIS, cl, {"seed": 7})
    assert seen == {torch.device("cpu")}
    assert a == C.train_update(GENESIS, shard, {"seed": 7}) == C.train_update(GENESIS, shard, {"seed": 7}, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_the_built_in_client_trains_on_cuda():
    shard = data.split(10, seed=3).shards[0]
    cl = C.DinClient(shard, device="cuda")
    seen = set()
    cl.model.register_forward_pre_hook(lambda m, args: seen.update({args[0].device.type, next(m.parameters()).device.type}))
    on_gpu = M.from_bytes(C.fit_update(GENESIS, cl, {"seed": 7}), LAYOUT)
    on_cpu = M.from_bytes(C.train_update(GENESIS, shard, {"seed": 7}), LAYOUT)
    assert seen == {"cuda"}
    assert all(np.allclose(on_gpu[k], on_cpu[k], atol=1e-4) for k, _ in LAYOUT)


def test_the_built_in_client_follows_the_genesis_hidden_size():
    small = M.to_bytes(M.state_of(M.build(seed=0, hidden=16)))
    upd = C.train_update(small, data.split(10, seed=3).shards[0], {"seed": 0})
    assert M.layout_of(M.from_bytes(upd)) == M.layout_of(M.from_bytes(small))
