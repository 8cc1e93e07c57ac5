"""DIN roles on separate "machines": each `loyal din ...` is its own OS process with its own
LOYAL_HOME, and they share content only through a real IPFS daemon (js-ipfs, offline; IPFS_API).
One participant brings its own Flower client (`--client tests.din.custom_client:client_fn`). A
participant without IPFS_API cannot see the genesis model: it stops at once with one line naming
the fix and pays no bond."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.core.events import fetch_events
from agents.core.signers import dev_signer
from agents.core.store import KuboStore
from agents.din.contracts import GLOBAL, Din, Stage, TaskConfig
from agents.din.owner import create_task
from ml.din import data

ROOT = Path(__file__).resolve().parents[2]
TOKEN = 10**18
SHARDS = 2
OWNER, PARTS, EVALS, LONER = 1, (2, 3), (5, 6), 7


def env_of(home: Path, ipfs_api: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("IPFS_API", "LOYAL_HOME", "LOYAL_CONFIG")}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", FLWR_TELEMETRY_ENABLED="0", LOYAL_HOME=str(home),
               LOYAL_FETCH_TIMEOUT="5")
    if ipfs_api:
        env["IPFS_API"] = ipfs_api
    return env


def loyal(args: list[str], rpc: str, book: Path) -> list[str]:
    return [sys.executable, "-m", "agents.cli", "din", *args, "--rpc", rpc, "--book", str(book)]


@pytest.mark.slow
def test_machines_share_content_only_through_ipfs(chain, anvil, ipfs_api, tmp_path):
    din = Din(chain)
    book = chain.book.path
    split = data.split(SHARDS, seed=0)
    cfg = TaskConfig(reward=300 * TOKEN, evaluator_fee=3 * TOKEN, participant_bond=TOKEN,
                     min_evaluator_stake=10 * TOKEN, slash_amount=TOKEN, rounds=1, subgroup_size=2,
                     evaluators_per_subgroup=2, max_evaluators=2)
    with KuboStore(ipfs_api) as ipfs:
        task, genesis = create_task(chain, ipfs, dev_signer(OWNER), cfg, split.test)
    p = din.params(task)
    parts = [dev_signer(i).address for i in PARTS]
    evals = [dev_signer(i).address for i in EVALS]

    # -- a machine without IPFS_API: its embedded store lacks the genesis model ---------------------
    loner = tmp_path / "machine-loner"
    t0 = time.monotonic()
    res = subprocess.run(loyal(["participant", "--task", str(task), "--dev-account", str(LONER), "--shard", "0",
                                "--shards", str(SHARDS), "--poll", "0.2", "--exit-when-done"], anvil.rpc_url, book),
                         env=env_of(loner, None), cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1, res.stderr[-2000:]
    assert lines[-1].startswith("error: ") and "IPFS_API" in lines[-1] and genesis in lines[-1], lines[-1]
    assert "Traceback" not in res.stderr and "retrying" not in res.stderr  # permanent: no back-off loop
    assert time.monotonic() - t0 < 60
    assert not din.is_participant(task, dev_signer(LONER).address)  # no bond paid

    # -- the task, every role on its own machine -----------------------------------------------------
    machines = {
        "owner": ["owner", "--task", str(task), "--dev-account", str(OWNER), "--shards", str(SHARDS)],
        "participant-builtin": ["participant", "--task", str(task), "--dev-account", str(PARTS[0]),
                                "--shard", "0", "--shards", str(SHARDS), "--device", "auto"],
        "participant-own-client": ["participant", "--task", str(task), "--dev-account", str(PARTS[1]),
                                   "--client", "tests.din.custom_client:client_fn", "--shard", "1",
                                   "--shards", str(SHARDS), "--device", "cpu"],
        **{f"evaluator{i}": ["evaluator", "--task", str(task), "--dev-account", str(a), "--stake"]
           for i, a in enumerate(EVALS)},
    }
    homes = {name: tmp_path / f"machine-{name}" for name in machines}
    logs = {name: tmp_path / f"{name}.log" for name in machines}
    procs = {name: subprocess.Popen(loyal([*args, "--poll", "0.5", "--exit-when-done"], anvil.rpc_url, book),
                                    env=env_of(homes[name], ipfs_api), cwd=ROOT,
                                    stdout=logs[name].open("ab"), stderr=subprocess.STDOUT)
             for name, args in machines.items()}

    def wait_for(cond, what: str, timeout: float = 240) -> None:
        t0 = time.monotonic()
        while not cond():
            dead = [n for n, pr in procs.items() if pr.poll() is not None and pr.returncode != 0]
            if dead:
                raise AssertionError(f"{dead[0]} failed:\n" + logs[dead[0]].read_text()[-3000:])
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"gave up waiting for {what}")
            time.sleep(0.25)

    def warp(stage: Stage) -> None:
        start, _ = p.window(0, stage)
        if start > din.now():
            chain.advance_time(start - din.now())

    zero = b"\x00" * 32
    try:
        wait_for(lambda: all(din.is_participant(task, a) for a in parts)
                 and all(din.is_evaluator(task, e) for e in evals), "registration")
        warp(Stage.Submit)
        wait_for(lambda: all(din.update_commitment_of(task, 0, a) != zero for a in parts)
                 and all(din.seed_revealed(task, e) for e in evals), "update commitments")
        warp(Stage.UpdateReveal)
        wait_for(lambda: all(din.update_revealed(task, 0, a) for a in parts), "update reveals")
        warp(Stage.AggregateCommit)
        wait_for(lambda: all(din.vote_of(task, 0, 0, e)[0] != zero for e in evals)
                 and din.test_slice(task, 0) != zero, "aggregate commits and the owner's test slice")
        warp(Stage.AggregateReveal)
        wait_for(lambda: all(din.vote_of(task, 0, 0, e)[1] != zero for e in evals), "aggregate reveals")
        warp(Stage.GlobalCommit)
        wait_for(lambda: all(din.vote_of(task, 0, GLOBAL, e)[0] != zero for e in evals)
                 and all(din.score_vote_of(task, 0, 0, e)["commitment"] != zero for e in evals),
                 "global and score commits")
        warp(Stage.GlobalReveal)
        wait_for(lambda: all(din.vote_of(task, 0, GLOBAL, e)[1] != zero for e in evals)
                 and all(din.score_vote_of(task, 0, 0, e)["revealed"] for e in evals), "global and score reveals")
        warp(Stage.Close)
        wait_for(lambda: din.tally(task, 0, GLOBAL)[2] and din.all_settled(task), "global vote and scores settled")
        warp(Stage.Settle)
        wait_for(lambda: all(pr.poll() is not None for pr in procs.values()), "every daemon to finish")
    finally:
        for pr in procs.values():
            if pr.poll() is None:
                pr.kill()
                pr.wait()
    assert {n: pr.returncode for n, pr in procs.items()} == {n: 0 for n in procs}, \
        {n: logs[n].read_text()[-2000:] for n in procs}

    # nothing went through a shared folder: no machine has an embedded store
    for name, home in homes.items():
        assert not (home / "store").exists() and not (home / "din" / "store").exists(), name
    assert "tests.din.custom_client:client_fn on cpu" in logs["participant-own-client"].read_text()
    # both updates (built-in and own client) were aggregated, the global model accepted, both paid
    assert din.tally(task, 0, 0).accepted and din.tally(task, 0, GLOBAL).accepted
    events = [e for e in fetch_events(chain, contracts=["DinScoring", "Staking", "DinRounds"])
              if e.args.get("taskId", task) == task]
    assert not [e for e in events if e.name == "Slashed"]
    paid = {e.args["participant"]: e.args["amount"] for e in events if e.name == "RewardClaimed"}
    assert set(paid) == set(parts) and min(paid.values()) > 0
    assert {e.args["evaluator"] for e in events if e.name == "FeeClaimed"} == set(evals)
    with KuboStore(ipfs_api) as ipfs:
        assert ipfs.has(genesis)
    assert (homes["owner"] / "din" / f"task{task}" / "accuracy.csv").exists()
