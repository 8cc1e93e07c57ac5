"""DIN ML benchmark: local training per participant, aggregation vs subgroup size, secure-aggregation
overhead, scoring. Writes bench/results/din_ml.json.

    .venv/bin/python -m bench.din_ml [--participants 100] [--repeats 3]

All updates are real: every participant trains the MLP on its own digits shard (default config).
Times are wall-clock medians on whatever machine runs this (shared CPUs make them noisy).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

for _k, _v in (("FLWR_TELEMETRY_ENABLED", "0"), ("FLWR_DISABLE_UPDATE_CHECK", "1"),
               ("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1")):
    os.environ.setdefault(_k, _v)

import torch  # noqa: E402

from ml.din import aggregate as A  # noqa: E402
from ml.din import client as C  # noqa: E402
from ml.din import data  # noqa: E402
from ml.din import model as M  # noqa: E402
from ml.din import scoring as S  # noqa: E402
from ml.din import secagg as SA  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "din_ml.json"


def timed(fn, repeats: int) -> tuple[float, object]:
    ts, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark; `argv` defaults to none (so `python -m bench din_ml` uses the defaults)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="10,50,100")
    args = ap.parse_args([] if argv is None else argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    n = max(args.participants, max(sizes))

    split = data.split(n, seed=0)
    genesis = M.to_bytes(M.state_of(M.build(seed=0)))
    layout = M.layout_of(M.from_bytes(genesis))
    ids = [f"0x{i:040x}" for i in range(1, n + 1)]

    C.train_update(genesis, split.shards[0])  # warm-up (first call initialises torch kernels)
    training = {}
    for n_split in sorted({20, n}):
        sp = split if n_split == n else data.split(n_split, seed=0)
        train_s, ups_n = [], {}
        for pid, shard in zip(ids, sp.shards):
            t = time.perf_counter()
            ups_n[pid] = C.train_update(genesis, shard, {"seed": 0})
            train_s.append(time.perf_counter() - t)
        if n_split == n:
            updates = ups_n
        samples = [len(s) for s in sp.shards]
        training[f"{n_split}_shards"] = {
            "samples_per_shard": {"min": min(samples), "median": statistics.median(samples),
                                  "max": max(samples)},
            "seconds_per_participant": {"min": min(train_s), "median": statistics.median(train_s),
                                        "max": max(train_s)},
        }
        print(json.dumps({f"local_training_{n_split}_shards": training[f"{n_split}_shards"]}))

    keys = {pid: SA.private_key_from_bytes(bytes([i % 256, i // 256]) * 16) for i, pid in enumerate(ids)}
    pubs = {pid: SA.public_bytes(k) for pid, k in keys.items()}
    ctx = SA.mask_context(31337, "0x" + "11" * 20, 1, 0, 0)

    per_size = []
    for k in sizes:
        group = ids[:k]
        ups = {p: updates[p] for p in group}
        t_agg, agg = timed(lambda: A.aggregate(ups, layout), args.repeats)
        sub = {p: pubs[p] for p in group}
        t_mask, _ = timed(lambda: SA.mask_update(ups[group[0]], layout, group[0], keys[group[0]], sub, ctx),
                          args.repeats)
        masked = {p: SA.mask_update(ups[p], layout, p, keys[p], sub, ctx) for p in group}
        t_unmask, agg_sa = timed(lambda: SA.aggregate_masked(masked, group, layout), args.repeats)
        assert agg_sa == agg, "secure aggregate differs from the clear aggregate"
        dropped = group[: max(1, k // 10)]  # 10% dropouts
        survivors = [p for p in group if p not in dropped]
        t_reveal, _ = timed(lambda: SA.recovery_seeds(survivors[0], keys[survivors[0]], sub, dropped, ctx),
                            args.repeats)
        revealed = {s: SA.recovery_seeds(s, keys[s], sub, dropped, ctx) for s in survivors}
        got = {s: masked[s] for s in survivors}
        t_recover, _ = timed(lambda: SA.aggregate_masked(got, group, layout, revealed), args.repeats)
        t_score, _ = timed(lambda: S.score_updates(genesis, ups, split.test), 1)
        per_size.append({
            "subgroup_size": k,
            "aggregate_clear_s": t_agg,
            "mask_one_participant_s": t_mask,
            "aggregate_masked_s": t_unmask,
            "dropouts": len(dropped),
            "reveal_seeds_one_survivor_s": t_reveal,
            "aggregate_masked_with_dropouts_s": t_recover,
            "score_clear_all_members_s": t_score,
        })
        print(json.dumps(per_size[-1]))

    result = {
        "benchmark": "din_ml",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "torch": torch.__version__, "note": "shared 2-core VM, other jobs running"},
        "model_parameters": M.size_of(layout),
        "update_bytes": len(next(iter(updates.values()))),
        "masked_update_bytes": 8 * M.size_of(layout),
        "participants": n,
        "local_training": {"config": C.DEFAULTS, **training},
        "by_subgroup_size": per_size,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
