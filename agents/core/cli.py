"""Core commands: `loyal devnet`, `loyal deploy`, `loyal config` (`loyal events` lives in events_cli.py).

Shared by every command module: the common options (`RPC`, `BOOK`, `KEYSTORE`, `DEV_ACCOUNT`,
`HOME`), `connect` (settings -> chain) and `signer`. Errors are raised as `LoyalError`s and
reported by `agents.cli.main` (one line on stderr, exit 1); commands never print them themselves.
"""
from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from common.config import Settings, configure

console = Console(stderr=True)  # progress and status; results go to stdout

# -- options every command that talks to a chain shares (None = fall back to env/file/default) --
RPC = typer.Option(None, "--rpc", help="JSON-RPC URL [setting rpc_url, env LOYAL_RPC_URL]")
BOOK = typer.Option(None, "--book", help="address book file [default <deployments>/<chainId>.json]")
KEYSTORE = typer.Option(None, "--keystore", help="signer: keystore file or key name [setting keystore]")
DEV_ACCOUNT = typer.Option(None, "--dev-account", help="sign with Anvil dev account N (dev chains only)")
HOME = typer.Option(None, "--home", help="local state folder [setting home, env LOYAL_HOME]")


def connect(settings: Settings, book: Optional[Path] = None):
    """The chain of `settings.rpc_url`, with the address book `book` or the configured one."""
    from .chain import Chain

    return Chain.connect(settings.rpc_url, book_path=book)


def signer(chain, settings: Settings, keystore: Optional[str] = None, dev_account: Optional[int] = None,
           default_dev: Optional[int] = None):
    from .signers import load_signer

    return load_signer(chain.chain_id, keystore=keystore, dev_account=dev_account, default_dev=default_dev,
                       settings=settings)


def require_suite(chain) -> None:
    """Refuse a chain whose address book is missing or empty, naming the fix."""
    from common.errors import DeploymentMissing

    if not chain.book.contracts:
        raise DeploymentMissing(f"no address book for chain {chain.chain_id} at {chain.book.path}: "
                                "run `loyal deploy` (or `loyal devnet`), or pass --book")



@dataclass
class Role:
    """What every role command resolves first: settings, chain, signer, its state folder."""
    settings: Settings
    chain: object
    signer: object
    home: Path


def resolve_role(rpc, book, keystore, dev_account, home: Optional[Path], subsystem: str) -> Role:
    """Settings (flag `rpc` over env/file), logging, the chain with its suite, the signer, and the role's
    state folder (`home`, else `<home setting>/<subsystem>`)."""
    from .logs import setup_logging

    s = configure(rpc_url=rpc)
    setup_logging(s.log_level)
    chain = connect(s, book)
    require_suite(chain)
    return Role(s, chain, signer(chain, s, keystore, dev_account), home or s.home / subsystem)

