"""Core commands: `loyal devnet`, `loyal deploy` (`loyal events` lives in events_cli.py)."""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Optional

import typer

from agents.core.store import loyal_home
from rich.console import Console
from rich.table import Table

from common.errors import ConfigError, LoyalError

console = Console(stderr=True)


def fail(e: LoyalError) -> None:
    """One line on stderr, exit code 1: how every Loyal command reports a user-caused error."""
    console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def rpc_option() -> str:
    return typer.Option(os.environ.get("LOYAL_RPC_URL", "http://127.0.0.1:8545"), "--rpc", help="JSON-RPC URL (env LOYAL_RPC_URL)")


def load_signer(chain, keystore: Optional[Path]):
    """Keystore signer if given (password from LOYAL_KEY_PASSWORD or a prompt); Anvil's account 0 on a dev chain."""
    from .signers import dev_signer, load_keystore

    if keystore:
        password = os.environ.get("LOYAL_KEY_PASSWORD")
        if password is None:
            if not sys.stdin.isatty():
                raise ConfigError("keystore password needed: set LOYAL_KEY_PASSWORD (no terminal to prompt on)")
            password = typer.prompt("keystore password", hide_input=True)
        return load_keystore(keystore, password)
    if chain.chain_id != 31337:
        raise ConfigError(f"chain {chain.chain_id} is not a dev chain: pass --keystore (dev keys are public)")
    return dev_signer(0)


def devnet(
    keep: bool = typer.Option(False, "--keep", help="leave Anvil running (prints its URL and PID) until Ctrl-C"),
    home: Path = typer.Option(loyal_home() / "devnet", help="scratch dir for this run"),
    only: Optional[list[str]] = typer.Option(None, "--only", help="run only scenario steps whose title starts with this"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout"),
):
    """Start a local chain, deploy the whole suite, run the end-to-end scenario, print a summary."""
    from .devnet import run_devnet

    try:
        summary = run_devnet(home=home, console=console, keep=keep, only=only)
    except LoyalError as e:
        fail(e)
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        t = Table(title=f"devnet summary ({summary['total_s']} s, {summary['blocks']} blocks)")
        t.add_column("step")
        t.add_column("result")
        t.add_row("deploy", f"{len(summary['contracts'])} contracts in {summary['deployed_in_s']} s")
        for title, res in summary["steps"].items():
            t.add_row(title, ", ".join(f"{k}={v}" for k, v in res.items()))
        Console().print(t)
    if keep:
        console.print(f"anvil running at {summary['rpc_url']} (pid {summary['anvil_pid']}); Ctrl-C stops it")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            os.kill(summary["anvil_pid"], signal.SIGTERM)


def deploy(
    rpc: str = rpc_option(),
    keystore: Optional[Path] = typer.Option(None, help="deployer keystore (default: Anvil account 0 on chain 31337)"),
    book: Optional[Path] = typer.Option(None, help="address book path (default deployments/<chainId>.json)"),
    as_json: bool = typer.Option(False, "--json"),
):
    """Deploy (or confirm) the whole suite; writes the address book. Re-running is a no-op."""
    from .chain import Chain
    from .deploy import deploy_suite

    try:
        chain = Chain.connect(rpc, book_path=book)
        d = deploy_suite(chain, load_signer(chain, keystore))
    except LoyalError as e:
        fail(e)
    out = {"chainId": chain.chain_id, "book": str(chain.book.path), "deployed": d.deployed,
           "contracts": {n: e["address"] for n, e in chain.book.contracts.items()}}
    if as_json:
        print(json.dumps(out, indent=2))
    else:
        for n, a in out["contracts"].items():
            print(f"{n:24} {a}{'  (new)' if n in d.deployed else ''}")
        print(f"address book: {out['book']}")

