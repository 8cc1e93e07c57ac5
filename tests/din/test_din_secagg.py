"""Secure aggregation wired into DIN, on a real Anvil: masked uploads, mask keys on-chain, dropout
recovery, bit-reproducible unmasked aggregates agreed by the evaluators' majority."""
from __future__ import annotations

import numpy as np
import pytest

from agents.core.events import fetch_events
from agents.din.contracts import GLOBAL, Stage
from agents.din.index import cid_hash
from agents.din.scenario import Runner, Scenario
from ml.din import aggregate as A
from ml.din import client as flwr_client
from ml.din import model as M


@pytest.mark.slow
def test_secagg_task_accepts_the_survivors_clear_aggregate(chain, store, tmp_path):
    # 6 participants in 2 subgroups of 3; participant 4 (subgroup 1) drops out after registering.
    sc = Scenario(participants=6, evaluators=3, rounds=2, subgroup_size=3, evaluators_per_subgroup=3,
                  poisoners=(), lazy=(), forgers=(), secure_aggregation=True, dropouts=(4,), first_account=1)
    runner = Runner(chain, store, tmp_path, sc)
    res = runner.run()
    din, task = runner.din, res.task
    assert din.params(task).secure_aggregation
    parts = [p.address for p in runner.participants]
    dropout = parts[4]
    evaluator = runner.daemons[-1]  # any daemon's index sees the same events

    # every member published its mask key on-chain, authenticated by its own account
    keys = {**evaluator.index.mask_keys(0), **evaluator.index.mask_keys(1)}
    assert set(keys) == set(parts)
    assert all(din.mask_key_of(task, who) == k for who, k in keys.items())

    events = fetch_events(chain, from_block=runner.start_block, contracts=["DinTasks"])
    submitted = [e for e in events if e.name == "UpdateRevealed"]
    assert dropout not in {e.args["participant"] for e in submitted}
    # recovery seeds: only the survivors of subgroup 1, only for the on-chain dropout, every round
    recovery = [e for e in events if e.name == "RecoverySeedsPosted"]
    assert sorted((e.args["round"], e.args["survivor"]) for e in recovery) == sorted(
        (r, parts[i]) for r in range(sc.rounds) for i in (3, 5))
    assert all(list(e.args["dropped"]) == [dropout] and e.args["subgroup"] == 1 for e in recovery)

    for r in range(sc.rounds):
        global_bytes = store.get(evaluator.global_cid_before(r))
        layout = M.layout_of(M.from_bytes(global_bytes))
        n = M.size_of(layout)
        for g, members in ((0, (0, 1, 2)), (1, (3, 5))):
            # the participants' clear updates, retrained here (deterministic for a given seed)
            clear = {parts[i]: flwr_client.train_update(global_bytes, runner.split.shards[i], {"seed": r})
                     for i in members}
            h, votes, finalized, accepted = din.tally(task, r, g)
            assert finalized and accepted and votes == 3
            agreed = store.get(evaluator.index.cid(h))
            assert agreed == A.aggregate(clear, layout), f"round {r} subgroup {g}: masked sum != clear mean"
            # no stored upload is a clear update or its fixed-point encoding
            for who, cid in evaluator.index.updates(r, g).items():
                upload = store.get(cid)
                assert len(upload) == 8 * n
                assert upload != clear[who]
                q = A.encode(M.flatten(M.from_bytes(clear[who], layout), layout))
                assert upload != q.astype("<i8").tobytes()
                y = np.frombuffer(upload, dtype="<u8")
                assert np.count_nonzero(y.view(np.int64) == q) < n // 100
        assert din.tally(task, r, GLOBAL)[3], f"round {r}: global model accepted"

    # an evaluator learns only subgroup sums: each survivor's score is its subgroup's
    acc = dict(res.accuracy)
    assert acc["1"] > acc["genesis"] + 0.2
    assert not res.slashed, "every evaluator could aggregate: nobody slashed"
    assert res.medians[dropout] == 0 and res.rewards.get(dropout, 0) == 0
    assert res.medians[parts[0]] == res.medians[parts[1]] == res.medians[parts[2]]
    assert res.medians[parts[3]] == res.medians[parts[5]]
    assert all(res.rewards.get(parts[i], 0) > 0 for i in (0, 1, 2, 3, 5))
    assert res.paid_out <= res.deposit
    # a masked upload's CID is never revealed as an aggregate
    revealed = {cid_hash(c) for c in evaluator.index.state["cids"].values()}
    assert not revealed & {cid_hash(e.args["cid"]) for e in submitted}
    assert din.stage(task)[0] == Stage.Settle
