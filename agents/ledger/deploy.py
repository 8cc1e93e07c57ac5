"""Deploy hook: the TrainingLedger singleton, paying LoyalToken for attested quality, with a seeded
reward pool. The ledger locks and slashes evaluator bonds through the core Staking, so it gets
Staking's LOCKER_ROLE and MODULE_ROLE; the deployer holds REFEREE_ROLE (re-checks) until the DAO does."""
from __future__ import annotations

from agents.core.deploy import Deployer

REWARD_PER_OP = 10**18  # 1 LOYAL per rewarded op
INITIAL_POOL = 100_000 * 10**18
LOSS_SCALE = 10**9  # TrainingLedger.LOSS_SCALE: losses in nats x 1e9
QUALITY_POLICY = (
    100 * 10**18,  # minEvaluatorStake: 100 LOYAL active in Staking
    LOSS_SCALE // 1000,  # minGainPerOp: 0.001 nats of held-out loss removed earns one op's reward
    24 * 3600,  # challengeWindow: a claim is rejectable for a day before it can be paid
    2,  # bondMultiple: the evaluator bonds twice the reward it attests to
)


def deploy_ledger(d: Deployer) -> None:
    token = d.address("LoyalToken")
    ledger = d.ensure("TrainingLedger", token, d.address("Staking"), REWARD_PER_OP, QUALITY_POLICY, d.admin)
    d.grant_role("Staking", "LOCKER_ROLE", ledger)
    d.grant_module(ledger)
    c = d.chain.contract("TrainingLedger")
    if d.chain.call(c.functions.totalFunded()) == 0:  # fund once: re-running the deploy adds nothing
        tok = d.chain.contract("LoyalToken")
        d.chain.transact(d.signer, tok.functions.approve(ledger, INITIAL_POOL))
        d.chain.transact(d.signer, c.functions.fundRewards(INITIAL_POOL))
