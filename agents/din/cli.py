"""`loyal din`: run a DIN federated-learning task on a local chain."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from agents.core.cli import BOOK, DEV_ACCOUNT, KEYSTORE, RPC, Role, resolve_role
from common.config import configure
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
            label = stage.name if stage.name in ("Registration", "Close", "Settle") \
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
    p.add_column("score (sum of medians)", justify="right")
    p.add_column("LOYAL", justify="right")
    for a, role in res.roles.items():
        amount = (res.rewards.get(a, 0) + res.fees.get(a, 0) + res.slash_shares.get(a, 0)
                  + (res.owner_refund if role == "owner" else 0))
        median = f"{res.medians[a] / 1e6:.3f}" if a in res.medians else ""
        p.add_row(a, role, median, f"{amount / 1e18:.2f}")
    out.print(p)
    if res.slash_pool:
        shared = sum(res.slash_shares.values())
        out.print(f"slash pool {res.slash_pool / 1e18:.2f} LOYAL: {shared / 1e18:.2f} LOYAL shared among "
                  f"{len(res.slash_shares)} evaluator(s) never at fault (pay-outs above include it)")
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
    home: Optional[Path] = typer.Option(None, "--home", help="scratch dir [default <home>/din-demo]"),
):
    """1 owner, N participants (participant 0 poisons its labels), E evaluators (the last is lazy):
    a real task on a fresh Anvil; prints accuracy per round, who was slashed and who got paid.
    With --secagg the participants upload masked updates and the last participant(s) drop out."""
    from agents.core.anvil import Anvil
    from agents.core.chain import Chain
    from agents.core.deploy import deploy_suite
    from agents.core.signers import dev_signer
    from common.errors import ConfigError

    from .scenario import Scenario

    if dropouts is None:
        dropouts = 1 if secagg else 0
    if not 0 <= dropouts < participants:
        raise ConfigError(f"--dropouts must be between 0 and {participants - 1}")
    home = home or configure().home / "din-demo"
    sc = Scenario(participants=participants, evaluators=evaluators, rounds=rounds, subgroup_size=subgroup_size,
                  evaluators_per_subgroup=per_subgroup, poisoners=(0,), lazy=(evaluators - 1,),
                  secure_aggregation=secagg, dropouts=tuple(range(participants - dropouts, participants)))
    t0 = time.monotonic()
    with Anvil(accounts=participants + evaluators + 4) as node:
        home.mkdir(parents=True, exist_ok=True)
        book = home / "deployments" / "31337.json"
        if book.exists():
            book.unlink()  # a fresh chain each run
        chain = Chain.connect(node.rpc_url, book_path=book)
        with console.status("deploying the suite"):
            deploy_suite(chain, dev_signer(0))
        _, res = _run(chain, home, sc, console)
    print_result(res, console)
    console.print(f"done in {time.monotonic() - t0:.1f} s")


# ---------------------------------------------------------------- one role per OS process

_POLL = typer.Option(None, "--poll", help="seconds to sleep when idle [setting poll]")
_DONE = typer.Option(False, "--exit-when-done", help="exit once the task is settled and nothing is left to do")
_HOME = typer.Option(None, "--home", help="DIN state folder: content store and cursors [default <home setting>/din]")


def _role(rpc, book, keystore, dev_account, home) -> Role:
    return resolve_role(rpc, book, keystore, dev_account, home, "din")


def _run_role(make, role: str, task: int, r: Role, poll, exit_when_done: bool):
    from agents.core.store import open_store

    from .run import cursor_path, run

    daemon = make(r.chain, open_store(root=None if r.settings.ipfs_api else r.home / "store"), r.signer, task,
                  cursor_path(r.home, task, role, r.signer.address))
    run(daemon, poll=poll or r.settings.poll, exit_when_done=exit_when_done)
    return daemon


@app.command()
def create(
    shards: int = typer.Option(..., "--shards", min=1, help="digits split whose test set the owner keeps"),
    data_seed: int = typer.Option(0, "--data-seed"),
    rounds: int = typer.Option(3, "--rounds", min=1),
    subgroup_size: int = typer.Option(10, "--subgroup-size", min=1),
    per_subgroup: int = typer.Option(3, "--per-subgroup", min=1, help="evaluators per subgroup"),
    max_evaluators: int = typer.Option(8, "--max-evaluators", min=1),
    reward: str = typer.Option("1000", "--reward", help="LOYAL"),
    fee: str = typer.Option("20", "--fee", help="evaluator fee, LOYAL"),
    bond: str = typer.Option("1", "--bond", help="participant bond, LOYAL"),
    min_stake: str = typer.Option("100", "--min-stake", help="evaluator stake, LOYAL"),
    slash: str = typer.Option("10", "--slash", help="per offence, LOYAL"),
    secagg: bool = typer.Option(False, "--secagg", help="secure aggregation (masked updates)"),
    registration_seconds: int = typer.Option(3600, "--registration-seconds", min=1),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, home: Optional[Path] = _HOME,
):
    """Model Owner: upload the genesis model and create a task (pulls the deposit); prints its id."""
    from agents.core.store import open_store
    from common.units import parse_amount
    from ml.din import data

    from .contracts import TaskConfig
    from .owner import create_task

    cfg = TaskConfig(reward=parse_amount(reward), evaluator_fee=parse_amount(fee),
                     participant_bond=parse_amount(bond), min_evaluator_stake=parse_amount(min_stake),
                     slash_amount=parse_amount(slash), rounds=rounds, subgroup_size=subgroup_size,
                     evaluators_per_subgroup=per_subgroup, max_evaluators=max_evaluators,
                     registration_seconds=registration_seconds, secure_aggregation=secagg)
    r = _role(rpc, book, keystore, dev_account, home)
    test = data.split(shards, seed=data_seed).test
    store = open_store(root=None if r.settings.ipfs_api else r.home / "store")
    task, genesis = create_task(r.chain, store, r.signer, cfg, test)
    print(f"task {task} created (genesis {genesis})")


@app.command()
def participant(
    task: int = typer.Option(..., "--task", min=0),
    shard: Optional[int] = typer.Option(None, "--shard", min=0,
                                        help="built-in client: this participant's shard of the digits split (its data)"),
    shards: Optional[int] = typer.Option(None, "--shards", min=1, help="built-in client: shards of the digits split"),
    data_seed: int = typer.Option(0, "--data-seed"),
    client: Optional[str] = typer.Option(None, "--client", help="own Flower NumPyClient: module:attr or "
                                         "path/file.py:attr, an instance or a factory (gets Flower's Context) "
                                         "[default: the built-in digits client on --shard/--shards]"),
    device: str = typer.Option("auto", "--device", help="torch device to train on: auto (CUDA when available), "
                               "cpu, cuda, cuda:N"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, home: Optional[Path] = _HOME, poll: Optional[float] = _POLL,
    exit_when_done: bool = _DONE,
):
    """Participant daemon: register (and publish a mask key in secure-aggregation tasks), train on
    its own data each round, upload and submit, post recovery seeds, claim reward and bond."""
    import logging

    from common.errors import ConfigError
    from ml.din import data
    from ml.device import pick_device
    from ml.din.client_loader import context, load_client

    from .participant import ParticipantDaemon

    dev = pick_device(device)
    if client is None:
        if shard is None or shards is None:
            raise ConfigError("the built-in digits client needs --shard and --shards (or give your own "
                              "--client module:attr)")
        if shard >= shards:
            raise ConfigError(f"--shard must be in [0, {shards}), got {shard}")
        trainer = dict(shard=data.split(shards, seed=data_seed).shards[shard], device=dev)
    else:
        trainer = dict(client=load_client(client, context(str(dev), task, shard, shards)), client_name=client)
    r = _role(rpc, book, keystore, dev_account, home)
    logging.getLogger("loyal.din.participant").info(
        "training with %s on %s", client or f"the built-in digits client (shard {shard} of {shards})", dev)
    _run_role(lambda *a: ParticipantDaemon(*a, **trainer), "participant", task, r, poll, exit_when_done)


@app.command()
def evaluator(
    task: int = typer.Option(..., "--task", min=0),
    stake: bool = typer.Option(False, "--stake", help="first top up the signer's stake to the task's minimum"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, home: Optional[Path] = _HOME, poll: Optional[float] = _POLL,
    exit_when_done: bool = _DONE,
):
    """Evaluator daemon (needs the task's minimum stake in Staking): enrol, aggregate, vote, score,
    settle, claim its fee and slash-pool share."""
    import logging

    from agents.core.token import Stakes
    from common.units import format_amount

    from .contracts import Din
    from .evaluator import EvaluatorDaemon

    r = _role(rpc, book, keystore, dev_account, home)
    din = Din(r.chain)
    missing = din.params(task).min_evaluator_stake - din.stake_of(r.signer.address)
    if stake and missing > 0:
        Stakes(r.chain).stake(r.signer, missing)
        logging.getLogger("loyal.din.evaluator").info("%s: staked %s", r.signer.address, format_amount(missing))
    _run_role(EvaluatorDaemon, "evaluator", task, r, poll, exit_when_done)


@app.command()
def owner(
    task: int = typer.Option(..., "--task", min=0),
    shards: int = typer.Option(..., "--shards", min=1, help="the digits split the task's test set comes from"),
    data_seed: int = typer.Option(0, "--data-seed"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, home: Optional[Path] = _HOME, poll: Optional[float] = _POLL,
    exit_when_done: bool = _DONE,
):
    """Model Owner daemon for an existing task: reveal each round's test slice after its update reveals,
    evaluate each global model (accuracy.csv/png under <home>/din), reclaim unearned fees."""
    from common.errors import ConfigError
    from ml.din import data

    from .contracts import Din
    from .owner import OwnerDaemon
    from .slices import TestSlices

    r = _role(rpc, book, keystore, dev_account, home)
    test = data.split(shards, seed=data_seed).test
    p = Din(r.chain).params(task)
    if TestSlices.cut(test, p.rounds).root != p.test_slice_root:
        raise ConfigError(f"task {task}: the test set of --shards {shards} --data-seed {data_seed} "
                          "does not match the task's commitment (its test-slice root)")
    daemon = _run_role(lambda *a: OwnerDaemon(*a, test=test), "owner", task, r, poll, exit_when_done)
    csv_path, png_path = daemon.write_report(r.home / f"task{task}")
    print(f"accuracy per round: {csv_path}, {png_path}")


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
