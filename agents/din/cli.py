"""`loyal din`: run a DIN federated-learning task on a local chain."""
from __future__ import annotations

import time
from pathlib import Path

import typer

from agents.core.store import loyal_home
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="DIN: federated learning coordinated on-chain.", no_args_is_help=True)
console = Console()


def _run(chain, home: Path, sc, progress_console: Console):
    from agents.core.store import LocalStore

    from .scenario import Runner

    runner = Runner(chain, LocalStore(home / "store"), home, sc)
    steps = runner.schedule()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=progress_console) as prog:
        bar = prog.add_task("DIN task", total=len(steps))

        def on_stage(stage, r, sent):
            label = stage.name if stage.name in ("Registration", "ScoreCommit", "ScoreReveal", "Settle") \
                else f"round {r} {stage.name}"
            prog.update(bar, advance=1, description=f"{label}: {sent} tx")

        res = runner.run(on_stage)
    return runner, res


def print_result(res, out: Console) -> None:
    mode = "secure aggregation (masked updates)" if res.secure_aggregation else "clear updates"
    t = Table(title=f"DIN task {res.task} ({mode}): owner's test accuracy of the global model")
    t.add_column("round")
    t.add_column("accuracy", justify="right")
    for r, a in res.accuracy:
        t.add_row(r, "-" if a is None else f"{a:.3f}")
    out.print(t)
    s = Table(title="slashed evaluators")
    s.add_column("account")
    s.add_column("role")
    s.add_column("LOYAL", justify="right")
    for a, amount in res.slashed.items():
        s.add_row(a, res.roles.get(a, "?"), f"{amount / 1e18:.2f}")
    out.print(s if res.slashed else "[green]nobody slashed[/green]")
    p = Table(title="pay-outs (pull payments claimed)")
    p.add_column("account")
    p.add_column("role")
    p.add_column("median score", justify="right")
    p.add_column("LOYAL", justify="right")
    for a, role in res.roles.items():
        amount = res.rewards.get(a, 0) + res.fees.get(a, 0) + (res.owner_refund if role == "owner" else 0)
        median = f"{res.medians[a] / 1e6:.3f}" if a in res.medians else ""
        p.add_row(a, role, median, f"{amount / 1e18:.2f}")
    out.print(p)
    out.print(f"deposit {res.deposit / 1e18:.2f} LOYAL, paid out {res.paid_out / 1e18:.2f} LOYAL "
              f"(rounding dust stays in DinTasks); accuracy plot {res.report[1]}")


@app.command()
def demo(
    participants: int = typer.Option(20, help="participants (non-IID shards of scikit-learn digits)"),
    evaluators: int = typer.Option(4, help="staked evaluators"),
    rounds: int = typer.Option(3, help="training rounds"),
    subgroup_size: int = typer.Option(10, help="participants per subgroup"),
    per_subgroup: int = typer.Option(3, help="evaluators assigned to each subgroup per round"),
    secagg: bool = typer.Option(False, "--secagg", help="secure aggregation: pairwise-masked updates, "
                                "mask keys on-chain, dropout recovery; scores per subgroup"),
    dropouts: int = typer.Option(None, help="participants that register and then never submit "
                                 "(default 1 with --secagg, else 0)"),
    home: Path = typer.Option(loyal_home() / "din-demo", help="scratch dir"),
):
    """1 owner, N participants (participant 0 poisons its labels), E evaluators (the last is lazy):
    a real task on a fresh Anvil; prints accuracy per round, who was slashed and who got paid.
    With --secagg the participants upload masked updates and the last participant(s) drop out."""
    from agents.core.anvil import Anvil
    from agents.core.chain import Chain
    from agents.core.deploy import deploy_suite
    from agents.core.errors import LoyalError
    from agents.core.signers import dev_signer

    from .scenario import Scenario

    if dropouts is None:
        dropouts = 1 if secagg else 0
    if not 0 <= dropouts < participants:
        console.print(f"[red]error:[/red] --dropouts must be between 0 and {participants - 1}")
        raise typer.Exit(1)
    sc = Scenario(participants=participants, evaluators=evaluators, rounds=rounds, subgroup_size=subgroup_size,
                  evaluators_per_subgroup=per_subgroup, poisoners=(0,), lazy=(evaluators - 1,),
                  secure_aggregation=secagg, dropouts=tuple(range(participants - dropouts, participants)))
    t0 = time.monotonic()
    try:
        with Anvil(accounts=participants + evaluators + 4) as node:
            home.mkdir(parents=True, exist_ok=True)
            book = home / "deployments" / "31337.json"
            if book.exists():
                book.unlink()  # a fresh chain each run
            chain = Chain.connect(node.rpc_url, book_path=book)
            with console.status("deploying the suite"):
                deploy_suite(chain, dev_signer(0))
            _, res = _run(chain, home, sc, console)
    except LoyalError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1)
    print_result(res, console)
    console.print(f"done in {time.monotonic() - t0:.1f} s")


def devnet_scenario(ctx) -> dict:
    """`loyal devnet` step: a small DIN task (8 participants, 1 poisoner, 4 evaluators, 1 lazy, 2 rounds)."""
    from agents.core.store import LocalStore

    from .scenario import Runner, Scenario

    sc = Scenario(participants=8, evaluators=4, rounds=2, subgroup_size=4, evaluators_per_subgroup=3,
                  poisoners=(0,), lazy=(3,), first_account=20)
    runner = Runner(ctx.chain, LocalStore(ctx.home / "store"), ctx.home / "din", sc)
    res = runner.run()
    print_result(res, ctx.console)
    final = [a for _, a in res.accuracy if a is not None]
    return {"task": res.task, "accuracy_genesis": round(final[0], 3), "accuracy_final": round(final[-1], 3),
            "slashed": len(res.slashed), "paid_LOYAL": round(res.paid_out / 1e18, 2)}
