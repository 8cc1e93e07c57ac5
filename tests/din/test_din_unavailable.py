"""Unusable or unavailable blobs against a real Anvil, through the daemons: a participant's bad CID
is its own loss (excluded, scored 0, unpaid), never the honest evaluators' (not slashed); an
accepted global model nobody can fetch is skipped by one rule every honest party applies."""
from __future__ import annotations

import pytest

from agents.core.events import fetch_events
from agents.core.signers import dev_signer
from agents.core.store import KuboStore, LocalStore, cid_of
from agents.din.blobs import ModelUnavailable
from agents.din.contracts import GLOBAL, Stage
from agents.din.index import cid_hash
from agents.din.owner import create_task
from agents.din.participant import ParticipantDaemon
from agents.din.scenario import Runner, Scenario
from ml.din import aggregate as A
from ml.din import client as C
from ml.din import data
from ml.din import model as M
from tests.din.adversaries import BadParticipantsRunner

# 10 participants in 2 subgroups of 5; in each subgroup some submit unusable CIDs, the rest train
BAD = {0: "never-stored", 1: "not-a-cid", 2: "malformed", 5: "nan", 6: "wrong-shape", 7: "oversized"}
HONEST = (3, 4, 8, 9)


def submitted(chain, runner, round_: int) -> dict[str, str]:
    return {e.args["participant"]: e.args["cid"]
            for e in fetch_events(chain, from_block=runner.start_block, contracts=["DinTasks"], names=["UpdateRevealed"])
            if e.args["taskId"] == runner.task and e.args["round"] == round_}


@pytest.mark.slow
def test_unusable_updates_cost_only_their_senders(chain, store, tmp_path):
    sc = Scenario(participants=10, evaluators=3, rounds=2, subgroup_size=5, evaluators_per_subgroup=3,
                  poisoners=(), lazy=(), first_account=1)
    runner = BadParticipantsRunner(chain, store, tmp_path, sc, bad=BAD)
    res = runner.run()  # no daemon raises: a bad blob is a verdict, not an exception
    din, task = runner.din, res.task
    parts = [p.address for p in runner.participants]
    genesis = store.get(runner.daemons[0].index.genesis)
    layout = M.layout_of(M.from_bytes(genesis))

    for r in range(sc.rounds):
        cids = submitted(chain, runner, r)
        assert set(cids) == set(parts), "every participant submitted something"
        assert cids[parts[1]] == "not-a-cid"
        for g, members in ((0, range(0, 5)), (1, range(5, 10))):
            tally = din.tally(task, r, g)
            assert tally.finalized and tally.accepted, f"round {r} group {g} not accepted"
            # the accepted aggregate is exactly the mean of the subgroup's honest members
            honest = {parts[i]: store.get(cids[parts[i]]) for i in members if i in HONEST}
            expected = cid_of(A.aggregate(honest, layout))
            assert "0x" + tally.best_hash.hex() == cid_hash(expected), f"round {r} group {g}"
        assert din.tally(task, r, GLOBAL).accepted

    # nobody slashed: every honest evaluator agreed, none was a no-show
    assert res.slashed == {} and res.slash_pool == 0
    assert set(res.fees) == {e.address for e in runner.evaluators} and min(res.fees.values()) > 0
    # the senders of unusable updates get 0 and nothing; honest participants are paid
    for i in BAD:
        assert res.medians[parts[i]] == 0, (i, BAD[i])
        assert res.rewards.get(parts[i], 0) == 0, (i, BAD[i])
    for i in HONEST:
        assert res.medians[parts[i]] > 0 and res.rewards[parts[i]] > 0, i
    assert sum(res.rewards.values()) > 0.99 * sc.config().reward  # the reward went to the honest ones
    assert res.paid_out <= res.deposit
    # each unavailable blob was judged once per evaluator and remembered in its cursor
    evaluator = runner.daemons[-1]
    verdicts = evaluator.index.local["unavailable"]
    assert "not-a-cid" in verdicts and "invalid CID" in verdicts["not-a-cid"]
    never = submitted(chain, runner, 0)[parts[0]]
    assert "not found" in verdicts[never]
    oversized = submitted(chain, runner, 0)[parts[7]]
    assert "larger than" in verdicts[oversized]
    assert any("unusable" in line for line in evaluator.log)


@pytest.mark.slow
def test_unusable_updates_on_a_real_ipfs_daemon(chain, ipfs_api, tmp_path):
    """The same through js-ipfs: a never-stored CID costs each evaluator one fetch_timeout (then
    it is judged), a malformed dag-pb block is the sender's fault, not a store outage."""
    sc = Scenario(participants=4, evaluators=3, rounds=1, subgroup_size=4, evaluators_per_subgroup=3,
                  poisoners=(), lazy=(), first_account=1)
    bad = {0: "never-stored", 1: "malformed-dag-pb", 2: "not-a-cid"}
    with KuboStore(ipfs_api, fetch_timeout=2.0) as ipfs:
        runner = BadParticipantsRunner(chain, ipfs, tmp_path, sc, bad=bad)
        res = runner.run()
        parts = [p.address for p in runner.participants]
        cids = submitted(chain, runner, 0)
        genesis = ipfs.get(runner.daemons[0].index.genesis)
        expected = cid_of(A.aggregate({parts[3]: ipfs.get(cids[parts[3]])}, M.layout_of(M.from_bytes(genesis))))
    din, task = runner.din, res.task
    assert cids[parts[1]].startswith("bafybei")
    tally = din.tally(task, 0, 0)
    assert tally.accepted and "0x" + tally.best_hash.hex() == cid_hash(expected)  # only the honest update
    assert res.slashed == {} and len(res.fees) == 3
    assert [res.rewards.get(parts[i], 0) for i in bad] == [0, 0, 0] and res.rewards[parts[3]] > 0
    verdicts = runner.daemons[-1].index.local["unavailable"]
    assert "not found" in verdicts[cids[parts[0]]] and "cannot be read" in verdicts[cids[parts[1]]]


