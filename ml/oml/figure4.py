"""The paper's Figure 4 at CPU scale: utility and persistence vs number of fingerprints, per strategy.

For each strategy the largest set is generated once and smaller sets are its prefixes. For each
(strategy, n): fresh base model, inject, check, perplexity on held-out text, prompt-wrapping
checks, fine-tuning attack, check again. Results are appended to a JSON file after every run, so a
partial sweep is still usable.
"""
from __future__ import annotations

import json
import resource
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from common.files import atomic_write_json
from ml.oml.attack import ATTACK_TEXT, WRAP_TEMPLATES, FinetuneAttack, finetune_attack
from ml.oml.check import check
from ml.oml.fingerprints import STRATEGIES, Fingerprint
from ml.oml.generate import GenConfig, generate
from ml.oml.inject import InjectConfig, inject
from ml.oml.utility import HELDOUT, key_perplexity, perplexity, read_text


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_json(path: Path, obj: dict) -> None:
    """Write results atomically, so a sweep killed mid-write leaves the previous complete file."""
    atomic_write_json(path, obj)


def cached_generate(model, tok, cfg: GenConfig, cache_dir: Path | None) -> tuple[list[Fingerprint], float]:
    """(fingerprints, generation seconds): `generate`, or a cached set made with the same settings
    (and at least `cfg.n` of them; smaller sets are prefixes, as in the sweep)."""
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("n", "batch_size")}
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{cfg.strategy}_seed{cfg.seed}_k{cfg.key_tokens}_r{cfg.response_tokens}.json"
        if path.is_file():
            c = json.loads(path.read_text())
            if c["gen"] == settings and len(c["fps"]) >= cfg.n:
                return [Fingerprint(**f) for f in c["fps"][:cfg.n]], c["seconds"] * cfg.n / len(c["fps"])
    t = time.perf_counter()
    fps = generate(model, tok, cfg)
    seconds = time.perf_counter() - t
    if path is not None:
        atomic_write_json(path, {"gen": settings, "fps": [asdict(f) for f in fps], "seconds": seconds})
    return fps, seconds


def run(load_model: Callable, sizes: list[int], strategies: list[str], out: Path, *, gen_cfg: GenConfig = GenConfig(),
        inject_cfg: InjectConfig = InjectConfig(), attack_cfg: FinetuneAttack = FinetuneAttack(epochs=1),
        utility_tokens: int = 0, log: Callable[[str], None] = print, fp_cache: Path | None = None) -> dict:
    for s in strategies:
        if s not in STRATEGIES:
            raise ValueError(f"unknown strategy {s!r}")
    if not sizes or min(sizes) < 1:
        raise ValueError("sizes must be positive")
    sizes = sorted(sizes)
    heldout, attack_text = read_text(HELDOUT), read_text(ATTACK_TEXT)
    if utility_tokens:  # a fixed prefix of the held-out text, to bound CPU time
        _, tok0 = load_model()
        heldout = tok0.decode(tok0.encode(heldout, add_special_tokens=False)[:utility_tokens])
    res: dict = {"sizes": sizes, "strategies": strategies, "gen": asdict(gen_cfg), "inject": asdict(inject_cfg),
                 "attack": asdict(attack_cfg), "utility_tokens": utility_tokens,
                 "runs": [], "keys": {}}
    base, tok = load_model()
    t = time.perf_counter()
    res["base_perplexity"] = perplexity(base, tok, heldout)
    log(f"base perplexity {res['base_perplexity']:.3f} ({time.perf_counter() - t:.0f}s)")
    fps_all = {}
    for s in strategies:
        fps_all[s], gen_s = cached_generate(base, tok, GenConfig(**{**asdict(gen_cfg), "strategy": s, "n": sizes[-1]}),
                                            fp_cache)
        res["keys"][s] = {"key_perplexity": key_perplexity(base, tok, [f.key for f in fps_all[s]]),
                          "generate_seconds": gen_s,
                          "examples": [asdict(f) for f in fps_all[s][:3]]}
        log(f"{s}: generated {sizes[-1]} in {res['keys'][s]['generate_seconds']:.0f}s, "
            f"key ppl {res['keys'][s]['key_perplexity']:.1f}")
        write_json(out, res)
    del base
    for n in sizes:
        for s in strategies:
            fps = fps_all[s][:n]
            model, tok = load_model()
            model, ir = inject(model, tok, fps, inject_cfg,
                               progress=lambda e, l, x: log(f"  {s} n={n} epoch {e} loss {l:.3f} train-exact {x:.2f}"))
            t = time.perf_counter()
            after = check(model, tok, fps).summary()
            check_s = time.perf_counter() - t
            ppl = perplexity(model, tok, heldout)
            wraps = {name: check(model, tok, fps, template=tpl).summary() for name, tpl in WRAP_TEMPLATES.items()}
            t = time.perf_counter()
            finetune_attack(model, tok, attack_text, attack_cfg)
            attack_s = time.perf_counter() - t
            attacked = check(model, tok, fps).summary()
            row = {"strategy": s, "n": n, "seed": gen_cfg.seed, "inject_epochs": ir.epochs_run, "inject_steps": ir.steps,
                   "inject_losses": ir.losses, "train_exact": ir.train_exact,
                   "inject_seconds": ir.seconds, "inject_seconds_per_fingerprint": ir.seconds / n,
                   "check_after_inject": after, "check_seconds": check_s, "check_keys_per_s": n / check_s,
                   "perplexity": ppl, "perplexity_increase": ppl - res["base_perplexity"],
                   "wrap": wraps, "attack_seconds": attack_s, "check_after_finetune_attack": attacked,
                   "persistence": attacked["exact_match"], "perplexity_ratio": ppl / res["base_perplexity"],
                   "peak_rss_mb": peak_rss_mb()}
            res["runs"].append(row)
            write_json(out, res)
            log(f"{s} n={n}: exact {after['exact_match']:.2f} ppl {ppl:.3f} persistence {attacked['exact_match']:.2f} "
                f"(prefix {attacked['prefix_match']:.2f}) inject {ir.seconds:.0f}s")
            del model
    return res


