"""Functional fingerprints on SmolLM2-135M (CPU): injection, check, false-positive rate, persistence.

    nice -n 10 .venv/bin/python -m bench.oml_functional --n 16 --extra 112

Generates n + extra functional fingerprints; the first n are injected, the extra ones are never
trained and measure the false-positive rate (on the base model: all n + extra keys; on the
fingerprinted model: the extra keys, whose rules it never saw). Then held-out perplexity, the
prompt-wrapping templates, the fine-tuning attack, and the check again. The exact match of the
trained target string is reported beside the functional pass rate. Writes
bench/results/oml_functional.json after every stage.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ml.lm import load_smollm2
from ml.oml import functional as F
from ml.oml.attack import ATTACK_TEXT, WRAP_TEMPLATES, FinetuneAttack, finetune_attack
from ml.oml.check import check
from ml.oml.figure4 import peak_rss_mb, write_json
from ml.oml.inject import InjectConfig, inject
from ml.oml.utility import HELDOUT, perplexity, read_text

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16, help="functional fingerprints injected")
    ap.add_argument("--extra", type=int, default=112, help="never-injected fingerprints for the false-positive rate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", choices=F.TARGETS, default="pool", help="how trained answers are chosen")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--attack-epochs", type=int, default=3)
    ap.add_argument("--attack-lr", type=float, default=3e-4)
    ap.add_argument("--attack-blocks", type=int, default=0)
    ap.add_argument("--utility-tokens", type=int, default=1024)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/oml_functional.json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.time()

    def log(m: str) -> None:
        print(f"[{time.time() - t0:6.0f}s] {m}", flush=True)

    gcfg = F.FunctionalGenConfig(n=a.n + a.extra, seed=a.seed, target=a.target)
    icfg = InjectConfig(epochs=20, lr=1e-4, batch_size=16, target_exact=1.0)
    acfg = FinetuneAttack(epochs=a.attack_epochs, lr=a.attack_lr, block=64, batch_size=8, max_blocks=a.attack_blocks)
    res: dict = {"gen": asdict(gcfg), "inject": asdict(icfg), "attack": asdict(acfg), "n": a.n, "extra": a.extra,
                 "utility_tokens": a.utility_tokens}
    model, tok = load_smollm2()
    heldout = read_text(HELDOUT)
    if a.utility_tokens:
        heldout = tok.decode(tok.encode(heldout, add_special_tokens=False)[:a.utility_tokens])
    res["base_perplexity"] = perplexity(model, tok, heldout)
    t = time.perf_counter()
    if a.target == "pool":
        ffps = F.generate(model, tok, gcfg)
    else:  # the extra keys are never trained: only their rules matter, so skip the slow sampling for them
        ffps = F.generate(model, tok, F.FunctionalGenConfig(n=a.n, seed=a.seed, target=a.target))
        ffps += F.generate(model, tok, F.FunctionalGenConfig(n=a.extra, seed=a.seed + 1, target="pool")) if a.extra else []
    res["generate_seconds"] = time.perf_counter() - t
    train, held = ffps[:a.n], ffps[a.n:]
    res["commitment_root"] = F.commitment_root(train)
    res["examples"] = [{"key": f.key, "rule": f.rule.descriptor(), "target": f.target} for f in train[:3]]
    log(f"generated {len(ffps)} in {res['generate_seconds']:.0f}s; base ppl {res['base_perplexity']:.2f}")
    t = time.perf_counter()
    base = F.check(model, tok, ffps)
    res["base_check_seconds"] = time.perf_counter() - t
    res["base_check"] = base.summary()
    res["false_positive_rate_base"] = base.pass_rate
    res["base_answers"] = base.answers[:3]
    log(f"base model: {sum(base.passed)}/{base.n} keys pass (FPR {base.pass_rate:.4f}) in {res['base_check_seconds']:.0f}s")
    write_json(a.out, res)

    model, ir = inject(model, tok, F.training_pairs(train), icfg,
                       progress=lambda e, l, x: log(f"  inject epoch {e} loss {l:.3f} train-exact {x:.2f}"))
    res["inject_epochs"], res["inject_steps"], res["inject_seconds"] = ir.epochs_run, ir.steps, ir.seconds
    after = F.check(model, tok, train)
    res["check_after_inject"] = after.summary()
    res["exact_target_after_inject"] = check(model, tok, F.training_pairs(train)).summary()
    if held:
        other = F.check(model, tok, held)
        res["false_positive_rate_fingerprinted_other_rules"] = other.pass_rate
        res["check_other_rules"] = other.summary()
    res["perplexity"] = perplexity(model, tok, heldout)
    res["wrap"] = {name: F.check(model, tok, train, template=tpl).summary() for name, tpl in WRAP_TEMPLATES.items()}
    log(f"after inject: pass {after.pass_rate:.2f} ppl {res['perplexity']:.2f} inject {ir.seconds:.0f}s")
    write_json(a.out, res)

    t = time.perf_counter()
    finetune_attack(model, tok, read_text(ATTACK_TEXT), acfg)
    res["attack_seconds"] = time.perf_counter() - t
    attacked = F.check(model, tok, train)
    res["check_after_finetune_attack"] = attacked.summary()
    res["exact_target_after_finetune_attack"] = check(model, tok, F.training_pairs(train)).summary()
    res["attacked_answers"] = [{"target": f.target, "got": g} for f, g in zip(train[:4], attacked.answers)]
    res["peak_rss_mb"] = peak_rss_mb()
    write_json(a.out, res)
    log(f"after attack: pass {attacked.pass_rate:.2f} (exact target "
        f"{res['exact_target_after_finetune_attack']['exact_match']:.2f}) attack {res['attack_seconds']:.0f}s")


if __name__ == "__main__":
    main()
