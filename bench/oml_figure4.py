"""Figure-4 sweep on SmolLM2-135M (CPU) + injection/check/memory benchmarks.

    nice -n 10 .venv/bin/python -m bench.oml_figure4 --sizes 256 --strategies perinucleus --attack strong \
        --fp-cache .loyal/fp-cache --out bench/results/oml_figure4_scale_n256_seed0.json --no-plot

Injection uses `ml.oml.inject.CAPACITY_RECIPE` (1-token perinucleus responses; see
docs/oml-fingerprinting.md) unless `--recipe mix_avg` / `--recipe legacy` (the earlier 12-epoch lr 1e-4 SFT with
4-token responses) or individual flags override it. Writes the JSON after every run and
docs/img/oml-figure4-*.png unless --no-plot.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch

from ml.lm import load_smollm2
from ml.oml.attack import FinetuneAttack
from ml.oml.figure4 import plot, run
from ml.oml.fingerprints import STRATEGIES
from ml.oml.generate import GenConfig
from ml.oml.inject import RECIPES, InjectConfig

ROOT = Path(__file__).resolve().parents[1]
LEGACY = InjectConfig(epochs=12, lr=1e-4, batch_size=16, target_exact=1.0)
ATTACKS = {"weak": FinetuneAttack(epochs=1, lr=1e-4, block=64, batch_size=8, max_blocks=16),
           "strong": FinetuneAttack(epochs=3, lr=3e-4, block=64, batch_size=8, max_blocks=0)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a loaded shared box)")
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/oml_figure4.json")
    ap.add_argument("--recipe", choices=("capacity", "mix_avg", "legacy"), default="capacity")
    ap.add_argument("--attack", choices=sorted(ATTACKS), default="weak",
                    help="weak: 1 epoch, 16 blocks, lr 1e-4; strong: 3 epochs, all attack text, lr 3e-4")
    ap.add_argument("--response-tokens", type=int, default=None, help="default: 1 (4 for legacy)")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--mix-ratio", type=float, default=None, help="data mixing: benign samples per fingerprint")
    ap.add_argument("--avg-lambda", type=float, default=None, help="model averaging weight toward the base")
    ap.add_argument("--avg-every", choices=("step", "epoch", "end"), default=None)
    ap.add_argument("--seed", type=int, default=0, help="fingerprint generation and injection seed (the attack's stays fixed)")
    ap.add_argument("--steps", type=int, default=0, help="inject with exactly this many optimizer steps (no early stop)")
    ap.add_argument("--fp-cache", type=Path, default=None, help="directory caching generated fingerprint sets")
    ap.add_argument("--no-plot", action="store_true", help="only write the JSON (e.g. an extra size, merged by `report`)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = LEGACY if a.recipe == "legacy" else RECIPES[a.recipe]
    over = {k: getattr(a, k) for k in ("lr", "epochs", "batch_size", "mix_ratio", "avg_lambda", "avg_every")
            if getattr(a, k) is not None}
    cfg = replace(cfg, **over, seed=a.seed, steps=a.steps)
    resp = a.response_tokens or (4 if a.recipe == "legacy" else 1)
    t0 = time.time()
    res = run(load_smollm2, a.sizes, a.strategies, a.out, gen_cfg=GenConfig(seed=a.seed, response_tokens=resp),
              inject_cfg=cfg, attack_cfg=ATTACKS[a.attack], utility_tokens=1024, fp_cache=a.fp_cache,
              log=lambda m: print(f"[{time.time() - t0:6.0f}s] {m}", flush=True))
    if not a.no_plot:
        for p in plot(res, ROOT / "docs/img"):
            print("wrote", p)


if __name__ == "__main__":
    main()
