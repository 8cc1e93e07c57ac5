"""DIN round wall time through the real daemons (training, store, chain) for N = 10, 50, 100.

    .venv/bin/python -m bench.din_rounds

One round per N: every participant trains on its digits shard and submits; evaluators aggregate
their assigned subgroups, finalise and vote on the global model. Subgroup size 10, 3 evaluators per
subgroup, and as many evaluators as subgroup slots (capped at 32), as a real network would grow
them. Reports per-stage wall time and the evaluator work: updates aggregated per evaluator
assignment (= subgroup size) and per evaluator. Writes bench/results/din_rounds.json.
Wall times are from a shared 2-core machine: noisy, compare within one run only.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

for _k, _v in (("FLWR_TELEMETRY_ENABLED", "0"), ("FLWR_DISABLE_UPDATE_CHECK", "1"),
               ("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1")):
    os.environ.setdefault(_k, _v)

from agents.core.anvil import Anvil  # noqa: E402
from agents.core.chain import Chain  # noqa: E402
from agents.core.deploy import deploy_suite  # noqa: E402
from agents.core.signers import dev_signer  # noqa: E402
from agents.core.store import LocalStore  # noqa: E402
from agents.din.contracts import ROUND_STAGES, Stage  # noqa: E402
from agents.din.evaluator import EvaluatorDaemon  # noqa: E402
from agents.din.scenario import Runner, Scenario  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "din_rounds.json"
S, K = 10, 3


def one(n: int) -> dict:
    groups = -(-n // S)
    evaluators = min(32, max(K, groups * K))
    sc = Scenario(participants=n, evaluators=evaluators, rounds=1, subgroup_size=S, evaluators_per_subgroup=K,
                  poisoners=(), lazy=(), first_account=1)
    with Anvil(accounts=n + evaluators + 4) as node, tempfile.TemporaryDirectory() as tmp:
        chain = Chain.connect(node.rpc_url, book_path=Path(tmp) / "31337.json")
        deploy_suite(chain, dev_signer(0))
        runner = Runner(chain, LocalStore(Path(tmp) / "store"), Path(tmp), sc)
        runner.fund()
        runner.create()
        runner.settle_stage()  # registration
        stages = {}
        t_round = time.perf_counter()
        for st in ROUND_STAGES:
            runner.warp_to(st, 0)
            t = time.perf_counter()
            sent = runner.settle_stage()
            stages[st.name] = {"seconds": round(time.perf_counter() - t, 2), "transactions": sent}
        runner.warp_to(Stage.ScoreCommit, 0)
        ev0 = next(d for d in runner.daemons if isinstance(d, EvaluatorDaemon))
        ev0._finalize_global(0)
        round_s = time.perf_counter() - t_round
        work = []
        for d in runner.daemons:
            if isinstance(d, EvaluatorDaemon):
                gs = runner.din.assigned_subgroups(runner.task, 0, d.address)
                work.append(sum(len(d.index.updates(0, g)) for g in gs))
        per_assignment = [len(runner.daemons[-1].index.updates(0, g)) for g in range(groups)]
        return {"participants": n, "subgroups": groups, "evaluators": evaluators, "round_seconds": round(round_s, 2),
                "stages": stages, "updates_per_assignment_max": max(per_assignment),
                "updates_per_evaluator_max": max(work), "updates_per_evaluator_mean": round(sum(work) / len(work), 2),
                "global_accepted": runner.din.tally(runner.task, 0, 2**256 - 1)[3]}


def main(argv: list[str] | None = None) -> None:
    results = []
    for n in (10, 50, 100):
        r = one(n)
        print(json.dumps(r), flush=True)
        results.append(r)
    doc = {"what": "one DIN round through the daemons (train, submit, aggregate, vote); subgroup size 10, "
                   "3 evaluators per subgroup, evaluators = subgroup slots (<= 32)",
           "machine": platform.platform(), "cpus": os.cpu_count(), "results": results}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
