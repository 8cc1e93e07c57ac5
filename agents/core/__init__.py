"""Shared base for every subsystem: chain client, devnet, deployment, events, content store,
keys, tokens and staking for operators."""
from .subsystem import Subsystem

SUBSYSTEM = Subsystem(
    name="core",
    deploy="agents.core.deploy:deploy_core",
    scenario=("agents.core.devnet:core_scenario", "core: token and staking"),
    commands=(("devnet", "agents.core.cli:devnet"), ("deploy", "agents.core.cli:deploy"),
              ("config", "agents.core.cli:config"), ("events", "agents.core.events_cli:events"),
              ("store", "agents.core.store_cli:app"), ("keys", "agents.core.keys_cli:app"),
              ("token", "agents.core.token_cli:app"), ("stake", "agents.core.token_cli:stake"),
              ("unstake", "agents.core.token_cli:unstake"), ("withdraw", "agents.core.token_cli:withdraw"),
              ("chain", "agents.core.chain_cli:app")),
)
