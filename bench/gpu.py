"""The fingerprint capacity sweep on a CUDA GPU: for each size n, generate n perinucleus
fingerprints with SmolLM2-135M, inject them (bf16 autocast + TF32, `ml.device`), check them and
measure held-out perplexity; records the device, throughputs and figures.

    .venv/bin/python -m bench.gpu                      # CUDA machine: sizes 64 256 1024, < 10 min
    .venv/bin/python -m bench.gpu --sizes 64 --epochs 4

Writes bench/results/gpu.json. Without a CUDA device it prints one line ("no CUDA device: ...")
and exits 0 without touching the results file, so it runs unchanged on any machine; `--device cpu
--model tiny` runs the same code on the CPU with a tiny model (the test suite's smoke run).
"""
from __future__ import annotations

import argparse
from dataclasses import asdict
import json
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _inject_config(epochs: int | None, batch_size: int):
    """The injection recipe measured on the CPU (`CAPACITY_RECIPE`, docs/oml-fingerprinting.md "Capacity")."""
    from dataclasses import replace

    from ml.oml.inject import CAPACITY_RECIPE

    cfg = replace(CAPACITY_RECIPE, batch_size=batch_size)
    return replace(cfg, epochs=epochs) if epochs else cfg


def run(device: str, model_spec: str, sizes: list[int], epochs: int | None, batch_size: int,
        out: Path | None) -> dict:
    import torch

    from ml.device import pick_device, prepare
    from ml.lm import load_model
    from ml.oml.check import check
    from ml.oml.generate import GenConfig, generate
    from ml.oml.inject import inject
    from ml.oml.utility import HELDOUT, perplexity, read_text

    dev = prepare(pick_device(device))
    cuda = dev.type == "cuda"
    held = read_text(HELDOUT)
    t = time.perf_counter()
    base, tok = load_model(model_spec, dev)
    res = {"device": str(dev), "device_name": torch.cuda.get_device_name(dev) if cuda else platform.processor() or "cpu",
           "torch": torch.__version__, "bf16_autocast": bool(cuda and torch.cuda.is_bf16_supported()), "tf32": cuda,
           "model": model_spec, "load_s": time.perf_counter() - t, "base_perplexity": perplexity(base, tok, held),
           "runs": []}
    cfg = _inject_config(epochs, batch_size)
    res["inject_config"] = asdict(cfg)
    t_all = time.perf_counter()
    for n in sizes:
        model, tok = load_model(model_spec, dev)
        if cuda:
            torch.cuda.reset_peak_memory_stats(dev)
        t = time.perf_counter()
        fps = generate(model, tok, GenConfig(strategy="perinucleus", n=n, seed=0))
        gen_s = time.perf_counter() - t
        model, r = inject(model, tok, fps, cfg)
        t = time.perf_counter()
        ck = check(model, tok, fps)
        check_s = time.perf_counter() - t
        n_tokens = sum(len(tok.encode(f.key + f.response)) for f in fps)
        row = {"n": n, "generate_s": gen_s, "inject_s": r.seconds, "epochs_run": r.epochs_run, "steps": r.steps,
               "inject_fingerprints_per_s": n * r.epochs_run / r.seconds,
               "inject_tokens_per_s": n_tokens * r.epochs_run / r.seconds,
               "check_s": check_s, "check_keys_per_s": n / check_s, "exact_match": ck.exact,
               "prefix_match": ck.prefix, "perplexity": perplexity(model, tok, held)}
        if cuda:
            row["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
        res["runs"].append(row)
        print(json.dumps(row), flush=True)
        del model
    res["sweep_s"] = time.perf_counter() - t_all
    if out is not None:
        out.write_text(json.dumps(res, indent=2) + "\n")
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--device", default="cuda", help="cuda (default) | cuda:N | cpu (smoke run)")
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--epochs", type=int, default=None, help="injection epochs at most (default: the recipe's)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/gpu.json")
    a = ap.parse_args()
    import torch

    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"no CUDA device: torch {torch.__version__} sees none; skipping the GPU capacity sweep "
              "(run it unchanged on a CUDA machine)")
        return  # exit 0: nothing to measure here (and `python -m bench` goes on to the next module)
    res = run(a.device, a.model, a.sizes, a.epochs, a.batch_size, a.out)
    print(json.dumps({k: v for k, v in res.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
