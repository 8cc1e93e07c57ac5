"""Deploy hook: the TrainingLedger singleton, paying LoyalToken per sealed op, with a seeded reward pool."""
from __future__ import annotations

from agents.core.deploy import Deployer

REWARD_PER_OP = 10**18  # 1 LOYAL per sealed training op
INITIAL_POOL = 100_000 * 10**18


def deploy_ledger(d: Deployer) -> None:
    token = d.address("LoyalToken")
    ledger = d.ensure("TrainingLedger", token, REWARD_PER_OP, d.admin)
    c = d.chain.contract("TrainingLedger")
    if d.chain.call(c.functions.totalFunded()) == 0:  # fund once: re-running the deploy adds nothing
        tok = d.chain.contract("LoyalToken")
        d.chain.transact(d.signer, tok.functions.approve(ledger, INITIAL_POOL))
        d.chain.transact(d.signer, c.functions.fundRewards(INITIAL_POOL))
