"""AI-governance DAO agents: voters (governance), the datacenter, the demo."""
from agents.core.subsystem import Subsystem

SUBSYSTEM = Subsystem(
    name="dao",
    deploy="agents.dao.deploy:deploy_dao",
    scenario=("agents.dao.demo:dao_scenario", "dao: votes, OTK drip, attestation halt"),
    commands=(("dao", "agents.dao.cli:app"),),
)