def devnet(
    keep: bool = typer.Option(False, "--keep", help="leave the chain running after the scenario (Ctrl-C stops it)"),
    deploy_only: bool = typer.Option(False, "--deploy-only", help="deploy the suite and keep the chain running; no scenario"),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="RPC port [default: a free port]"),
    block_time: Optional[int] = typer.Option(None, "--block-time", min=1,
                                               help="mine a block every S seconds, so daemons progress on their own"),
    seconds_per_block: Optional[int] = typer.Option(None, "--seconds-per-block", min=1,
                                                    help="with --block-time: S chain seconds per block (a fast clock)"),
    home: Optional[Path] = HOME,
    only: Optional[list[str]] = typer.Option(None, "--only", help="run only scenario steps whose title starts with this"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout"),
    explorer: bool = typer.Option(False, "--explorer", help="with --keep/--deploy-only: also index the chain and "
                                                            "serve the explorer pages (prints their URL)"),
):
    """Start a local chain, deploy the whole suite, run the end-to-end scenario, print a summary.

    The address book goes where every other command looks for it (<deployments>/31337.json), so
    after `loyal devnet --deploy-only --port 8545 --block-time 1` the chain is ready for
    `loyal keys`, `loyal token`, `loyal stake` and the role daemons.
    """
    from common.errors import ConfigError

    from .devnet import DevnetOptions, keep_clock, run_scenario, start_devnet

    if seconds_per_block and not block_time:
        raise ConfigError("--seconds-per-block needs --block-time (the clock moves as blocks are mined)")
    if explorer and not (keep or deploy_only):
        raise ConfigError("--explorer needs --keep or --deploy-only (the chain must outlive the scenario)")
    s = configure(home=home)
    opts = DevnetOptions(home=s.home / "devnet", book=s.book_path(31337), port=port, block_time=block_time,
                         seconds_per_block=seconds_per_block, only=tuple(only or ()), scenario=not deploy_only)
    _stop_on_sigterm()
    t0 = time.monotonic()
    node, chain, deploy_s = start_devnet(opts)
    site = None
    try:
        summary = {"rpc_url": node.rpc_url, "book": str(opts.book), "deployed_in_s": round(deploy_s, 2),
                   "contracts": {n: e["address"] for n, e in chain.book.contracts.items()}, "steps": {}}
        if opts.scenario:
            summary["steps"] = run_scenario(chain, opts, console)
        summary["blocks"] = chain.w3.eth.block_number
        summary["total_s"] = round(time.monotonic() - t0, 2)
        if keep or deploy_only:
            summary["anvil_pid"] = node.pid
        _print_summary(summary, as_json)
        if keep or deploy_only:
            console.print(f"chain running at {summary['rpc_url']} (address book {opts.book}); "
                          f"for other shells: export LOYAL_RPC_URL={summary['rpc_url']}; Ctrl-C stops it",
                          highlight=False)
            if explorer:
                from agents.explorer.server import start_devnet_explorer

                site = start_devnet_explorer(chain, opts.home, s)
                print(f"explorer at {site.url}/", flush=True)
            keep_clock(chain, opts)
    except KeyboardInterrupt:
        pass
    finally:
        if site is not None:
            site.stop()
        node.stop()


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so `finally` blocks stop the chain instead of orphaning it."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _print_summary(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2, default=str), flush=True)
        return
    t = Table(title=f"devnet summary ({summary['total_s']} s, {summary['blocks']} blocks)")
    t.add_column("step")
    t.add_column("result")
    t.add_row("deploy", f"{len(summary['contracts'])} contracts in {summary['deployed_in_s']} s")
    for title, res in summary["steps"].items():
        t.add_row(title, ", ".join(f"{k}={v}" for k, v in res.items()))
    Console().print(t)


def deploy(
    rpc: Optional[str] = RPC,
    keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT,
    book: Optional[Path] = BOOK,
    as_json: bool = typer.Option(False, "--json"),
):
    """Deploy (or confirm) the whole suite; writes the address book. Re-running is a no-op.

    Signs with --keystore (any chain) or Anvil's account 0 on a dev chain.
    """
    from .deploy import deploy_suite

    s = configure(rpc_url=rpc)
    chain = connect(s, book)
    deployer = signer(chain, s, keystore, dev_account, default_dev=0)
    d = deploy_suite(chain, deployer)
    out = {"chainId": chain.chain_id, "book": str(chain.book.path), "deployed": d.deployed,
           "contracts": {n: e["address"] for n, e in chain.book.contracts.items()}}
    if as_json:
        print(json.dumps(out, indent=2))
    else:
        for n, a in out["contracts"].items():
            print(f"{n:24} {a}{'  (new)' if n in d.deployed else ''}")
        print(f"address book: {out['book']}")


def config(as_json: bool = typer.Option(False, "--json")):
    """Show every setting, its value and where it came from (flag, env, file, default)."""
    s = configure()
    rows = s.shown()
    if as_json:
        print(json.dumps({"config_file": str(s.config_file) if s.config_file else None,
                          "settings": {n: {"value": v or None, "source": src} for n, v, src in rows}}, indent=2))
        return
    print(f"config file: {s.config_file or '(none)'}")
    for n, v, src in rows:
        print(f"{n:18} {v or '-':50} {src}")
    if "LOYAL_KEY_PASSWORD" in os.environ:
        print(f"{'key password':18} {'(set)':50} env LOYAL_KEY_PASSWORD")

