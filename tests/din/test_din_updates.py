"""Update commit-reveal against adversarial participants, on a real Anvil through the daemons:
copiers (colluding, identical and disguised), a participant that reveals what it did not commit
to, and one that reveals too late. Balances and slashes are asserted."""
from __future__ import annotations

import pytest

from agents.din.contracts import Stage
from agents.din.participant import UPDATE_TAG
from agents.din.scenario import Runner, Scenario
from common.errors import Reverted


@pytest.mark.slow
def test_copies_mismatched_and_late_reveals_earn_nothing(chain, store, tmp_path):
    # 8 participants in 2 subgroups of 4. Participant 5 holds participant 1's update before committing
    # (collusion: the only way to copy under commit-reveal) and commits it unchanged; participant 6
    # commits a slightly perturbed copy of participant 2's; participant 7 commits, then tries to reveal
    # participant 1's CID instead of its own, and finally its own after the reveal stage closed.
    sc = Scenario(participants=8, evaluators=3, rounds=1, subgroup_size=4, evaluators_per_subgroup=3,
                  poisoners=(), lazy=(), copies=((5, 1),), near_copies=((6, 2),), withholders=(7,),
                  first_account=1)
    runner = Runner(chain, store, tmp_path, sc)
    runner.fund()
    parts = [p.address for p in runner.participants]
    start = {a: runner.din.pay.balance(a) for a in parts}
    seen: dict[str, object] = {}

    def liar():
        return runner.daemons[1 + 7]

    def on_stage(stage, r, sent):
        din, task = runner.din, runner.task
        p7 = runner.participants[7]
        if stage == Stage.UpdateReveal:
            own = liar().index.local["update/0"]
            seen["revealed"] = {a: din.update_revealed(task, 0, a) for a in parts}
            copied_cid = runner.daemons[1 + 1].index.local["update/0"]
            with pytest.raises(Reverted.named("UpdateCommitmentMismatch")):
                din.reveal_update(p7, task, 0, copied_cid, liar().secret(task, UPDATE_TAG, 0))
            with pytest.raises(Reverted.named("UpdateCommitmentMismatch")):  # right CID, wrong salt
                din.reveal_update(p7, task, 0, own, b"\x07" * 32)
            seen["own"] = own
        if stage == Stage.AggregateCommit:
            with pytest.raises(Reverted.named("OutsideWindow")):
                din.reveal_update(p7, task, 0, seen["own"], liar().secret(task, UPDATE_TAG, 0))

    res = runner.run(on_stage)
    din = runner.din
    copier, disguised, late = parts[5], parts[6], parts[7]

    # every participant committed; all but the liar revealed; the copier's CID is the original's
    assert seen["revealed"] == {a: a != late for a in parts}
    ev = runner.daemons[-1]
    assert ev.index.updates(0, 0)[parts[1]] == ev.index.updates(0, 1)[copier]
    assert ev.index.updates(0, 0)[parts[2]] != ev.index.updates(0, 1)[disguised]
    orders = ev.index.commit_orders(0)
    assert orders[parts[1]] < orders[copier] and orders[parts[2]] < orders[disguised]

    # the copiers and the liar score 0 and are paid nothing; the originals are paid
    for a in (copier, disguised, late):
        assert res.medians[a] == 0 and res.rewards.get(a, 0) == 0
    for i in (0, 1, 2, 3, 4):
        assert res.medians[parts[i]] > 0 and res.rewards[parts[i]] > 0
    # balances: bond back to everyone, plus exactly the claimed reward
    for a in parts:
        assert din.pay.balance(a) == start[a] + res.rewards.get(a, 0)
    assert not res.slashed, "honest evaluators: nobody slashed"
    assert sum(res.rewards.values()) <= sc.config().reward and res.paid_out <= res.deposit