@pytest.mark.slow
def test_unavailable_masked_upload_spoils_only_its_subgroup(chain, store, tmp_path):
    """Secure aggregation: without a member's masked upload its masks cannot cancel, so the honest
    evaluators agree on the REJECTED blob for that subgroup (its members score 0: masking hides
    who); the other subgroup is aggregated and paid; nobody is slashed."""
    from agents.din.evaluator import REJECTED

    sc = Scenario(participants=4, evaluators=3, rounds=1, subgroup_size=2, evaluators_per_subgroup=3,
                  poisoners=(), lazy=(), secure_aggregation=True, first_account=1)
    runner = BadParticipantsRunner(chain, store, tmp_path, sc, bad={0: "never-stored"})
    res = runner.run()
    din, task = runner.din, res.task
    parts = [p.address for p in runner.participants]
    spoiled, fine = din.tally(task, 0, 0), din.tally(task, 0, 1)
    assert spoiled.accepted and "0x" + spoiled.best_hash.hex() == cid_hash(cid_of(REJECTED))
    assert fine.accepted and "0x" + fine.best_hash.hex() != cid_hash(cid_of(REJECTED))
    assert din.tally(task, 0, GLOBAL).accepted
    assert res.slashed == {}
    assert res.rewards.get(parts[0], 0) == res.rewards.get(parts[1], 0) == 0
    assert res.rewards[parts[2]] > 0 and res.rewards[parts[3]] > 0


class LosingStoreRunner(Runner):
    """Deletes round 0's revealed global model from the (shared) store once it is revealed, as if
    nobody had kept it: round 1 must train from, and be combined onto, the model before it."""

    lost: str | None = None

    def run(self, on_stage=None):
        def hook(stage, r, sent):
            if stage == Stage.GlobalReveal and r == 0:
                cids = {d.index.local.get("global/0") for d in self.daemons[-self.sc.evaluators:]}
                (self.lost,) = cids  # the honest evaluators computed one global model
                self.store.path_of(self.lost).unlink()
        return super().run(hook)


@pytest.mark.slow
def test_unavailable_global_model_falls_back_to_the_previous_one(chain, store, tmp_path):
    sc = Scenario(participants=4, evaluators=3, rounds=2, subgroup_size=2, evaluators_per_subgroup=3,
                  poisoners=(), lazy=(), first_account=1)
    runner = LosingStoreRunner(chain, store, tmp_path, sc)
    res = runner.run()
    din, task = runner.din, res.task
    genesis = store.get(runner.daemons[0].index.genesis)
    layout = M.layout_of(M.from_bytes(genesis))

    # round 0's global model was accepted, then lost
    assert din.tally(task, 0, GLOBAL).accepted and not store.has(runner.lost)
    assert "0x" + din.tally(task, 0, GLOBAL).best_hash.hex() == cid_hash(runner.lost)
    # round 1: every participant trained from genesis (the latest usable model), not from the lost one
    cids = submitted(chain, runner, 1)
    for i, p in enumerate(runner.participants):
        assert cids[p.address] == cid_of(C.train_update(genesis, runner.split.shards[i], {"seed": 1})), i
    # ... and the evaluators combined round 1's aggregates onto genesis, all agreeing
    aggs, counts = {}, {}
    for g in range(din.subgroup_count(task)):
        tally = din.tally(task, 1, g)
        assert tally.accepted
        aggs[str(g)] = store.get(runner.daemons[-1].index.cid(tally.best_hash))
        counts[str(g)] = 2
    expected = cid_of(A.next_global(genesis, A.combine(aggs, counts, layout)))
    assert din.tally(task, 1, GLOBAL).accepted
    assert "0x" + din.tally(task, 1, GLOBAL).best_hash.hex() == cid_hash(expected)
    assert res.slashed == {}
    assert all(res.rewards.get(p.address, 0) > 0 for p in runner.participants)
    acc = dict(res.accuracy)
    assert acc["0"] is None and acc["1"] > acc["genesis"]  # the owner could not evaluate the lost model


def test_participant_that_cannot_see_the_genesis_model_stops_before_paying_the_bond(chain, tmp_path):
    """A second machine without IPFS_API: its embedded store lacks the genesis model. A permanent
    error naming the setting, raised before `register` (no bond paid), the same on every step."""
    sc = Scenario(participants=1, evaluators=1, rounds=1, subgroup_size=1, evaluators_per_subgroup=1)
    owner, me = dev_signer(1), dev_signer(2)
    task, genesis = create_task(chain, LocalStore(tmp_path / "owner-machine"), owner, sc.config(),
                                data.split(2, seed=0).test)
    d = ParticipantDaemon(chain, LocalStore(tmp_path / "my-machine"), me, task, None,
                          shard=data.split(2, seed=0).shards[0])
    for _ in range(2):
        with pytest.raises(ModelUnavailable) as e:
            d.step()
        msg = str(e.value)
        assert genesis in msg and "IPFS_API" in msg and "ipfs_api" in msg and "\n" not in msg
    assert not d.din.is_participant(task, me.address)
