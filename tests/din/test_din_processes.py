"""Each DIN role as its own OS process (`loyal din participant|evaluator|owner`) against a real
Anvil; one participant is SIGKILLed after registering and restarted from its cursor."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.core.events import fetch_events
from agents.core.store import LocalStore
from agents.din.contracts import GLOBAL, Din, Stage, TaskConfig
from agents.din.owner import create_task
from ml.din import data

ROOT = Path(__file__).resolve().parents[2]
TOKEN = 10**18
SHARDS = 2
OWNER, PARTS, EVALS = 1, (2, 3), (5, 6)


def spawn(args: list[str], rpc: str, book: Path, home: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "FLWR_TELEMETRY_ENABLED": "0"}
    cmd = [sys.executable, "-m", "agents.cli", "din", *args, "--rpc", rpc, "--book", str(book),
           "--home", str(home), "--poll", "0.5", "--exit-when-done"]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_roles_run_as_separate_processes(chain, anvil, tmp_path):
    din = Din(chain)
    book = chain.book.path
    home = tmp_path / "din"
    split = data.split(SHARDS, seed=0)
    cfg = TaskConfig(reward=300 * TOKEN, evaluator_fee=3 * TOKEN, participant_bond=TOKEN,
                     min_evaluator_stake=10 * TOKEN, slash_amount=TOKEN, rounds=1, subgroup_size=2,
                     evaluators_per_subgroup=2, max_evaluators=2)
    from agents.core.signers import dev_signer

    owner = dev_signer(OWNER)
    task, _ = create_task(chain, LocalStore(home / "store"), owner, cfg, split.test)
    p = din.params(task)
    parts = [dev_signer(i).address for i in PARTS]
    evals = [dev_signer(i).address for i in EVALS]

    def args_of(role: str, account: int, i: int = 0) -> list[str]:
        a = [role, "--task", str(task), "--dev-account", str(account)]
        if role == "participant":
            a += ["--shard", str(i), "--shards", str(SHARDS)]
        elif role == "owner":
            a += ["--shards", str(SHARDS)]
        else:
            a += ["--stake"]
        return a

    roles = [args_of("owner", OWNER)] + [args_of("participant", a, i) for i, a in enumerate(PARTS)] + \
        [args_of("evaluator", a) for a in EVALS]
    logs = [tmp_path / f"proc{i}.log" for i in range(len(roles))]
    procs = [spawn(r, anvil.rpc_url, book, home, log) for r, log in zip(roles, logs)]

    def wait_for(cond, what: str, timeout: float = 240) -> None:
        t0 = time.monotonic()
        while not cond():
            dead = [i for i, pr in enumerate(procs) if pr.poll() is not None and pr.returncode != 0]
            if dead:
                raise AssertionError(f"daemon {dead[0]} failed:\n" + logs[dead[0]].read_text()[-3000:])
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"gave up waiting for {what}")
            time.sleep(0.25)

    def warp(stage: Stage, r: int = 0) -> None:
        start, _ = p.window(r, stage)
        if start > din.now():
            chain.advance_time(start - din.now())

    zero = b"\x00" * 32
    try:
        wait_for(lambda: all(din.is_participant(task, a) for a in parts)
                 and all(din.is_evaluator(task, e) for e in evals), "registration")
        # SIGKILL participant 0 and restart it with the same arguments: it resumes from its cursor
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait()
        procs[1] = spawn(roles[1], anvil.rpc_url, book, home, logs[1])
        warp(Stage.Submit)
        wait_for(lambda: all(din.update_commitment_of(task, 0, a) != zero for a in parts)
                 and all(din.seed_revealed(task, e) for e in evals), "update commitments")
        warp(Stage.UpdateReveal)
        wait_for(lambda: all(din.update_revealed(task, 0, a) for a in parts), "update reveals")
        warp(Stage.AggregateCommit)
        wait_for(lambda: din.round_seed(task, 0) != zero
                 and all(din.vote_of(task, 0, 0, e)[0] != zero for e in evals), "aggregate commits")
        wait_for(lambda: din.test_slice(task, 0) != zero, "the owner's test slice")
        warp(Stage.AggregateReveal)
        wait_for(lambda: all(din.vote_of(task, 0, 0, e)[1] != zero for e in evals), "aggregate reveals")
        warp(Stage.GlobalCommit)
        wait_for(lambda: all(din.vote_of(task, 0, GLOBAL, e)[0] != zero for e in evals)
                 and all(din.score_vote_of(task, 0, 0, e)["commitment"] != zero for e in evals),
                 "global and score commits")
        warp(Stage.GlobalReveal)
        wait_for(lambda: all(din.vote_of(task, 0, GLOBAL, e)[1] != zero for e in evals), "global reveals")
        wait_for(lambda: all(din.score_vote_of(task, 0, 0, e)["revealed"] for e in evals), "score reveals")
        warp(Stage.Close)
        wait_for(lambda: din.tally(task, 0, GLOBAL)[2] and din.all_settled(task), "global vote and scores settled")
        warp(Stage.Settle)
        wait_for(lambda: all(pr.poll() is not None for pr in procs), "every daemon to finish")
    finally:
        for pr in procs:
            if pr.poll() is None:
                pr.kill()
                pr.wait()
    assert [pr.returncode for pr in procs] == [0] * len(procs), [log.read_text()[-2000:] for log in logs]

    events = fetch_events(chain, contracts=["DinTasks", "DinScoring"])
    mine = [e for e in events if e.args.get("taskId") == task]
    registered = [e.args["participant"] for e in mine if e.name == "ParticipantRegistered"]
    submitted = [e.args["participant"] for e in mine if e.name == "UpdateRevealed"]
    assert sorted(registered) == sorted(parts) and sorted(submitted) == sorted(parts), "once each, despite the kill"
    assert din.tally(task, 0, 0)[3] and din.tally(task, 0, GLOBAL)[3]
    paid = {e.args["participant"] for e in mine if e.name == "RewardClaimed"}
    fees = {e.args["evaluator"] for e in mine if e.name == "FeeClaimed"}
    assert paid and paid <= set(parts) and fees == set(evals)
    assert all(din.bond_returned(task, a) for a in parts)
    assert (home / f"task{task}" / "accuracy.csv").exists()
