"""Deploy hook of the DIN contracts: DinTasks, DinRounds, DinScoring (singletons holding every task)."""
from __future__ import annotations

from agents.core.deploy import Deployer


def deploy_din(d: Deployer) -> None:
    """Deploy (or confirm) the DIN contracts and wire their roles.

    DinRounds slashes evaluators through Staking (MODULE_ROLE) and cancels tasks that never got
    enough participants or evaluators (DinTasks CANCELLER_ROLE); DinScoring pays rewards out of
    DinTasks' custody (PAYER_ROLE).
    """
    token = d.address("LoyalToken")
    staking = d.address("Staking")
    tasks = d.ensure("DinTasks", token, d.admin)
    rounds = d.ensure("DinRounds", tasks, staking)
    scoring = d.ensure("DinScoring", tasks, rounds)
    d.grant_module(rounds)
    d.grant_role("DinTasks", "PAYER_ROLE", scoring)
    d.grant_role("DinTasks", "CANCELLER_ROLE", rounds)
