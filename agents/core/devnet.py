"""The main job: a local chain with the whole suite deployed and the end-to-end scenario run on it.

Each subsystem adds one step to SCENARIOS: a function `run(ctx) -> dict` that drives its agents
against the chain and returns a few summary figures.
"""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rich.console import Console

from .anvil import Anvil
from .chain import Chain
from .deploy import deploy_suite
from .signers import dev_signer

# (module, function, title): one line per subsystem, run in order.
SCENARIOS: list[tuple[str, str, str]] = [
    ("agents.core.devnet", "core_scenario", "core: token and staking"),
    ("agents.din.cli", "devnet_scenario", "din: federated learning task"),
    ("agents.ledger.scenario", "run", "ledger: forks, training ops, verify, rewards"),
    ("agents.oml.scenario", "devnet_scenario", "oml: fingerprinted model, honest and cheating host, slashing"),
    ("agents.dao.demo", "dao_scenario", "dao: votes, OTK drip, attestation halt"),
]

DEV_TOKENS = 1_000_000 * 10**18


@dataclass
class ScenarioContext:
    chain: Chain
    home: Path  # scratch space for this run (content store, cursors, plots)
    console: Console
    results: dict = field(default_factory=dict)

    @property
    def admin(self):
        return dev_signer(0)

    def signer(self, i: int):
        return dev_signer(i)

    def fund(self, *accounts: str, amount: int = DEV_TOKENS) -> None:
        """Mint LoyalToken to dev accounts (the admin holds MINTER_ROLE on the dev chain)."""
        token = self.chain.contract("LoyalToken")
        for a in accounts:
            self.chain.transact(self.admin, token.functions.mint(a, amount))


def core_scenario(ctx: ScenarioContext) -> dict:
    """Three accounts stake; one starts unbonding and withdraws after the delay."""
    chain = ctx.chain
    token, staking = chain.contract("LoyalToken"), chain.contract("Staking")
    stakers = [ctx.signer(i) for i in (1, 2, 3)]
    ctx.fund(*(s.address for s in stakers))
    for n, s in enumerate(stakers, start=1):
        chain.transact(s, token.functions.approve(staking.address, n * 100 * 10**18))
        chain.transact(s, staking.functions.stake(n * 100 * 10**18))
    chain.transact(stakers[0], staking.functions.requestUnstake(50 * 10**18))
    chain.advance_time(chain.call(staking.functions.unstakeDelay()))
    chain.transact(stakers[0], staking.functions.withdraw())
    return {"stakers": len(stakers), "total_staked_LOYAL": chain.call(staking.functions.totalActive()) / 1e18}


def _load(module: str, fn: str) -> Callable[[ScenarioContext], dict]:
    return getattr(importlib.import_module(module), fn)


def run_devnet(*, home: Path, console: Console, keep: bool = False, accounts: int = 64,
               only: list[str] | None = None) -> dict:
    """Start Anvil, deploy, run the scenario steps; returns the summary. Stops Anvil unless `keep`."""
    summary: dict = {"steps": {}}
    t0 = time.monotonic()
    node = Anvil(accounts=accounts).start()
    try:
        summary["rpc_url"] = node.rpc_url
        with console.status("deploying the suite"):
            chain = Chain.connect(node.rpc_url, book_path=home / "deployments" / "31337.json")
            deploy_suite(chain, dev_signer(0))
        summary["deployed_in_s"] = round(time.monotonic() - t0, 2)
        summary["contracts"] = {n: e["address"] for n, e in chain.book.contracts.items()}
        ctx = ScenarioContext(chain, home, console)
        for module, fn, title in SCENARIOS:
            if only and not any(title.startswith(o) for o in only):
                continue
            t = time.monotonic()
            console.rule(title)
            result = _load(module, fn)(ctx)
            summary["steps"][title] = {**result, "seconds": round(time.monotonic() - t, 2)}
        summary["blocks"] = chain.w3.eth.block_number
        summary["total_s"] = round(time.monotonic() - t0, 2)
        if keep:
            summary["anvil_pid"] = node.pid
        return summary
    finally:
        if not keep:
            node.stop()
