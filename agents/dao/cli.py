"""`loyal dao ...`: the AI-governance DAO."""
from __future__ import annotations

import json

import typer

from agents.core.cli import console

app = typer.Typer(help="AI-governance DAO: personnel, typed votes, model/hardware registries, OTK drip.",
                  no_args_is_help=True)


@app.command()
def demo(as_json: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout")):
    """Fresh Anvil + suite: vote in personnel, a model and hardware; run a workload under the OTK drip;
    fail attestations until the drip halts and the hardware is revoked."""
    from agents.core.anvil import Anvil
    from agents.core.chain import Chain
    from agents.core.deploy import deploy_suite
    from agents.core.signers import dev_signer
    import tempfile
    from pathlib import Path

    from .demo import run_demo

    with Anvil(accounts=40) as node, tempfile.TemporaryDirectory() as tmp:
        chain = Chain.connect(node.rpc_url, book_path=Path(tmp) / "31337.json")
        with console.status("deploying the suite"):
            deploy_suite(chain, dev_signer(0))
        summary = run_demo(chain, log=lambda s: console.print(s, highlight=False))
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        console.print_json(json.dumps(summary, default=str))
