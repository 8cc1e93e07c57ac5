"""The main job: a local chain with the whole suite deployed and the end-to-end scenario run on it.

Each subsystem declares one step in its `SUBSYSTEM.scenario`: a function `run(ctx) -> dict` that
drives its agents against the chain and returns a few summary figures.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rich.console import Console

from .anvil import Anvil
from .chain import Chain
from .deploy import deploy_suite
from .signers import dev_signer
from .subsystem import resolve, subsystems
from .token import Stakes

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
    stakes = Stakes(chain)
    staking = stakes.contract
    stakers = [ctx.signer(i) for i in (1, 2, 3)]
    ctx.fund(*(s.address for s in stakers))
    for n, s in enumerate(stakers, start=1):
        stakes.stake(s, n * 100 * 10**18)
    stakes.request_unstake(stakers[0], 50 * 10**18)
    chain.advance_time(chain.call(staking.functions.unstakeDelay()))
    stakes.withdraw(stakers[0])
    return {"stakers": len(stakers), "total_staked_LOYAL": chain.call(staking.functions.totalActive()) / 1e18}


def steps() -> list[tuple[str, Callable[[ScenarioContext], dict]]]:
    """(title, step) of every subsystem that declares a devnet scenario, in dependency order."""
    return [(s.scenario[1], s.scenario[0]) for s in subsystems() if s.scenario]


@dataclass(frozen=True)
class DevnetOptions:
    home: Path  # scratch for this run: content store, cursors, plots
    book: Path  # where the address book is written (what every other command reads)
    port: int | None = None  # None: a free port
    block_time: int | None = None  # Anvil interval mining (seconds) after the deploy; None: a block per transaction
    seconds_per_block: int | None = None  # chain-clock seconds per mined block (needs block_time)
    accounts: int = 64
    only: tuple[str, ...] = ()  # scenario steps whose title starts with one of these
    scenario: bool = True  # False: deploy only


def start_devnet(opts: DevnetOptions) -> tuple[Anvil, Chain, float]:
    """Start Anvil and deploy the suite; (node, chain, seconds to deploy). The caller stops the node."""
    # automine while deploying (fast); the chain dies with this process, even on SIGKILL
    node = Anvil(port=opts.port, accounts=opts.accounts, die_with_parent=True).start()
    try:
        t0 = time.monotonic()
        chain = Chain.connect(node.rpc_url, book_path=opts.book)
        if chain.book.contracts:  # an earlier devnet's book: this chain is new, start it afresh
            chain.book.contracts.clear()
        deploy_suite(chain, dev_signer(0))
        if opts.block_time:  # from now on a block every block_time seconds, transactions or not
            chain.w3.provider.make_request("evm_setIntervalMining", [int(opts.block_time)])
        return node, chain, time.monotonic() - t0
    except BaseException:
        node.stop()
        raise


def keep_clock(chain: Chain, opts: DevnetOptions, stop: Callable[[], bool] = lambda: False) -> None:
    """Keep a devnet's clock moving until interrupted. With interval mining Anvil stamps each block
    with wall-clock time; `seconds_per_block` speeds that clock up by moving it forward between
    blocks (`evm_increaseTime`), so hour-long protocol windows pass in minutes."""
    step = opts.block_time or 1.0
    extra = max(0.0, (opts.seconds_per_block or 0) - step)
    while not stop():
        time.sleep(step)
        if extra:
            chain.w3.provider.make_request("evm_increaseTime", [int(round(extra))])


def run_scenario(chain: Chain, opts: DevnetOptions, console: Console) -> dict:
    """Run the subsystems' scenario steps on a deployed devnet; per-step results and seconds."""
    ctx = ScenarioContext(chain, opts.home, console)
    out: dict = {}
    for title, ref in steps():
        if opts.only and not any(title.startswith(o) for o in opts.only):
            continue
        t = time.monotonic()
        console.rule(title)
        result = resolve(ref)(ctx)
        out[title] = {**result, "seconds": round(time.monotonic() - t, 2)}
    return out