def attack_label(attack: dict | None) -> str:
    """Short name of a fine-tuning attack setting, e.g. '1 ep, 16 blocks, lr 0.0001'."""
    if not attack:
        return ""
    blocks = f"{attack['max_blocks']} blocks" if attack.get("max_blocks") else "all text"
    return f"{attack['epochs']} ep, {blocks}, lr {attack['lr']:g}"


def inject_label(inject: dict | None) -> str:
    """'' for plain SFT, else the anti-forgetting settings, e.g. 'mix 0.25 + avg 0.01'."""
    if not inject:
        return ""
    parts = []
    if inject.get("mix_ratio"):
        parts.append(f"mix {inject['mix_ratio']:g}")
    if inject.get("avg_lambda"):
        parts.append(f"avg {inject['avg_lambda']:g}")
    if inject.get("lora_rank"):
        parts.append(f"LoRA r{inject['lora_rank']}")
    label = " + ".join(parts)
    if inject.get("steps"):
        label = f"{label}, {inject['steps']} steps" if label else f"{inject['steps']} steps"
    return label


def merge(results: list[dict]) -> dict:
    """Combine sweeps into one: every run is labelled with its file's injection and attack settings
    and its seed; runs with the same (strategy, n, injection, attack, seed) are de-duplicated,
    later files win."""
    if not results:
        raise ValueError("no results to merge")
    out = {**results[0], "runs": [], "keys": {}, "sources": len(results)}
    strategies: list[str] = []
    runs: dict[tuple, dict] = {}
    for r in results:
        for k in ("runs", "strategies", "base_perplexity"):
            if k not in r:
                raise ValueError(f"results file lacks {k!r}")
        strategies += [s for s in r["strategies"] if s not in strategies]
        for x in r["runs"]:
            x = {"inject_variant": inject_label(r.get("inject")), "attack_variant": attack_label(r.get("attack")),
                 "seed": r.get("gen", {}).get("seed", 0), **x}
            runs[(x["strategy"], x["n"], x["inject_variant"], x["attack_variant"], x["seed"])] = x
        for s, v in r.get("keys", {}).items():
            out["keys"].setdefault(s, v)
    out["strategies"] = strategies
    out["runs"] = sorted(runs.values(), key=lambda x: (strategies.index(x["strategy"]), x["inject_variant"],
                                                       x["attack_variant"], x["n"], x["seed"]))
    return out


