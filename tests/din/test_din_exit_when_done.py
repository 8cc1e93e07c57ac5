"""`--exit-when-done` exits only after the daemon's own claims are made, even when the last
settlement lands between a step and the exit check. Real daemons on a real Anvil; the interleaving
is forced: right after the daemon's first idle step, "another evaluator" settles the last
subgroup (and, for the evaluator, the clock moves from the last GlobalReveal to Settle)."""
from __future__ import annotations

import dataclasses

import pytest

from agents.core.events import fetch_events
from agents.din.contracts import Stage
from agents.din.evaluator import EvaluatorDaemon
from agents.din.owner import OwnerDaemon
from agents.din.participant import ParticipantDaemon
from agents.din.run import finished, run
from agents.din.scenario import Runner, Scenario


@dataclasses.dataclass(frozen=True)
class ThreeSeats(Scenario):
    """2 evaluators enrol out of 3 seats, so the owner has unearned fees to reclaim."""

    def config(self):
        return dataclasses.replace(super().config(), max_evaluators=3)


def settle(runner, who, groups) -> None:
    """`who` settles round 0's subgroups `groups` with the medians the contract expects."""
    din, task = runner.din, runner.task
    medians = next(d for d in runner.daemons if isinstance(d, EvaluatorDaemon)).medians
    for g in groups:
        if not din.subgroup_settled(task, 0, g):
            din.settle_subgroup(who, task, 0, g, medians(0, g))


def race(daemon, before_exit_check) -> None:
    """Run `daemon` with --exit-when-done; after its first idle step call `before_exit_check()`
    (between that step and the daemon's check whether the task is finished)."""
    inner, fired = daemon.step, []

    def step(head=None):
        sent = inner(head)
        if sent == 0 and not fired:
            fired.append(True)
            before_exit_check()
        return sent

    daemon.step = step
    run(daemon, poll=0.01, exit_when_done=True, max_steps=40)
    assert fired, "the daemon never had an idle step"


@pytest.fixture
def scored(chain, store, tmp_path):
    """A 1-round task driven by the daemons through its GlobalReveal (scores revealed, nobody
    settled); 2 subgroups of one participant, both scored by both evaluators."""
    sc = ThreeSeats(participants=2, evaluators=2, rounds=1, subgroup_size=1, evaluators_per_subgroup=2,
                    poisoners=(), lazy=(), first_account=1)
    runner = Runner(chain, store, tmp_path, sc)
    runner.fund()
    runner.create()
    for stage, r in runner.schedule():
        if stage in (Stage.Close, Stage.Settle):
            break
        runner.warp_to(stage, r)
        runner.settle_stage()
    assert all(runner.din.score_vote_of(runner.task, 0, g, e.address)["revealed"]
               for g in range(2) for e in runner.evaluators)
    assert not runner.din.subgroup_settled(runner.task, 0, 0) and not runner.din.subgroup_settled(runner.task, 0, 1)
    return runner


def fresh(runner, cls, signer, **kw):
    return cls(runner.chain, runner.store, signer, runner.task, None, start_block=runner.start_block, **kw)


@pytest.mark.slow
def test_participant_claims_when_the_last_settlement_races_its_exit_check(scored):
    runner, din, task = scored, scored.din, scored.task
    runner.warp_to(Stage.Settle, 0)
    settle(runner, runner.evaluators[1], [1])  # every subgroup but participant 0's settled
    me = runner.participants[0]
    d = fresh(runner, ParticipantDaemon, me, shard=runner.split.shards[0])
    race(d, lambda: settle(runner, runner.evaluators[1], [0]))
    assert finished(din, task)
    assert din.standing_of(task, me.address).reward_claimed
    assert din.bond_returned(task, me.address)


@pytest.mark.slow
def test_owner_reclaims_when_the_last_settlement_races_its_exit_check(scored):
    runner, din, task = scored, scored.din, scored.task
    runner.warp_to(Stage.Settle, 0)
    settle(runner, runner.evaluators[1], [1])
    d = fresh(runner, OwnerDaemon, runner.owner, test=runner.split.test)
    race(d, lambda: settle(runner, runner.evaluators[1], [0]))
    assert din.totals(task)["owner_refunded"]
    refunds = [e for e in fetch_events(runner.chain, from_block=runner.start_block, contracts=["DinScoring"],
                                       names=["OwnerRefunded"]) if e.args["taskId"] == task]
    assert len(refunds) == 1 and refunds[0].args["amount"] > 0  # an empty seat's fee: there was something to reclaim


@pytest.mark.slow
def test_evaluator_claims_when_settle_opens_and_completes_after_its_last_step(scored):
    runner, din, task = scored, scored.din, scored.task
    me = runner.evaluators[0]
    d = fresh(runner, EvaluatorDaemon, me)

    def settle_stage_opens_and_the_other_evaluator_settles_everyone():
        runner.warp_to(Stage.Settle, 0)
        settle(runner, runner.evaluators[1], [0, 1])

    race(d, settle_stage_opens_and_the_other_evaluator_settles_everyone)
    assert din.account_of(task, me.address)["agreed"] > 0 and din.account_of(task, me.address)["fee_claimed"]
