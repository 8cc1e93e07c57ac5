"""OML 1.0 protocol agents: platform (permissions), host (serves the model), prover, verifier;
and the fingerprinting library's CLI."""
from agents.core.subsystem import Subsystem

SUBSYSTEM = Subsystem(
    name="oml",
    deploy="agents.oml.deploy:deploy_oml",
    scenario=("agents.oml.scenario:devnet_scenario", "oml: fingerprinted model, honest and cheating host, slashing"),
    commands=(("oml", "agents.oml.cli:app"), ("fingerprint", "agents.oml.fingerprint_cli:app")),
)
