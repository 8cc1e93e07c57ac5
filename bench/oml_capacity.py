"""Fingerprint capacity sweep on SmolLM2-135M (CPU): one n, several injection recipes, side by side.

    nice .venv/bin/python -m bench.oml_capacity --n 64 --configs plain_1e-4 cos_3e-5 --attack

For each named recipe: fresh model, inject the same perinucleus fingerprints (1-token responses),
check, held-out perplexity (the first 1024 tokens, as bench/oml_figure4.py), optionally the strong
fine-tuning attack (3 epochs, lr 3e-4, all attack text) and check again. Results are appended to
--out after every recipe. Generated fingerprints are cached in --fp-cache (they depend only on the
seed and generation settings), so recipes and later sweeps reuse them.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from common.files import atomic_write_json
from ml.lm import load_smollm2
from ml.oml.attack import ATTACK_TEXT, FinetuneAttack, finetune_attack
from ml.oml.check import check
from ml.oml.figure4 import attack_label, peak_rss_mb, plot
from ml.oml.fingerprints import Fingerprint
from ml.oml.generate import GenConfig, generate
from ml.oml.inject import CAPACITY_RECIPE, InjectConfig, inject
from ml.oml.utility import HELDOUT, perplexity, read_text

ROOT = Path(__file__).resolve().parents[1]
STRONG_ATTACK = FinetuneAttack(epochs=3, lr=3e-4, block=64, batch_size=8, max_blocks=0)
BASE = dict(epochs=12, batch_size=16, target_exact=1.0)
COS = dict(schedule="cosine", warmup=0.1, min_lr_ratio=0.1)
MIX = dict(mix_ratio=0.35, loss_per="item")
RECIPES: dict[str, InjectConfig] = {
    "plain_1e-4": InjectConfig(lr=1e-4, **BASE),
    "cos_1e-4": InjectConfig(lr=1e-4, **BASE, **COS),
    "cos_3e-5": InjectConfig(lr=3e-5, **BASE, **COS),
    "cos_1e-5": InjectConfig(lr=1e-5, **BASE, **COS),
    "cos_1e-4_mix": InjectConfig(lr=1e-4, **BASE, **COS, **MIX),
    "cos_3e-5_mix": InjectConfig(lr=3e-5, **BASE, **COS, **MIX),
    "cos_1e-5_mix": InjectConfig(lr=1e-5, **BASE, **COS, **MIX),
    "cos_1e-4_mix_avg": InjectConfig(lr=1e-4, avg_lambda=0.15, **BASE, **COS, **MIX),
    "cos_3e-5_mix_avg": InjectConfig(lr=3e-5, avg_lambda=0.15, **BASE, **COS, **MIX),
    "cos_1e-4_mix_avg.02": InjectConfig(lr=1e-4, avg_lambda=0.02, **BASE, **COS, **MIX),
    "cos_1e-4_mix_avg.15ep": InjectConfig(lr=1e-4, avg_lambda=0.15, avg_every="epoch", **BASE, **COS, **MIX),
    # Past 100 % train exact match (early stop took 80 steps at n = 256): a wider margin per key
    # before end-of-training averaging pulls the weights back towards the base.
    "cos_1e-4_160steps": InjectConfig(lr=1e-4, steps=160, batch_size=16, **COS),
    # Smaller steps for longer (a solution nearer the base?), and a low-rank update (LoRA on every
    # linear layer, merged back): do they buy more fingerprint margin per unit of perplexity?
    "cos_3e-5_30ep": InjectConfig(lr=3e-5, epochs=30, batch_size=16, target_exact=1.0, **COS),
    # A pull toward the base at every step (like weight decay toward the base) lets the optimiser keep
    # only the directions the fingerprints need, where end averaging shrinks every direction alike.
    "cos_1e-4_avg.02step": InjectConfig(lr=1e-4, epochs=30, batch_size=16, target_exact=1.0, avg_lambda=0.02, **COS),
    "cos_1e-4_avg.05step": InjectConfig(lr=1e-4, epochs=30, batch_size=16, target_exact=1.0, avg_lambda=0.05, **COS),
    # Tied input/output embeddings: raising a response token's output row raises its logit after every
    # context. Frozen embeddings (and norms) keep the update inside the context-dependent layers;
    # "_mlp" trains only the MLP blocks (where transformers store key -> value associations).
    "cos_1e-4_noemb": InjectConfig(lr=1e-4, epochs=30, batch_size=16, target_exact=1.0, trainable=r"self_attn|mlp",
                                   **COS),
    "cos_1e-4_mlp": InjectConfig(lr=1e-4, epochs=30, batch_size=16, target_exact=1.0,
                                 trainable=r"\.mlp\.", **COS),
    # Self-distillation: beside each fingerprint batch, 8 of 256 in-distribution sequences (32 tokens,
    # sampled from the base model before training) are trained toward the base's own next-token
    # distributions at every position, so the update is pushed to where the fingerprints need it.
    "cos_1e-4_kl": InjectConfig(lr=1e-4, epochs=30, batch_size=16, target_exact=1.0, distill=256, **COS),
    "cos_1e-4_noemb_kl": InjectConfig(lr=1e-4, epochs=30, batch_size=16, target_exact=1.0, distill=256,
                                      trainable=r"self_attn|mlp", **COS),
    "cos_1e-4_mlp_kl": InjectConfig(lr=1e-4, epochs=30, batch_size=16, target_exact=1.0, distill=256,
                                    trainable=r"\.mlp\.", **COS),
    "cos_1e-4_mlp_kl3": InjectConfig(lr=1e-4, epochs=30, batch_size=16, target_exact=1.0, distill=256,
                                     distill_weight=3.0, trainable=r"\.mlp\.", **COS),
    # the distillation set doubled (512 sequences; the same 8 per step): CAPACITY_RECIPE before its end averaging
    "cos_1e-4_mlp_kl512": InjectConfig(lr=1e-4, epochs=30, batch_size=16, target_exact=1.0, distill=512,
                                       trainable=r"\.mlp\.", **COS),
    "capacity": CAPACITY_RECIPE,  # cos_1e-4_mlp_kl512 + end averaging 0.3 (was cos_1e-4_mlp_kl + 0.3)
    "lora32_cos_1e-3": InjectConfig(lr=1e-3, epochs=30, batch_size=16, target_exact=1.0, lora_rank=32,
                                    lora_alpha=64, **COS),
}


def fingerprints(model, tok, gen: GenConfig, cache: Path) -> tuple[list[Fingerprint], float]:
    """`gen.n` fingerprints, from the cache when a set of at least that many with the same settings exists."""
    key = {k: v for k, v in asdict(gen).items() if k not in ("n", "batch_size")}
    if cache.is_file():
        c = json.loads(cache.read_text())
        if c["gen"] == key and len(c["fps"]) >= gen.n:
            return [Fingerprint(**f) for f in c["fps"][:gen.n]], c["seconds"] * gen.n / len(c["fps"])
    t = time.perf_counter()
    fps = generate(model, tok, gen)
    s = time.perf_counter() - t
    atomic_write_json(cache, {"gen": key, "fps": [asdict(f) for f in fps], "seconds": s})
    return fps, s


def table(paths: list[Path]) -> str:
    """Markdown ablation table of capacity runs (one row per recipe, n and seed)."""
    lines = ["| recipe | n | seed | steps | exact after inject | held-out ppl (x base) | exact after strong attack |",
             "|---|---|---|---|---|---|---|"]
    for path in paths:
        res = json.loads(Path(path).read_text())
        for r in res["runs"]:
            pers = f"{r['persistence']:.2f}" if "persistence" in r else "not attacked"
            lines.append(f"| {r.get('inject_variant', r['recipe'])} | {r['n']} | {r['seed']} | {r['inject_steps']} | "
                         f"{r['exact_after_inject']:.3f} | {r['perplexity']:.2f} (x{r['ppl_ratio']:.3f}) | {pers} |")
    return "\n".join(lines)


def capacity_plot(legacy: list[Path], capacity: list[Path], out_dir: Path) -> list[Path]:
    """Utility and persistence vs n: the earlier recipe (perinucleus rows of bench/oml_figure4 files
    with the strong attack) beside the attacked runs of capacity files; figure4.plot draws them."""
    runs, base = [], None
    for path in legacy:
        res = json.loads(Path(path).read_text())
        base = base or res["base_perplexity"]
        for r in res["runs"]:
            if r["strategy"] == "perinucleus" and res.get("attack", {}).get("epochs") == 3:
                runs.append({**r, "inject_variant": "earlier: 4-token responses, lr 1e-4 const",
                             "seed": res.get("gen", {}).get("seed", 0), "attack_variant": ""})
    for path in capacity:
        res = json.loads(Path(path).read_text())
        base = base or res["base_perplexity"]
        runs += [{**r, "attack_variant": ""} for r in res["runs"] if "persistence" in r]
    if base is None:
        raise ValueError("no result files")
    return plot({"runs": runs, "strategies": ["perinucleus"], "base_perplexity": base}, out_dir,
                prefix="oml-capacity", title="SmolLM2-135M, perinucleus, strong attack", color_by="variant")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plot", nargs=2, metavar=("LEGACY_GLOB", "CAPACITY_GLOB"),
                    help="only plot: earlier oml_figure4 results beside capacity results (globs under bench/results)")
    ap.add_argument("--report", type=Path, nargs="+", help="only print the table of these result files")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--configs", nargs="+", default=["plain_1e-4"], choices=sorted(RECIPES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--response-tokens", type=int, default=1)
    ap.add_argument("--attack", action="store_true", help="run the strong 3-epoch fine-tuning attack")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--utility-tokens", type=int, default=1024)
    ap.add_argument("--fp-cache", type=Path, default=None)
    ap.add_argument("--skip-base-attack", action="store_true", help="with --end-lambdas: attack only averaged models")
    ap.add_argument("--bound", type=float, default=1.10, help="perplexity bound (x base) for --attack-end best")
    ap.add_argument("--min-exact", type=float, default=0.9, help="exact match needed for --attack-end best")
    ap.add_argument("--attack-end", choices=("all", "best"), default="all",
                    help="attack every end-averaged model, or only the first lambda within --bound and --min-exact")
    ap.add_argument("--end-lambdas", type=float, nargs="*", default=[],
                    help="also evaluate theta <- lam*theta_base + (1-lam)*theta after injection (= avg_every='end'), "
                         "each from the same trained weights")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/oml_capacity_pilot.json")
    a = ap.parse_args()
    if a.report:
        print(table(a.report))
        return
    if a.plot:
        rd = ROOT / "bench/results"
        for p in capacity_plot(sorted(rd.glob(a.plot[0])), sorted(rd.glob(a.plot[1])), ROOT / "docs/img"):
            print("wrote", p)
        return
    torch.set_num_threads(a.threads)
    t0 = time.time()
    log = lambda m: print(f"[{time.time() - t0:6.0f}s] {m}", flush=True)  # noqa: E731
    model, tok = load_smollm2()
    heldout = tok.decode(tok.encode(read_text(HELDOUT), add_special_tokens=False)[:a.utility_tokens])
    base_ppl = perplexity(model, tok, heldout)
    gen = GenConfig(n=a.n, seed=a.seed, response_tokens=a.response_tokens)
    cache = a.fp_cache or Path(f"/tmp/fpc/fps_seed{a.seed}_r{a.response_tokens}.json")
    fps, gen_s = fingerprints(model, tok, gen, cache)
    log(f"base ppl {base_ppl:.3f}; {a.n} fingerprints ({gen_s:.0f}s)")
    res = json.loads(a.out.read_text()) if a.out.is_file() else {"runs": []}
    res |= {"base_perplexity": base_ppl, "strategies": ["perinucleus"], "gen": asdict(gen),
            "attack": asdict(STRONG_ATTACK) if a.attack else None, "utility_tokens": a.utility_tokens}
    common = {"strategy": "perinucleus", "n": a.n, "seed": a.seed, "response_tokens": a.response_tokens,
              "attack_variant": attack_label(asdict(STRONG_ATTACK)) if a.attack else ""}
    for name in a.configs:
        cfg = replace(RECIPES[name], seed=a.seed)
        model, tok = load_smollm2()
        base_state = {k: v.detach().clone() for k, v in model.named_parameters()} if a.end_lambdas else None
        model, ir = inject(model, tok, fps, cfg, progress=lambda e, l, x: log(f"  {name} epoch {e} loss {l:.3f} exact {x:.2f}"))
        t = time.perf_counter()
        after = check(model, tok, fps).summary()
        check_s = time.perf_counter() - t
        ppl = perplexity(model, tok, heldout)
        row = {**common, "recipe": name, "inject_variant": name, "inject": asdict(cfg),
               "inject_steps": ir.steps, "inject_epochs": ir.epochs_run, "inject_seconds": ir.seconds,
               "inject_seconds_per_fingerprint": ir.seconds / a.n, "inject_losses": ir.losses,
               "check_seconds": check_s, "check_keys_per_s": a.n / check_s,
               "exact_after_inject": after["exact_match"], "perplexity": ppl, "ppl_ratio": ppl / base_ppl}
        log(f"{name}: exact {after['exact_match']:.3f} ppl {ppl:.2f} (x{ppl / base_ppl:.3f}) steps {ir.steps} {ir.seconds:.0f}s")
        trained = {k: v.detach().clone() for k, v in model.named_parameters()} if a.end_lambdas else None
        attacked_one = False
        for lam in a.end_lambdas:
            with torch.no_grad():
                for k, p in model.named_parameters():
                    p.copy_(torch.lerp(trained[k], base_state[k], lam))
            ex = check(model, tok, fps).summary()["exact_match"]
            pp = perplexity(model, tok, heldout)
            sub = {**common, "recipe": f"{name}+end{lam:g}", "inject_variant": f"{name} + end avg {lam:g}",
                   "end_lambda": lam, "exact_after_inject": ex, "perplexity": pp, "ppl_ratio": pp / base_ppl,
                   "inject": asdict(replace(cfg, avg_lambda=lam, avg_every="end")), "inject_steps": ir.steps,
                   "inject_seconds": ir.seconds, "inject_seconds_per_fingerprint": ir.seconds / a.n}
            log(f"{name} end-avg {lam:g}: exact {ex:.3f} ppl {pp:.2f} (x{pp / base_ppl:.3f})")
            within = ex >= a.min_exact and pp / base_ppl <= a.bound
            if a.attack and (a.attack_end == "all" and pp / base_ppl <= a.bound + 0.02 or
                             a.attack_end == "best" and within and not attacked_one):
                attacked_one = True
                t = time.perf_counter()
                finetune_attack(model, tok, read_text(ATTACK_TEXT), STRONG_ATTACK)
                att = check(model, tok, fps).summary()
                sub |= {"attack": asdict(STRONG_ATTACK), "attack_seconds": time.perf_counter() - t,
                        "persistence": att["exact_match"]}
                log(f"{name} end-avg {lam:g}: persistence {att['exact_match']:.3f}")
            res["runs"].append(sub)
            atomic_write_json(a.out, res)
        if trained is not None:
            with torch.no_grad():
                for k, p in model.named_parameters():
                    p.copy_(trained[k])
        if a.attack and not (a.skip_base_attack and a.end_lambdas):
            t = time.perf_counter()
            finetune_attack(model, tok, read_text(ATTACK_TEXT), STRONG_ATTACK)
            att = check(model, tok, fps).summary()
            row |= {"attack": asdict(STRONG_ATTACK), "attack_seconds": time.perf_counter() - t,
                    "persistence": att["exact_match"], "persistence_prefix": att["prefix_match"]}
            log(f"{name}: persistence {att['exact_match']:.3f}")
        row["peak_rss_mb"] = peak_rss_mb()
        res["runs"].append(row)
        atomic_write_json(a.out, res)
        del model


if __name__ == "__main__":
    main()