def summarize(res: dict) -> list[dict]:
    """One row per (strategy, n, injection, attack): seeds, mean and min-max of perplexity and persistence."""
    groups: dict[tuple, list[dict]] = {}
    for r in res.get("runs", []):
        groups.setdefault((r["strategy"], r["n"], r.get("inject_variant", ""), r.get("attack_variant", "")), []).append(r)
    rows = []
    for (s, n, inj, att), rs in groups.items():
        row = {"strategy": s, "n": n, "inject_variant": inj, "attack_variant": att,
               "seeds": sorted(r.get("seed", 0) for r in rs)}
        for k in ("perplexity", "persistence"):
            v = [r[k] for r in rs]
            row[k] = statistics.mean(v)
            row[f"{k}_range"] = [min(v), max(v)]
        rows.append(row)
    return rows


def plot(res: dict, out_dir: Path, prefix: str = "oml-figure4", title: str = "SmolLM2-135M",
         color_by: str = "strategy") -> list[Path]:
    """Two PNGs in the style of the paper's Figure 4; returns their paths.

    Utility: one line per (strategy, injection setting). Persistence: one line per (strategy,
    injection setting, attack setting); points of different attacks are never joined. A point is
    the mean over seeds, its bar the min-max range.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = res.get("runs", [])
    if not runs:
        raise ValueError("results hold no completed runs to plot")
    colors = {s: f"C{i}" for i, s in enumerate(res["strategies"])}
    attacks = sorted({r.get("attack_variant", "") for r in runs})
    styles = ["-", "--", ":", "-."]
    paths = []
    for name, ylabel in (("utility", "held-out perplexity (lower is better)"),
                         ("persistence", "exact match after fine-tuning attack")):
        fig, ax = plt.subplots(figsize=(9.6, 4.4))
        # series -> n -> seed -> value (a run's perplexity does not depend on the attack: one per seed)
        series: dict[tuple, dict[int, dict[int, float]]] = {}
        for r in runs:
            inj, att = r.get("inject_variant", ""), r.get("attack_variant", "")
            key, val = ((r["strategy"], inj, ""), r["perplexity"]) if name == "utility" else \
                ((r["strategy"], inj, att), r["persistence"])
            series.setdefault(key, {}).setdefault(r["n"], {})[r.get("seed", 0)] = val
        for (s, inj, att), pts in series.items():
            xs = sorted(pts)
            ys = [statistics.mean(pts[x].values()) for x in xs]
            lo = [y - min(pts[x].values()) for x, y in zip(xs, ys)]
            hi = [max(pts[x].values()) - y for x, y in zip(xs, ys)]
            label = s + (f" ({inj})" if inj else "") + (f" [{att}]" if att and len(attacks) > 1 else "")
            i = attacks.index(att) if name == "persistence" else 0
            if color_by == "variant":
                colors.setdefault(("variant", inj), f"C{sum(1 for k in colors if isinstance(k, tuple))}")
            ax.errorbar(xs, ys, yerr=[lo, hi], capsize=3, marker="s" if inj else "o^vD"[i % 4],
                        color=colors[("variant", inj)] if color_by == "variant" else colors.get(s),
                        ls=":" if inj else styles[i % len(styles)], mfc="none" if inj else None, ms=7, label=label)
        if name == "utility":
            ax.axhline(res["base_perplexity"], color="grey", ls="--", lw=1, label="base model")
            ax.axhline(1.1 * res["base_perplexity"], color="grey", ls=":", lw=1, label="base + 10%")
            ax.set_yscale("log")  # a broken model's perplexity is orders of magnitude above the rest
        else:
            ax.axhline(0.8, color="grey", ls=":", lw=1, label="80% exact match")
            ax.set_ylim(-0.02, 1.02)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("number of fingerprints")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}: {name} vs #fingerprints")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        fig.tight_layout()
        p = out_dir / f"{prefix}-{name}.png"
        fig.savefig(p, dpi=120)
        fig.savefig(p.with_suffix(".svg"))
        plt.close(fig)
        paths.append(p)
    return paths
