"""Figure-4 sweep on SmolLM2-135M (CPU) + injection/check/memory benchmarks.

    nice -n 10 .venv/bin/python -m bench.oml_figure4 --sizes 16 32

Writes bench/results/oml_figure4.json (after every run) and docs/img/oml-figure4-*.png.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ml.lm import load_smollm2
from ml.oml.attack import FinetuneAttack
from ml.oml.figure4 import plot, run
from ml.oml.fingerprints import STRATEGIES
from ml.oml.generate import GenConfig
from ml.oml.inject import InjectConfig

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a loaded shared box)")
    ap.add_argument("--attack-blocks", type=int, default=16, help="64-token blocks of attack text used")
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/oml_figure4.json")
    ap.add_argument("--attack-epochs", type=int, default=1)
    ap.add_argument("--attack-lr", type=float, default=1e-4)
    ap.add_argument("--mix-ratio", type=float, default=0.0, help="data mixing: benign samples per fingerprint")
    ap.add_argument("--avg-lambda", type=float, default=0.0, help="model averaging toward base after every step")
    ap.add_argument("--seed", type=int, default=0, help="fingerprint generation and injection seed (the attack's stays fixed)")
    ap.add_argument("--steps", type=int, default=0, help="inject with exactly this many optimizer steps (no early stop)")
    ap.add_argument("--no-plot", action="store_true", help="only write the JSON (e.g. an extra size, merged by `report`)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.time()
    res = run(load_smollm2, a.sizes, a.strategies, a.out, gen_cfg=GenConfig(seed=a.seed),
              inject_cfg=InjectConfig(epochs=12, lr=1e-4, batch_size=16, target_exact=1.0, steps=a.steps,
                                      mix_ratio=a.mix_ratio, avg_lambda=a.avg_lambda, seed=a.seed),
              attack_cfg=FinetuneAttack(epochs=a.attack_epochs, lr=a.attack_lr, block=64, batch_size=8, max_blocks=a.attack_blocks),
              utility_tokens=1024,
              log=lambda m: print(f"[{time.time() - t0:6.0f}s] {m}", flush=True))
    if not a.no_plot:
        for p in plot(res, ROOT / "docs/img"):
            print("wrote", p)


if __name__ == "__main__":
    main()
