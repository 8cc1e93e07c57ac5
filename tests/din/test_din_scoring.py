"""Per-round, per-subgroup scoring on the concealed test slices, against an adversarial owner and
an adversarial evaluator, on a real Anvil through the daemons. Balances and slashes are asserted."""
from __future__ import annotations

import pytest

from agents.din.contracts import SCALE, Stage
from agents.din.evaluator import SCORE_TAG
from agents.din.scenario import Runner, Scenario
from agents.din.slices import TestSlices
from common.errors import Reverted

TOKEN = 10**18


def run(chain, store, path, sc: Scenario, on_stage=None):
    runner = Runner(chain, store, path, sc)
    runner.fund()
    who = [runner.owner.address] + [a.address for a in runner.participants + runner.evaluators]
    start = {a: runner.din.pay.balance(a) for a in who}
    res = runner.run(on_stage)
    end = {a: runner.din.pay.balance(a) for a in who}
    return runner, res, start, end


@pytest.mark.slow
def test_owner_withholding_a_slice_gains_nothing(chain, store, tmp_path):
    # the same task twice (same data, same training): once honest, once with round 1's slice withheld
    base = dict(participants=6, evaluators=3, rounds=2, subgroup_size=3, evaluators_per_subgroup=3,
                poisoners=(0,), lazy=(), first_account=1)
    honest_runner, honest, h0, h1 = run(chain, store, tmp_path / "honest", Scenario(**base))
    runner, res, start, end = run(chain, store, tmp_path / "withheld", Scenario(**base, withheld_slices=(1,)))
    din, task = runner.din, res.task
    cfg = runner.sc.config()
    owner = runner.owner.address
    parts = [p.address for p in runner.participants]

    assert din.test_slice(task, 0) != b"\x00" * 32 and din.test_slice(task, 1) == b"\x00" * 32
    # the owner's slices are exactly what the task committed to: the root binds round 1's slice too
    assert TestSlices.cut(runner.split.test, 2).root == din.params(task).test_slice_root
    t = din.totals(task)
    assert t["scored_rounds"] == 1 and t["settled_groups"] == t["groups_to_settle"] == 4
    # round 1 counts, for everyone who revealed in it, as its round-0 median (its mean over scored rounds)
    assert all(res.unscored_rounds[a] == 1 for a in parts)
    for a in parts:
        assert res.rewards.get(a, 0) == cfg.reward * res.medians[a] * 2 // (2 * sum(res.medians.values()))
    # the withholding owner gets back no reward and no fee of the withheld round: at most what the
    # honest owner got back (here both are 0: every evaluator agreed on every slot)
    assert res.owner_refund <= honest.owner_refund
    assert end[owner] - start[owner] <= h1[honest_runner.owner.address] - h0[honest_runner.owner.address]
    assert cfg.reward - sum(res.rewards.values()) <= len(parts), "the whole reward went to participants"
    assert sum(res.fees.values()) >= sum(honest.fees.values()), "evaluators keep the withheld round's fees"
    # the poisoner stays at 0 in both runs; honest participants are paid; balances add up
    assert res.rewards.get(parts[0], 0) == 0 == honest.rewards.get(parts[0], 0)
    assert all(res.rewards[a] > 0 for a in parts[1:])
    for a in parts:
        assert end[a] - start[a] == res.rewards.get(a, 0)  # bond back + reward
    assert not res.slashed and res.paid_out <= res.deposit


