"""DIN against a real Anvil: deploy hook, a full small task end-to-end through the daemons."""
from __future__ import annotations

import pytest

from agents.core.deploy import deploy_suite
from common.errors import Reverted
from agents.core.events import fetch_events
from agents.core.signers import dev_signer
from agents.din.contracts import GLOBAL, Din, Stage, TaskConfig
from agents.din.scenario import Runner, Scenario

TOKEN = 10**18


def test_deploy_hook_grants_roles_and_is_idempotent(chain):
    staking = chain.contract("Staking")
    tasks = chain.contract("DinTasks")
    rounds = chain.book.address("DinRounds")
    scoring = chain.book.address("DinScoring")
    assert chain.call(staking.functions.hasRole(chain.call(staking.functions.MODULE_ROLE()), rounds))
    assert chain.call(tasks.functions.hasRole(chain.call(tasks.functions.PAYER_ROLE()), scoring))
    assert deploy_suite(chain, dev_signer(0)).deployed == []


def test_bad_task_refused_with_named_error(chain):
    din = Din(chain)
    owner = dev_signer(1)
    cfg = TaskConfig(reward=TOKEN, evaluator_fee=0, participant_bond=0, min_evaluator_stake=0, slash_amount=0,
                     rounds=0)
    with pytest.raises(Reverted.named("InvalidParams")):
        din.create_task(owner, cfg, "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am", b"\x01" * 32)
    assert chain.call(din.tasks.functions.taskCount()) == 0


@pytest.mark.slow
def test_full_task_end_to_end(chain, store, tmp_path):
    # 8 participants in 2 subgroups of 4; 8 evaluators, 5 per subgroup: one lazy, one forging
    # aggregates, so every subgroup keeps an honest majority (>= 3 of 5); once both are barred after
    # round 0, the 6 left still fill a subgroup.
    sc = Scenario(participants=8, evaluators=8, rounds=2, subgroup_size=4, evaluators_per_subgroup=5,
                  poisoners=(2,), lazy=(6,), forgers=(7,), first_account=1)
    runner = Runner(chain, store, tmp_path, sc)
    seen = {}

    def on_stage(stage, r, sent):
        if stage in (Stage.Submit, Stage.UpdateReveal) and r == 0:
            # "restart" participant 1 from its cursor file after it committed / revealed: it sends
            # nothing more (in UpdateReveal a restarted daemon would retrain to reveal; this one
            # already revealed)
            again = runner.participant_daemon(1)
            assert again.step() == 0
            subs = [e for e in fetch_events(chain, from_block=runner.start_block, contracts=["DinTasks"],
                                            names=["UpdateCommitted", "UpdateRevealed"])
                    if e.args["participant"] == runner.participants[1].address]
            seen.setdefault("submissions_p1", []).append(sorted(e.name for e in subs))
        if stage == Stage.GlobalCommit:
            din = runner.din
            for g in range(din.subgroup_count(runner.task)):
                h, votes, fin, acc = din.tally(runner.task, r, g)
                honest = runner.daemons[-8].index.local.get(f"agg/{r}/{g}")  # evaluator 0's own result
                forged = runner.daemons[-1].index.local.get(f"agg/{r}/{g}")
                seen.setdefault("groups", []).append((acc, h, honest, forged))

    res = runner.run(on_stage)
    din = runner.din
    assert seen["submissions_p1"] == [["UpdateCommitted"], ["UpdateCommitted", "UpdateRevealed"]]

    # the forger's minority aggregate never wins: every accepted hash is an honest evaluator's CID
    from agents.din.index import cid_hash
    for acc, h, honest, forged in seen["groups"]:
        assert acc, "honest majority accepts every subgroup"
        if forged is not None:
            assert "0x" + h.hex() != cid_hash(forged)
    # global model of each round accepted, and it improves on genesis
    for r in range(sc.rounds):
        assert din.tally(res.task, r, GLOBAL)[3]
    acc = dict(res.accuracy)
    assert acc["1"] > acc["genesis"] + 0.2

    # the lazy evaluator is slashed, the honest ones are not
    lazy, forger = runner.evaluators[6].address, runner.evaluators[7].address
    assert res.slashed.get(lazy, 0) > 0
    for e in runner.evaluators[:6]:
        assert e.address not in res.slashed
    # the forger is slashed for each subgroup where it dissented
    assert res.slashed.get(forger, 0) > 0
    # both were found at fault in round 0, so they are barred from round 1: not in its roster,
    # assigned nowhere (10 slots over 8 evaluators would otherwise include them)
    for e in (lazy, forger):
        assert din.barred_from(res.task, e) == 2
        assert not din.is_eligible(res.task, 1, e) and din.assigned_subgroups(res.task, 1, e) == []
    assert din.roster_size(res.task, 0) == 8 and din.roster_size(res.task, 1) == 6

    # the poisoner earns ~0, honest participants earn
    poisoner = runner.participants[2].address
    honest_rewards = [res.rewards.get(p.address, 0) for i, p in enumerate(runner.participants) if i != 2]
    assert res.rewards.get(poisoner, 0) <= 0.02 * sum(honest_rewards)
    assert min(honest_rewards) > 0 or sorted(honest_rewards)[1] > 0

    # money: never more than the deposit; claims once
    assert res.paid_out <= res.deposit
    assert sum(res.rewards.values()) <= sc.config().reward
    assert sum(res.rewards.values()) + sum(res.fees.values()) + res.owner_refund == res.paid_out
    with pytest.raises(Reverted.named("AlreadyClaimed")):
        din.claim_reward(runner.participants[0], res.task)

    # the stake slashed in this task is shared among the evaluators never at fault, once each
    assert res.slash_pool == sum(res.slashed.values())
    assert set(res.slash_shares) == {e.address for e in runner.evaluators[:6]}
    assert len(set(res.slash_shares.values())) == 1
    assert res.slash_pool - len(res.slash_shares) < sum(res.slash_shares.values()) <= res.slash_pool
    with pytest.raises(Reverted.named("SlashShareAlreadyClaimed")):
        din.claim_slash_share(runner.evaluators[0], res.task)
    with pytest.raises(Reverted.named("NotEligibleForSlashShare")):
        din.claim_slash_share(runner.evaluators[6], res.task)
    assert res.report[0].exists() and res.report[1].exists()


