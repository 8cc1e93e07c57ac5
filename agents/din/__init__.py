"""DIN: federated learning coordinated on-chain (agents for the DinTasks/DinRounds/DinScoring contracts)."""
from agents.core.subsystem import Subsystem

SUBSYSTEM = Subsystem(
    name="din",
    deploy="agents.din.deploy:deploy_din",
    scenario=("agents.din.cli:devnet_scenario", "din: federated learning task"),
    commands=(("din", "agents.din.cli:app"),),
)