@pytest.mark.slow
def test_an_evaluator_revealing_garbage_scores_moves_no_median(chain, store, tmp_path):
    # 6 participants in 2 subgroups of 3; 4 evaluators, 3 per subgroup; evaluator 3 reveals 1.0 for
    # every member it scores (a consistent commitment: the reveal is accepted, it just lies)
    sc = Scenario(participants=6, evaluators=4, rounds=1, subgroup_size=3, evaluators_per_subgroup=3,
                  poisoners=(0, 3), lazy=(), garbage_scorers=(3,), first_account=1)
    seen = {}

    def on_stage(stage, r, sent):
        if stage != Stage.GlobalReveal:
            return
        din, task = runner.din, runner.task
        liar = runner.daemons[-1]
        for g in din.assigned_subgroups(task, 0, liar.address):
            # the liar cannot change its mind at reveal time: another vector or an out-of-range one
            with pytest.raises(Reverted.named("AlreadyRevealed")):
                din.reveal_scores(liar.signer, task, 0, g, [0] * 3, liar.secret(task, SCORE_TAG, 0, g))
            seen.setdefault("liar_groups", []).append(g)
        for g in range(2):
            seen[g] = din.scores_for(task, 0, g)

    runner = Runner(chain, store, tmp_path, sc)
    runner.fund()
    parts = [p.address for p in runner.participants]
    evs = [e.address for e in runner.evaluators]
    start = {a: runner.din.pay.balance(a) for a in parts + evs}
    res = runner.run(on_stage)
    din, task = runner.din, res.task

    assert seen["liar_groups"], "the liar scored at least one subgroup"
    for g in range(2):
        evaluators, vectors = seen[g]
        honest = [v for e, v in zip(evaluators, vectors) if e != evs[3]]
        assert len(honest) >= 2 and all(v == honest[0] for v in honest), "honest evaluators agree exactly"
        if evs[3] in evaluators:
            assert vectors[evaluators.index(evs[3])] == [SCALE] * 3
        for i, a in enumerate(parts[3 * g:3 * g + 3]):
            assert res.medians[a] == honest[0][i], "the median is the honest score"
    # the poisoners (one per subgroup) score 0 despite the liar's 1.0; an honest evaluator earns every
    # slot it scored, the liar loses the slots where it is more than 0.5 off the median
    for i in (0, 3):
        assert res.medians[parts[i]] == 0 and res.rewards.get(parts[i], 0) == 0
    slots = {e: 3 * len(din.assigned_subgroups(task, 0, e)) for e in evs}
    total = din.totals(task)["slots"]
    assert total == sum(slots.values()) == 2 * 3 * 3
    for e in evs[:3]:
        assert din.account_of(task, e)["agreed"] == slots[e]
        assert res.fees.get(e, 0) == sc.config().evaluator_fee * 4 * slots[e] // total
    assert din.account_of(task, evs[3])["agreed"] <= slots[evs[3]] - len(seen["liar_groups"])
    assert res.fees.get(evs[3], 0) < sc.config().evaluator_fee * 4 * slots[evs[3]] // total
    # scores are not slashed, only unpaid; balances add up
    assert not res.slashed
    for a in parts:
        assert din.pay.balance(a) - start[a] == res.rewards.get(a, 0)
    for e in evs:
        assert din.pay.balance(e) - start[e] == res.fees.get(e, 0) + res.slash_shares.get(e, 0)
    assert res.paid_out <= res.deposit


@pytest.mark.slow
def test_owner_ends_the_task_after_round_0(chain, store, tmp_path):
    # planned 3 rounds; the owner daemon ends the task during round 0: Close and Settle follow round
    # 0, rounds 1 and 2 never happen, and the whole reward is paid for the round held
    sc = Scenario(participants=6, evaluators=3, rounds=3, subgroup_size=3, evaluators_per_subgroup=3,
                  poisoners=(0,), lazy=(), end_after=0, first_account=1)
    runner, res, start, end = run(chain, store, tmp_path, sc)
    din, task = runner.din, res.task
    cfg = sc.config()
    assert din.rounds_held(task) == 1 and din.params(task).rounds == 3
    assert din.stage(task)[0] == Stage.Settle
    assert din.round_seed(task, 1) == b"\x00" * 32, "round 1 never ran"
    t = din.totals(task)
    assert t["groups_to_settle"] == t["settled_groups"] == 2 and t["scored_rounds"] == 1
    parts = [p.address for p in runner.participants]
    assert cfg.reward - sum(res.rewards.values()) <= len(parts), "the whole reward, for round 0"
    assert res.rewards.get(parts[0], 0) == 0 and all(res.rewards[a] > 0 for a in parts[1:])
    for a in parts:
        assert end[a] - start[a] == res.rewards.get(a, 0)
    owner = runner.owner.address
    assert start[owner] - end[owner] == cfg.deposit - res.owner_refund  # deposit out, refund back
    assert not res.slashed and res.paid_out <= res.deposit
