"""Fingerprint check throughput and peak memory on SmolLM2-135M (CPU).

    nice -n 10 .venv/bin/python -m bench.oml_bench

Injection time per fingerprint comes from the Figure-4 sweep (bench/oml_figure4.py), which
records it for every (strategy, n) run. Writes bench/results/oml_check.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from ml.lm import load_smollm2
from ml.oml.check import check, greedy_responses
from ml.oml.figure4 import peak_rss_mb
from ml.oml.generate import GenConfig, generate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/oml_check.json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t = time.perf_counter()
    model, tok = load_smollm2()
    load_s = time.perf_counter() - t
    fps = generate(model, tok, GenConfig(strategy="random_tokens", n=a.n, key_tokens=16, response_tokens=4, seed=0))
    res = {"model": "SmolLM2-135M-Instruct f32", "threads": a.threads, "n_keys": a.n, "key_tokens": 16,
           "response_tokens": 4, "load_seconds": load_s, "machine": f"{platform.machine()}, shared 2-core box"}
    for bs in (16, 64):
        t = time.perf_counter()
        check(model, tok, fps, batch_size=bs)
        s = time.perf_counter() - t
        res[f"check_teacher_forced_bs{bs}_keys_per_s"] = a.n / s
    t = time.perf_counter()
    greedy_responses(model, tok, fps, batch_size=32)
    res["greedy_decode_bs32_keys_per_s"] = a.n / (time.perf_counter() - t)
    res["peak_rss_mb"] = peak_rss_mb()
    a.out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