def test_stale_task_cancelled_deposit_and_bonds_return(chain):
    # registration closes with participants but only 2 evaluators for k = 3: no round can ever run
    din = Din(chain)
    owner, parts, evs = dev_signer(1), [dev_signer(2), dev_signer(3)], [dev_signer(4), dev_signer(5)]
    cfg = TaskConfig(reward=100 * TOKEN, evaluator_fee=TOKEN, participant_bond=TOKEN, min_evaluator_stake=TOKEN,
                     slash_amount=TOKEN, rounds=1, subgroup_size=2, evaluators_per_subgroup=3, max_evaluators=3)
    start = {a.address: chain.call(din.token.functions.balanceOf(a.address)) for a in [owner, *parts]}
    task = din.create_task(owner, cfg, "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am", b"\x01" * 32)
    for p in parts:
        din.register(p, task)
    for i, e in enumerate(evs):
        din.stake(e, TOKEN)
        din.enrol(e, task, bytes([i + 1]) * 32)
    with pytest.raises(Reverted.named("RegistrationOpen")):
        din.cancel_task(parts[0], task)
    chain.advance_time(cfg.registration_seconds)
    din.cancel_task(parts[0], task)  # anyone may cancel a stale task
    assert din.cancelled(task)
    with pytest.raises(Reverted.named("TaskIsCancelled")):
        din.commit_update(parts[0], task, 0, "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am", b"\x01" * 32)
    din.reclaim_deposit(owner, task)
    for p in parts:
        din.withdraw_bond(p, task)
    for a in [owner, *parts]:
        assert chain.call(din.token.functions.balanceOf(a.address)) == start[a.address]
    with pytest.raises(Reverted.named("DepositAlreadyReclaimed")):
        din.reclaim_deposit(owner, task)


def test_healthy_task_cannot_be_cancelled(chain):
    din = Din(chain)
    owner, p, evs = dev_signer(1), dev_signer(2), [dev_signer(4), dev_signer(5), dev_signer(6)]
    cfg = TaskConfig(reward=100 * TOKEN, evaluator_fee=TOKEN, participant_bond=TOKEN, min_evaluator_stake=TOKEN,
                     slash_amount=TOKEN, rounds=1, subgroup_size=2, evaluators_per_subgroup=3, max_evaluators=3)
    task = din.create_task(owner, cfg, "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am", b"\x01" * 32)
    din.register(p, task)
    for i, e in enumerate(evs):
        din.stake(e, TOKEN)
        din.enrol(e, task, bytes([i + 1]) * 32)
    chain.advance_time(cfg.registration_seconds)
    with pytest.raises(Reverted.named("TaskHealthy")) as e:
        din.cancel_task(owner, task)
    assert (e.value.error_args["participants"], e.value.error_args["evaluators"]) == (1, 3)
    assert not din.cancelled(task)
