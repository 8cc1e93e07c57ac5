"""`--exit-when-done` exits only after the daemon's own claims are made, even when the last
settlement lands between a step and the exit check. Real daemons on a real Anvil; the interleaving
is forced: right after the daemon's first idle step, "another evaluator" settles the last
participant (and, for the evaluator, the clock moves from ScoreReveal to Settle)."""
from __future__ import annotations

import dataclasses

import pytest

from agents.din.contracts import Stage, lower_median
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


def settle(runner, who, indices) -> None:
    din, task = runner.din, runner.task
    for i in indices:
        if not din.median_of(task, i).settled:
            din.settle_participant(who, task, i, lower_median(din.scores_for(task, i).scores))


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
    """A 1-round task driven by the daemons up to ScoreReveal (scores revealed, nobody settled)."""
    sc = ThreeSeats(participants=2, evaluators=2, rounds=1, subgroup_size=2, evaluators_per_subgroup=2,
                    poisoners=(), lazy=(), first_account=1)
    runner = Runner(chain, store, tmp_path, sc)
    runner.fund()
    runner.create()
    for stage, r in runner.schedule():
        if stage == Stage.Settle:
            break
        runner.warp_to(stage, r)
        runner.settle_stage()
    assert all(runner.din.reveal_of(runner.task, e.address)["complete"] for e in runner.evaluators)
    return runner


def fresh(runner, cls, signer, **kw):
    return cls(runner.chain, runner.store, signer, runner.task, None, start_block=runner.start_block, **kw)


@pytest.mark.slow
def test_participant_claims_when_the_last_settlement_races_its_exit_check(scored):
    runner, din, task = scored, scored.din, scored.task
    runner.warp_to(Stage.Settle, 0)
    settle(runner, runner.evaluators[1], [1])  # every participant but participant 0 settled
    me = runner.participants[0]
    d = fresh(runner, ParticipantDaemon, me, shard=runner.split.shards[0])
    race(d, lambda: settle(runner, runner.evaluators[1], [0]))
    assert finished(din, task)
    assert din.reward_of(task, me.address) > 0 and din.reward_claimed(task, me.address)
    assert din.bond_returned(task, me.address)


@pytest.mark.slow
def test_owner_reclaims_when_the_last_settlement_races_its_exit_check(scored):
    runner, din, task = scored, scored.din, scored.task
    runner.warp_to(Stage.Settle, 0)
    settle(runner, runner.evaluators[1], [1])
    d = fresh(runner, OwnerDaemon, runner.owner, test=runner.split.test)
    race(d, lambda: settle(runner, runner.evaluators[1], [0]))
    assert din.totals(task)["owner_refunded"]
    assert din.owner_refund_of(task) > 0  # an empty seat's fee: there was something to reclaim


@pytest.mark.slow
def test_evaluator_claims_when_settle_opens_and_completes_after_its_last_step(scored):
    runner, din, task = scored, scored.din, scored.task
    me = runner.evaluators[0]
    d = fresh(runner, EvaluatorDaemon, me)

    def settle_stage_opens_and_the_other_evaluator_settles_everyone():
        runner.warp_to(Stage.Settle, 0)
        settle(runner, runner.evaluators[1], [0, 1])

    race(d, settle_stage_opens_and_the_other_evaluator_settles_everyone)
    assert din.fee_of(task, me.address) > 0 and din.reveal_of(task, me.address)["fee_claimed"]
