"""Lineage threshold on SmolLM2-135M: chance-match rate p0 on the base model, the m it implies, and
whether a host's copy survives the strong fine-tuning attack with >= m of its keys (CPU, ~15 min).

Steps: generate `n` perinucleus fingerprints (one host's subset) with the base model; check the
base model on them (p0, Clopper-Pearson upper bound at 95 %); m = smallest m with
P[Bin(n, p0_upper) >= m] <= bound; inject the subset into a copy; run the strong fine-tuning attack
(3 epochs, lr 3e-4, `ml/oml/attack.py`); count the keys the attacked copy still answers exactly;
control: the base model under the same attack (never fingerprinted) must stay below m.
Writes bench/results/oml_lineage_fpr.json after every step.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

from common.files import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64, help="fingerprints in the host's subset")
    ap.add_argument("--bound", type=float, default=1e-6, help="target false-positive rate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-control", action="store_true", help="skip the attacked-base control")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/oml_lineage_fpr.json")
    a = ap.parse_args()

    from ml.lm import load_smollm2
    from ml.oml.attack import ATTACK_TEXT, FinetuneAttack, finetune_attack
    from ml.oml.check import check
    from ml.oml.generate import GenConfig, generate
    from ml.oml.inject import InjectConfig, inject
    from ml.oml.lineage import binomial_tail, derive
    from ml.oml.utility import read_text

    t0 = time.perf_counter()
    res: dict = {"model": "SmolLM2-135M-Instruct", "n": a.n, "bound": a.bound, "seed": a.seed, "steps": {}}

    def step(name: str, t: float, **kw) -> None:
        res["steps"][name] = {"seconds": round(time.perf_counter() - t, 1), **kw}
        res["wall_seconds"] = round(time.perf_counter() - t0, 1)
        atomic_write_json(a.out, res)
        print(f"[{res['wall_seconds']:7.1f}s] {name}: {kw}", flush=True)

    model, tok = load_smollm2()
    base_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    t = time.perf_counter()
    gen = GenConfig(strategy="perinucleus", n=a.n, seed=a.seed)
    fps = generate(model, tok, gen)
    res["gen"] = asdict(gen)
    step("generate", t, fingerprints=len(fps))

    t = time.perf_counter()
    base = check(model, tok, fps)
    base_matches = sum(base.exact_flags)
    thr = derive(base_matches, len(fps), a.n, a.bound)
    res["threshold"] = thr.as_dict()
    step("base_check", t, base_matches=base_matches, base_prefix=base.prefix, m=thr.m, p0_upper=thr.p0_upper)

    t = time.perf_counter()
    icfg = InjectConfig(epochs=12, lr=1e-4, batch_size=16, seed=a.seed)
    model, ir = inject(model, tok, fps, icfg)
    own = check(model, tok, fps)
    res["inject"] = asdict(icfg)
    step("inject", t, steps=ir.steps, matches=sum(own.exact_flags))

    t = time.perf_counter()
    acfg = FinetuneAttack(epochs=3, lr=3e-4)
    text = read_text(ATTACK_TEXT)
    finetune_attack(model, tok, text, acfg)
    after = check(model, tok, fps)
    k = sum(after.exact_flags)
    res["attack"] = asdict(acfg)
    res["traced"] = k >= thr.m
    step("attack", t, matches=k, m=thr.m, traced=k >= thr.m,
         fpr_of_k=binomial_tail(k, a.n, thr.p0_upper))

    if not a.no_control:
        t = time.perf_counter()
        model.load_state_dict(base_state)
        finetune_attack(model, tok, text, acfg)
        ctrl = check(model, tok, fps)
        kc = sum(ctrl.exact_flags)
        res["control_below_m"] = kc < thr.m
        step("control_attacked_base", t, matches=kc, m=thr.m, below_m=kc < thr.m)


if __name__ == "__main__":
    main()
