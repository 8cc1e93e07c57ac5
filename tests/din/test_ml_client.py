"""Local training: DinClient is a real Flower NumPyClient; train_update is what the daemon calls."""
# tests/conftest.py sets Flower's offline env vars (no telemetry, no update check) before this import.
import numpy as np
import pytest
from flwr.app import Context, Message, RecordDict
from flwr.client import NumPyClient
from flwr.compat.common.parameter import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.compat.common.recorddict_compat import fitins_to_recorddict, recorddict_to_fitres
from flwr.compat.common.typing import FitIns
from flwr.supercore.task_identity import TaskIdentity

from ml.din import client as C
from ml.din import data
from ml.din import model as M
from ml.din.errors import BadUpdate


@pytest.fixture(scope="module")
def setup():
    split = data.split(10, seed=3)
    genesis = M.to_bytes(M.state_of(M.build(seed=0)))
    return split, genesis


def test_din_client_is_a_flower_numpy_client(setup):
    split, _ = setup
    assert isinstance(C.DinClient(split.shards[0]), NumPyClient)


def test_train_update_is_a_reproducible_update_in_the_model_layout(setup):
    split, genesis = setup
    layout = M.layout_of(M.from_bytes(genesis))
    a = C.train_update(genesis, split.shards[0], {"seed": 7})
    b = C.train_update(genesis, split.shards[0], {"seed": 7})
    c = C.train_update(genesis, split.shards[0], {"seed": 8})
    assert a == b and a != c
    upd = M.from_bytes(a, layout, "p0")  # checks names, shapes, float32, finite
    assert any(float(t.abs().max()) > 0 for t in upd.values())


def test_training_lowers_the_loss_on_the_own_shard(setup):
    split, genesis = setup
    shard = split.shards[1]
    cl = C.DinClient(shard)
    params = C.to_ndarrays(M.from_bytes(genesis))
    before, n, _ = cl.evaluate(params, {})
    trained, n_fit, metrics = cl.fit(params, {"seed": 0})
    after, _, _ = cl.evaluate(trained, {})
    assert n == n_fit == len(shard) and after < before and metrics["train_loss"] > 0


def test_train_update_rejects_a_garbage_global_model(setup):
    split, _ = setup
    with pytest.raises(BadUpdate, match="not a safetensors blob"):
        C.train_update(b"not a model", split.shards[0])


def test_same_client_runs_under_flowers_clientapp_machinery(setup, monkeypatch):
    """In-process: Flower's ClientApp routes a legacy `train` Message (FitIns as a RecordDict) to
    DinClient.fit and wraps the FitRes; no SuperLink, no ray. The result equals a direct fit."""
    split, genesis = setup
    # Messages are stamped with the sending process's task identity: play the server's part, as
    # flwr.server.compat.app does (restored after the test).
    for attr, value in (("_task_id", 1), ("_run_id", 1), ("_node_id", 0)):
        monkeypatch.setattr(TaskIdentity, attr, value)
    app = C.client_app(lambda ctx: split.shards[int(ctx.node_config["shard"])])
    params = C.to_ndarrays(M.from_bytes(genesis))
    ins = FitIns(ndarrays_to_parameters(params), {"seed": 5, "epochs": 2})
    msg = Message(fitins_to_recorddict(ins, keep_input=True), dst_node_id=1, message_type="train")
    ctx = Context(run_id=1, node_id=1, node_config={"shard": 2}, state=RecordDict(), run_config={})
    reply = app(msg, ctx)
    assert not reply.has_error(), reply.error
    res = recorddict_to_fitres(reply.content, keep_input=False)
    via_flower = parameters_to_ndarrays(res.parameters)
    direct, n, _ = C.DinClient(split.shards[2]).fit(params, {"seed": 5, "epochs": 2})
    assert res.num_examples == n == len(split.shards[2])
    assert all(np.array_equal(a, b) for a, b in zip(via_flower, direct))
    assert not all(np.array_equal(a, b) for a, b in zip(via_flower, params))
