"""Explorer benchmarks (#16): the index rate into SQLite, the index process's memory, and page
render times for a DIN task with 100 participants.

On one fresh Anvil with the suite: a real DIN task (100 participants, 1 round, through the agents),
then 100k LoyalToken `Transfer` events made cheaply (tests/explorer/TransferBatch.sol: 2,000 per
transaction). Then:
- index rate: `EventIndex.catch_up` in this process into a fresh SQLite file (events/s);
- memory: `loyal index --once` as its own process into another file: peak RSS (wait4) and wall time;
- render: the real server (uvicorn) serving the task page, its plot and the overview, timed from an
  HTTP client (median of repeated requests).

    python -m bench.explorer [--events 100000] [--participants 100]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from agents.core.signers import dev_signer
from bench import devnet
from agents.core.store import LocalStore
from agents.din.scenario import Runner, Scenario
from agents.explorer.db import connect_db
from agents.explorer.index import EventIndex
from agents.explorer.server import Server, create_app
from tests.explorer.activity import TransferBatch

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "explorer.json"


def timed_get(client: httpx.Client, url: str, n: int) -> dict:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(url)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, (url, r.status_code)
    return {"median_ms": round(1000 * statistics.median(times), 1), "max_ms": round(1000 * max(times), 1),
            "requests": n, "bytes": len(r.content)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench.explorer")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--participants", type=int, default=100)
    args = ap.parse_args(argv)
    n = args.participants
    res: dict = {"machine": {"cpu_count": os.cpu_count(), "python": platform.python_version()}}
    with devnet(accounts=n + 16) as (chain, tmp, node):
        t = time.monotonic()
        sc = Scenario(participants=n, evaluators=8, rounds=1, subgroup_size=10, evaluators_per_subgroup=2,
                      poisoners=(), lazy=(), first_account=1)
        task = Runner(chain, LocalStore(tmp / "store"), tmp / "din", sc).run().task
        res["din_task"] = {"participants": n, "evaluators": 8, "rounds": 1, "seconds": round(time.monotonic() - t, 1)}
        print(f"DIN task {task} with {n} participants in {res['din_task']['seconds']} s", flush=True)
        t = time.monotonic()
        TransferBatch(chain, dev_signer(0)).events(args.events, per_tx=2000)
        res["generate"] = {"events": args.events, "per_tx": 2000, "seconds": round(time.monotonic() - t, 1)}
        print(f"{args.events} Transfer events in {res['generate']['seconds']} s", flush=True)

        engine = connect_db(f"sqlite:///{tmp / 'index.sqlite'}")
        idx = EventIndex(chain, engine)
        t = time.perf_counter()
        indexed = idx.catch_up()
        dt = time.perf_counter() - t
        res["index_sqlite"] = {"events": indexed, "blocks": idx.cursor.scanned_to + 1, "seconds": round(dt, 2),
                               "events_per_s": round(indexed / dt),
                               "db_bytes": (tmp / "index.sqlite").stat().st_size}
        print(f"indexed {indexed} events in {dt:.1f} s: {indexed / dt:.0f} events/s", flush=True)

        # the index as its own process: peak memory (VmHWM of the child itself: wait4's ru_maxrss
        # would count this parent's pages copied at fork) and wall time, startup included
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "agents.cli", "index", "--once", "--rpc", node.rpc_url,
                                 "--book", str(chain.book.path), "--db", f"sqlite:///{tmp / 'index2.sqlite'}"],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "LOYAL_HOME": str(tmp)})
        peak_kib = 0
        while proc.poll() is None:
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                peak_kib = max(peak_kib, int(status.split("VmHWM:")[1].split()[0]))
            except (FileNotFoundError, IndexError, ProcessLookupError):
                pass
            time.sleep(0.05)
        assert proc.returncode == 0, proc.stderr.read()
        res["index_process"] = {"peak_rss_mib": round(peak_kib / 1024, 1), "wall_s": round(time.perf_counter() - t, 2)}
        print(f"index process: peak RSS {res['index_process']['peak_rss_mib']} MiB, "
              f"{res['index_process']['wall_s']} s", flush=True)

        srv = Server(create_app(chain, engine, din_reports=tmp / "din"), "127.0.0.1", 0).start()
        try:
            with httpx.Client(base_url=srv.url, timeout=60) as client:
                res["render"] = {"din_task_page": timed_get(client, f"/din/task/{task}", 20),
                                 "din_task_plot_svg": timed_get(client, f"/din/task/{task}/plot.svg", 10),
                                 "overview": timed_get(client, "/", 10),
                                 "dao": timed_get(client, "/dao", 10)}
        finally:
            srv.stop()
        print(json.dumps(res["render"]), flush=True)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
