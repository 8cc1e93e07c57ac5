"""Peak memory of fingerprint injection and of building per-host copies, before and after keeping
no second full model copy (SmolLM2-135M, CPU).

    nice -n 10 .venv/bin/python -m bench.oml_memory                 # ~5-10 min on an idle 2-core box
    .venv/bin/python -m bench.oml_memory --parts inject             # injection only

Each measurement runs in a fresh process; `peak_rss_mb` is its ru_maxrss (resident memory,
including file pages it mapped), `peak_anon_mb` the largest RssAnon sampled every 20 ms (memory
only this process holds: what a second model copy costs).

- `inject`: `inject` of `--n` fingerprints, `--steps` optimizer steps, model averaging on
  (lambda 0.1): base cloned (`before`, what main did) vs mapped from the checkpoint (`after`).
- `copies`: `copies.build` of SmolLM2 copies (`--hosts` hosts, 1 fingerprint each): main's code
  (`--before-tree`, default /work/main: base state dict cloned, every copy's bytes in memory) vs
  this tree (base re-read from the file, copies on disk).

Writes bench/results/oml_memory.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r'''
import json, sys, threading, time, resource
peak = [0]
def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
def sample():
    while True:
        peak[0] = max(peak[0], anon())
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
import torch
torch.set_num_threads(int(sys.argv[2]))
part, out = sys.argv[1], {}
t = time.perf_counter()
if part.startswith("inject"):
    from ml.lm import load_smollm2
    from ml.oml.fingerprints import load
    import ml.oml.inject as I
    if part == "inject-clone":
        I.base_weights = lambda m: {n: p.detach().clone() for n, p in m.named_parameters()}
    model, tok = load_smollm2()
    fps = load(sys.argv[3])
    model, r = I.inject(model, tok, fps, I.InjectConfig(steps=int(sys.argv[4]), batch_size=16, avg_lambda=0.1))
    out["steps"] = r.steps
else:
    from pathlib import Path
    import tempfile
    from ml.oml import copies as mc
    spec = mc.CopySpec(base="smollm2", hosts=int(sys.argv[3]), per_host=1, epochs=40, lr=3e-4)
    built = mc.build(spec, None, say=lambda s: print(s, file=sys.stderr, flush=True))
    out["stats"] = built.stats
out["seconds"] = time.perf_counter() - t
out["peak_anon_mb"] = max(peak[0], anon())
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
'''


def _probe(tree: Path, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "LOYAL_HOME": str(ROOT / ".loyal")}
    p = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tree, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-1500:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", nargs="+", default=["inject", "copies"])
    ap.add_argument("--fingerprints", type=Path, help="fingerprint file for the inject part (default: generate --n)")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--hosts", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--before-tree", type=Path, default=Path("/work/main"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/oml_memory.json")
    a = ap.parse_args()
    res = json.loads(a.out.read_text()) if a.out.is_file() else {}
    res.update({"model": "SmolLM2-135M-Instruct f32", "device": "cpu", "threads": a.threads})
    th = str(a.threads)
    if "inject" in a.parts:
        if not a.fingerprints:
            import tempfile

            a.fingerprints = Path(tempfile.mkdtemp(prefix="oml-memory-")) / "fp.jsonl"
            subprocess.run([sys.executable, "-m", "agents.cli", "fingerprint", "generate", "--n", str(a.n),
                            "--out", str(a.fingerprints)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                           check=True, capture_output=True)
        n = sum(1 for line in a.fingerprints.read_text().splitlines() if line.strip())
        res["inject"] = {"n": n, "steps": a.steps, "avg_lambda": 0.1,
                         "before_base_cloned": _probe(ROOT, "inject-clone", th, str(a.fingerprints), str(a.steps)),
                         "after_base_mapped": _probe(ROOT, "inject", th, str(a.fingerprints), str(a.steps))}
        print(json.dumps(res["inject"], indent=2), flush=True)
    if "copies" in a.parts:
        res["copies"] = {"hosts": a.hosts, "per_host": 1,
                         "before_main": _probe(a.before_tree, "copies", th, str(a.hosts)),
                         "after": _probe(ROOT, "copies", th, str(a.hosts))}
        print(json.dumps(res["copies"], indent=2), flush=True)
    a.out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
