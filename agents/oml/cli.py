"""`loyal oml`: the OML 1.0 protocol (model ownership by fingerprints) from the command line."""
from __future__ import annotations

import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from agents.core.errors import LoyalError

app = typer.Typer(help="OML: model ownership by fingerprints (hosts, permissions, claims).", no_args_is_help=True)
console = Console()


@app.command()
def demo(
    fingerprints: int = typer.Option(4, min=1, max=64, help="fingerprints to inject into the model"),
    seed: int = typer.Option(0, help="seed for the model and the fingerprints"),
):
    """Local chain: two hosts serve a fingerprinted model, one cheats; the prover catches it and it is slashed."""
    from agents.core.anvil import Anvil
    from agents.core.chain import Chain
    from agents.core.deploy import deploy_suite
    from agents.core.signers import dev_signer
    from agents.core.store import LocalStore

    from . import scenario

    say = lambda s: console.print(f"• {s}", highlight=False)  # noqa: E731
    try:
        with tempfile.TemporaryDirectory(prefix="loyal-oml-") as tmp, Anvil(accounts=64) as node:
            home = Path(tmp)
            chain = Chain.connect(node.rpc_url, book_path=home / "31337.json")
            admin = dev_signer(0)
            deploy_suite(chain, admin)
            say(f"anvil at {node.rpc_url}; suite deployed ({len(chain.book.contracts)} contracts)")
            token = chain.contract("LoyalToken")
            fund = lambda a: chain.transact(admin, token.functions.mint(a, 10_000 * scenario.TOKEN))  # noqa: E731
            actors, model_id, model, fps = scenario.prepare(
                chain, admin, LocalStore(home / "store"), n_fingerprints=fingerprints, seed=seed, say=say, fund=fund)
            before = scenario.balances(chain, actors)
            out = scenario.run(chain, actors, model_id, model, fps, say=say)
    except LoyalError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(1)
    t = Table(title="LoyalToken balances (tokens held / stake)")
    for col in ("actor", "tokens before", "tokens after", "stake before", "stake after"):
        t.add_column(col, justify="right" if col != "actor" else "left")
    for name, b in before.items():
        a = out.balances[name]
        t.add_row(name, f"{b['tokens'] / 1e18:,.0f}", f"{a['tokens'] / 1e18:,.0f}",
                  f"{b['stake'] / 1e18:,.0f}", f"{a['stake'] / 1e18:,.0f}")
    console.print(t)
    if out.status != scenario.ClaimStatus.CONFIRMED:
        console.print("[red]the cheater was not slashed[/red]")
        raise typer.Exit(1)
