"""DIN round cost through the real daemons (training, store, chain) for N = 10, 50, 100.

    .venv/bin/python -m bench.din_rounds [--sizes 10 50 100] [--label after]

One round per N: every participant trains on its digits shard and submits; evaluators aggregate
their assigned subgroups, finalise and vote on the global model. Subgroup size 10, 3 evaluators per
subgroup, and as many evaluators as subgroup slots, as a real network would grow
them. All daemons run in this one process (the in-process `Runner`), as `loyal din run` does.

Per round it reports: wall time per stage and in total; transactions (eth_sendRawTransaction);
JSON-RPC requests in total, per method and per transaction (counted at the HTTP provider, i.e.
requests that reach the node); cursor file writes; event-log decodes; time spent training
(`fit_update`); CPU seconds of this process and of Anvil; and the floor the round cannot beat
on this machine: transactions x the measured latency of one `Chain.transact` + training time. The
latency is the mean of LATENCY_SAMPLES transactions sent in a row before the round and as many
after it (the mean, not the median: it is bimodal, a receipt is either there at the first poll or
after one more poll interval, and the round pays the mean). The time the round itself spent
inside `Chain.transact` is reported too, so round = transact + training + the rest.
Results go under `--label` in bench/results/din_rounds.json (other labels are kept, so the file
holds the before/after comparison). Wall times are from a shared 2-core machine: noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

for _k, _v in (("FLWR_TELEMETRY_ENABLED", "0"), ("FLWR_DISABLE_UPDATE_CHECK", "1"),
               ("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1")):
    os.environ.setdefault(_k, _v)

from agents.core import events as core_events  # noqa: E402
from agents.core.chain import Chain  # noqa: E402
from bench import devnet  # noqa: E402
from agents.core.signers import dev_signer  # noqa: E402
from agents.core.store import LocalStore  # noqa: E402
from agents.din.contracts import GLOBAL, ROUND_STAGES, Stage  # noqa: E402
from agents.din.evaluator import EvaluatorDaemon  # noqa: E402
from agents.din.scenario import Runner, Scenario  # noqa: E402
from ml.din import client as flwr_client  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "din_rounds.json"
S, K = 10, 3
LATENCY_SAMPLES = 30


class Meter:
    """What the round costs, counted where it happens: RPC requests at the HTTP provider (what
    reaches the node), log decodes at `Chain.decode_log`, cursor file writes, training time."""

    def __init__(self, chain: Chain):
        self.rpc: Counter[str] = Counter()
        self.decodes = 0
        self.cursor_writes = 0
        self.train_seconds = 0.0
        self.trainings = 0
        self.transact_seconds = 0.0
        provider = chain.w3.provider
        send = provider._make_request  # the HTTP post itself: cached answers never get here

        def counted_send(method, request_data):
            self.rpc[method] += 1
            return send(method, request_data)

        provider._make_request = counted_send
        decode = chain.decode_log

        def counted_decode(log):
            self.decodes += 1
            return decode(log)

        chain.decode_log = counted_decode
        transact = chain.transact

        def timed_transact(*a, **kw):
            t = time.perf_counter()
            try:
                return transact(*a, **kw)
            finally:
                self.transact_seconds += time.perf_counter() - t

        chain.transact = timed_transact

    @contextmanager
    def process_hooks(self):
        """Count cursor writes (`EventCursor.commit` of a cursor with a file: it writes each time it is
        called) and time `fit_update` while the block runs (process-wide hooks)."""
        cursor_cls = core_events.EventCursor
        write, train = cursor_cls.commit, flwr_client.fit_update
        meter = self

        def counted_write(self_, *a, **kw):
            if self_.path is not None:
                meter.cursor_writes += 1
            return write(self_, *a, **kw)

        def timed_train(*a, **kw):
            t = time.perf_counter()
            try:
                return train(*a, **kw)
            finally:
                meter.train_seconds += time.perf_counter() - t
                meter.trainings += 1

        cursor_cls.commit = counted_write
        flwr_client.fit_update = timed_train
        try:
            yield self
        finally:
            cursor_cls.commit = write
            flwr_client.fit_update = train

    def snapshot(self) -> dict:
        return {"rpc": Counter(self.rpc), "decodes": self.decodes, "cursor_writes": self.cursor_writes,
                "train_seconds": self.train_seconds, "trainings": self.trainings,
                "transact_seconds": self.transact_seconds}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def transact_latencies(chain: Chain, n: int = LATENCY_SAMPLES) -> list[float]:
    """Seconds per `Chain.transact` (estimate, sign, send, wait for the receipt), `n` in a row."""
    admin = dev_signer(0)
    token = chain.contract("LoyalToken")
    xs = []
    for i in range(n):
        t = time.perf_counter()
        chain.transact(admin, token.functions.approve(admin.address, i + 1))
        xs.append(time.perf_counter() - t)
    return xs


def latency_summary(xs: list[float]) -> dict:
    return {"mean_s": round(statistics.fmean(xs), 5), "median_s": round(statistics.median(xs), 5),
            "min_s": round(min(xs), 5), "max_s": round(max(xs), 5), "samples": len(xs)}


def delta(after: dict, before: dict) -> dict:
    return {"rpc": after["rpc"] - before["rpc"], "decodes": after["decodes"] - before["decodes"],
            "cursor_writes": after["cursor_writes"] - before["cursor_writes"],
            "train_seconds": after["train_seconds"] - before["train_seconds"],
            "trainings": after["trainings"] - before["trainings"],
            "transact_seconds": after["transact_seconds"] - before["transact_seconds"]}


def one(n: int) -> dict:
    groups = -(-n // S)
    evaluators = max(K, groups * K)
    sc = Scenario(participants=n, evaluators=evaluators, rounds=1, subgroup_size=S, evaluators_per_subgroup=K,
                  poisoners=(), lazy=(), first_account=1)
    with devnet(accounts=n + evaluators + 4) as (chain, tmp, node):
        meter = Meter(chain)
        with meter.process_hooks():
            runner = Runner(chain, LocalStore(Path(tmp) / "store"), Path(tmp), sc)
            runner.fund()
            runner.create()
            runner.settle_stage()  # registration
            latency_before = transact_latencies(chain)
            stages = {}
            m0, anvil0, cpu0 = meter.snapshot(), cpu_seconds(node.pid), time.process_time()
            t_round = time.perf_counter()
            for st in ROUND_STAGES:
                runner.warp_to(st, 0)
                s0, t = meter.snapshot(), time.perf_counter()
                runner.settle_stage()
                d = delta(meter.snapshot(), s0)
                stages[st.name] = {"seconds": round(time.perf_counter() - t, 2),
                                   "transactions": d["rpc"]["eth_sendRawTransaction"],
                                   "rpc_requests": sum(d["rpc"].values()), "cursor_writes": d["cursor_writes"],
                                   "decodes": d["decodes"], "train_seconds": round(d["train_seconds"], 2),
                                   "transact_seconds": round(d["transact_seconds"], 2)}
            runner.warp_to(Stage.Close, 0)
            ev0 = next(dm for dm in runner.daemons if isinstance(dm, EvaluatorDaemon))
            ev0._finalize_global(0)
            round_s = time.perf_counter() - t_round
            d = delta(meter.snapshot(), m0)
            anvil_cpu, own_cpu = cpu_seconds(node.pid) - anvil0, time.process_time() - cpu0
        latency_after = transact_latencies(chain)
        latency = statistics.fmean(latency_before + latency_after)
        work = []
        for dm in runner.daemons:
            if isinstance(dm, EvaluatorDaemon):
                gs = runner.din.assigned_subgroups(runner.task, 0, dm.address)
                work.append(sum(len(dm.index.updates(0, g)) for g in gs))
        per_assignment = [len(runner.daemons[-1].index.updates(0, g)) for g in range(groups)]
        txs = d["rpc"]["eth_sendRawTransaction"]
        requests = sum(d["rpc"].values())
        floor = txs * latency + d["train_seconds"]
        return {"participants": n, "subgroups": groups, "evaluators": evaluators, "daemons": len(runner.daemons),
                "round_seconds": round(round_s, 2), "transactions": txs,
                "rpc_requests": requests, "rpc_per_transaction": round(requests / txs, 1),
                "rpc_by_method": dict(d["rpc"].most_common()),
                "cursor_writes": d["cursor_writes"], "log_decodes": d["decodes"],
                "train_seconds": round(d["train_seconds"], 2), "trainings": d["trainings"],
                "transact_latency": {"before_round": latency_summary(latency_before),
                                     "after_round": latency_summary(latency_after),
                                     "mean_s": round(latency, 5)},
                "transact_seconds_in_round": round(d["transact_seconds"], 2),
                "floor_seconds": round(floor, 2),
                "round_over_floor": round(round_s / floor, 2),
                "cpu_seconds": {"agents": round(own_cpu, 2), "anvil": round(anvil_cpu, 2)},
                "stages": stages, "updates_per_assignment_max": max(per_assignment),
                "updates_per_evaluator_max": max(work), "updates_per_evaluator_mean": round(sum(work) / len(work), 2),
                "global_accepted": runner.din.tally(runner.task, 0, GLOBAL).accepted}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench.din_rounds")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100])
    ap.add_argument("--label", default="current", help="key the results are stored under (e.g. before, after)")
    args = ap.parse_args(argv)
    results = []
    for n in args.sizes:
        r = one(n)
        print(json.dumps(r), flush=True)
        results.append(r)
    doc = json.loads(OUT.read_text()) if OUT.exists() else {}
    runs = doc.get("runs", {})
    if "results" in doc and "runs" not in doc:  # the file's earlier layout: wall times only
        runs["earlier (wall time only)"] = {"machine": doc.get("machine"), "cpus": doc.get("cpus"),
                                            "results": doc["results"]}
    runs[args.label] = {"machine": platform.platform(), "cpus": os.cpu_count(), "results": results}
    doc = {"what": "one DIN round through the daemons (train, submit, aggregate, vote) in one process; subgroup "
                   "size 10, 3 evaluators per subgroup, evaluators = subgroup slots",
           "runs": runs}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {OUT} ({args.label})")


if __name__ == "__main__":
    main()
