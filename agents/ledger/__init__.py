"""Training-ledger agents: a user's fork agent, the permissionless sealer, and the `loyal ledger` CLI."""
from agents.core.subsystem import Subsystem

SUBSYSTEM = Subsystem(
    name="ledger",
    deploy="agents.ledger.deploy:deploy_ledger",
    scenario=("agents.ledger.scenario:run", "ledger: forks, training ops, verify, rewards"),
    commands=(("ledger", "agents.ledger.cli:app"),),
)
