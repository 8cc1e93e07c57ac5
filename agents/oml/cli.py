"""`loyal oml`: the OML 1.0 protocol (model ownership by fingerprints) from the command line."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="OML: model ownership by fingerprints (hosts, permissions, claims).", no_args_is_help=True)
console = Console()


@app.command()
def demo(
    fingerprints: int = typer.Option(4, min=1, max=64, help="fingerprints injected into each host's copy"),
    seed: int = typer.Option(0, help="seed for the fingerprints and the injection"),
    tiny: bool = typer.Option(False, "--tiny", help="a tiny byte-level GPT-2 instead of SmolLM2-135M-Instruct"),
    leak: bool = typer.Option(False, "--leak", help="also trace a leaked copy at an unlicensed endpoint to its host"),
):
    """Local chain: two hosts serve their own fingerprinted copies, one cheats; the prover catches it and it is slashed.

    SmolLM2 copies are cached under $LOYAL_HOME/oml/copies keyed by the parameters, so a second run
    skips fingerprint generation and injection.
    """
    from agents.core.anvil import Anvil
    from agents.core.chain import Chain
    from agents.core.deploy import deploy_suite
    from agents.core.signers import dev_signer
    from agents.core.store import LocalStore
    from common.config import configure
    from ml.oml.copies import CopySpec

    from . import scenario

    say = lambda s: console.print(f"• {s}", highlight=False)  # noqa: E731
    spec = CopySpec(base="tiny" if tiny else "smollm2", per_host=fingerprints, seed=seed)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="loyal-oml-") as tmp, Anvil(accounts=64) as node:
        home = Path(tmp)
        chain = Chain.connect(node.rpc_url, book_path=home / "31337.json")
        admin = dev_signer(0)
        deploy_suite(chain, admin)
        say(f"anvil at {node.rpc_url}; suite deployed ({len(chain.book.contracts)} contracts)")
        token = chain.contract("LoyalToken")
        fund = lambda a: chain.transact(admin, token.functions.mint(a, 10_000 * scenario.TOKEN))  # noqa: E731
        actors, dep = scenario.prepare(chain, admin, LocalStore(home / "store"), spec=spec,
                                       cache_dir=configure().home / "oml" / "copies", leak=leak, say=say, fund=fund)
        before = scenario.balances(chain, actors)
        out = scenario.run(chain, actors, dep, say=say)
        leak_out = scenario.run_leak(chain, actors, dep, actors.leaker.address, say=say) if leak else None
        after = scenario.balances(chain, actors)
    t = Table(title="LoyalToken balances (tokens held / stake)")
    for col in ("actor", "tokens before", "tokens after", "stake before", "stake after"):
        t.add_column(col, justify="right" if col != "actor" else "left")
    for name, b in before.items():
        a = after[name]
        t.add_row(name, f"{b['tokens'] / 1e18:,.2f}", f"{a['tokens'] / 1e18:,.2f}",
                  f"{b['stake'] / 1e18:,.0f}", f"{a['stake'] / 1e18:,.0f}")
    console.print(t)
    console.print(f"demo wall time {time.monotonic() - t0:.0f} s", highlight=False)
    failed = out.status != scenario.ClaimStatus.CONFIRMED or (
        leak_out is not None and leak_out.status != scenario.ClaimStatus.CONFIRMED)
    if failed:
        console.print("[red]a cheating or leaking host was not slashed[/red]")
        raise typer.Exit(1)


from .appeals_cli import appeal_app, lineage_app  # noqa: E402  (#14: appeals, lineage claims)

app.add_typer(appeal_app, name="appeal")
app.add_typer(lineage_app, name="lineage")
