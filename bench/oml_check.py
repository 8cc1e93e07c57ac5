"""`loyal fingerprint check` on SmolLM2-135M: wall time with start-up, the batched teacher-forced
pass against a plain batched forward over the same tokens, and peak memory (check and inject).

    nice -n 10 .venv/bin/python -m bench.oml_check            # ~2-4 min on an idle 2-core box
    .venv/bin/python -m bench.oml_check --skip-inject          # check only

Measured, in one run (writes bench/results/oml_check.json):

- `cli_check_1_key_s` / `cli_check_n_keys_s`: wall time of the real command (`python -m agents.cli
  fingerprint check`, a fresh process: imports, model load from the float32 cache, tokenizer,
  check) with one key and with `--n` keys; the first is the fixed start-up.
- `in_process` uses the plain-torch Llama the command loads (`ml.llama`), `in_process_transformers`
  transformers' `LlamaForCausalLM`; `same_matches_as_transformers`: both give the same matched-token counts.
- `teacher_forced_s` (float32) and `screened_s` (bf16 screen + float32 recheck of close calls, what
  the command does where bf16 is native) vs `plain_forward_s`: in one process, `check.check` over the `--n` keys against
  `model(input_ids, attention_mask)` over exactly the same token sequences in the same length-sorted
  batches (full logits, what anyone would write); `ratio` is the first over the second (best of
  `--repeat`). `cpu_s` figures are the process CPU time of the same spans (robust to a loaded box).
- `greedy_agrees`: over the first `--greedy` keys, half answered with the model's own greedy
  continuation and half with their committed response, the check's matched-token counts (hence
  exact flags) equal `decode.greedy`'s.
- `peak_rss_mb` of the check process, and of `loyal fingerprint inject` at `--n` keys
  (`--steps` optimizer steps, with model averaging, which keeps the base weights).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cli(args: list[str]) -> dict:
    """Run `loyal ...` in a fresh process: its wall seconds, CPU seconds and peak RSS (`wait4`)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "agents.cli", *args], cwd=ROOT, stdout=out, stderr=err,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"loyal {' '.join(args)} failed: {err.read().strip()[-500:]}")
        return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024,
                "stdout": out.read()}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _in_process(fp_file: Path, repeat: int, n_greedy: int, batch_size: int, loader: str) -> dict:
    """The in-process figures with SmolLM2 loaded by `loader`: "ml.llama" (the plain-torch decoder the
    command uses) or "transformers" (`LlamaForCausalLM`)."""
    import torch

    from ml.lm import load_for_inference, load_smollm2
    from ml.oml import decode
    from ml.oml import check as C
    from ml.oml.check import check, encode_pair, teacher_forced_matches
    from ml.oml.fingerprints import load

    model, tok = load_for_inference("smollm2") if loader == "ml.llama" else load_smollm2()
    assert type(model).__module__.startswith("ml.llama" if loader == "ml.llama" else "transformers"), type(model)
    fps = load(fp_file)
    pairs = [encode_pair(tok, f.key, f.response) for f in fps]
    seqs = sorted((p + r[:-1] for p, r in pairs), key=len)  # the very tokens check feeds
    n_tokens = sum(map(len, seqs))

    @torch.no_grad()
    def plain() -> None:
        for s in range(0, len(seqs), batch_size):
            rows = seqs[s:s + batch_size]
            width = max(map(len, rows))
            ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for b, q in enumerate(rows):
                ids[b, :len(q)] = torch.tensor(q)
                mask[b, :len(q)] = 1
            model(input_ids=ids, attention_mask=mask).logits.argmax(-1)

    runs = {"plain_forward": plain,
            "teacher_forced": lambda: check(model, tok, fps, batch_size=batch_size, screen=False),
            "screened": lambda: check(model, tok, fps, batch_size=batch_size, screen=True)}
    best = {name: (1e9, 0.0) for name in runs}
    res = {}
    for _ in range(repeat):  # interleaved, so a load spike hits all alike
        for name, fn in runs.items():
            t, c = time.perf_counter(), _cpu()
            res[name] = fn()
            wall, cpu = time.perf_counter() - t, _cpu() - c
            if wall < best[name][0]:
                best[name] = (wall, cpu)
    _, m16 = C._matches(model, pairs, tok.pad_token_id, batch_size, low_precision=True)
    _, m32 = C._matches(model, pairs, tok.pad_token_id, batch_size, low_precision=False)
    out = {"loader": loader, "tokens": n_tokens, "batch_size": batch_size, "repeat": repeat,
           "teacher_forced_s": best["teacher_forced"][0], "teacher_forced_cpu_s": best["teacher_forced"][1],
           "screened_s": best["screened"][0], "screened_cpu_s": best["screened"][1],
           "plain_forward_s": best["plain_forward"][0], "plain_forward_cpu_s": best["plain_forward"][1],
           "ratio": best["teacher_forced"][0] / best["plain_forward"][0],
           "ratio_cpu": best["teacher_forced"][1] / best["plain_forward"][1],
           "screened_ratio": best["screened"][0] / best["plain_forward"][0],
           "screen_margin": C.SCREEN_MARGIN, "screen_rechecked_keys": sum(m < C.SCREEN_MARGIN for m in m16),
           "screen_max_gap_change": max(abs(a - b) for a, b in zip(m16, m32)),
           "screened_equals_float32": res["screened"].matched_tokens == res["teacher_forced"].matched_tokens,
           "exact_match": res["teacher_forced"].exact, "prefix_match": res["teacher_forced"].prefix,
           "matched_tokens": res["teacher_forced"].matched_tokens}
    if n_greedy:
        # half the keys answered with the model's own greedy continuation (exact by construction),
        # half with their committed response (mismatching on the base model): the check's flags and
        # matched-token counts must equal greedy decoding's on both kinds
        sub = pairs[:n_greedy]
        n_r = max(len(r) for _, r in sub)
        said = decode.greedy(model, [p for p, _ in sub], n_r, tok.pad_token_id)
        mixed = [(p, s[:len(r)]) if i % 2 == 0 else (p, r) for i, ((p, r), s) in enumerate(zip(sub, said))]
        got = teacher_forced_matches(model, mixed, tok.pad_token_id, batch_size)
        want = [next((j for j, (a, b) in enumerate(zip(s, r)) if a != b), len(r)) for s, (_, r) in zip(said, mixed)]
        out["greedy_keys"] = len(sub)
        out["greedy_exact_keys"] = sum(w == len(r) for w, (_, r) in zip(want, mixed))
        out["greedy_agrees"] = got == want
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--strategy", default="perinucleus")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--greedy", type=int, default=32, help="keys checked against real greedy decoding")
    ap.add_argument("--steps", type=int, default=2, help="inject: optimizer steps for the peak-RSS run")
    ap.add_argument("--skip-inject", action="store_true")
    ap.add_argument("--fingerprints", type=Path, help="an existing fingerprint file (default: generate one)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/oml_check.json")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="oml-check-"))
    fp_n = a.fingerprints or tmp / f"fp{a.n}.jsonl"
    if not a.fingerprints:
        _cli(["fingerprint", "generate", "--strategy", a.strategy, "--n", str(a.n), "--out", str(fp_n)])
    lines = fp_n.read_text().splitlines()
    fp_1 = tmp / "fp1.jsonl"
    fp_1.write_text(lines[0] + "\n")
    one = _cli(["fingerprint", "check", "-f", str(fp_1), "--json"])
    many = _cli(["fingerprint", "check", "-f", str(fp_n), "--json"])
    res = {"model": "SmolLM2-135M-Instruct f32", "device": "cpu", "torch_threads": None, "n_keys": len(lines),
           "strategy": a.strategy, "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
           "load_avg_at_start": os.getloadavg()[0],
           "cli_check_1_key_s": one["wall_s"], "cli_check_1_key_cpu_s": one["cpu_s"],
           "cli_check_n_keys_s": many["wall_s"], "cli_check_n_keys_cpu_s": many["cpu_s"],
           "cli_check_peak_rss_mb": many["peak_rss_mb"], "cli_check_result": json.loads(many["stdout"])}
    import torch

    res["torch_threads"] = torch.get_num_threads()
    res["in_process"] = _in_process(fp_n, a.repeat, a.greedy, a.batch_size, "ml.llama")
    res["in_process_transformers"] = _in_process(fp_n, a.repeat, a.greedy, a.batch_size, "transformers")
    res["same_matches_as_transformers"] = (res["in_process"].pop("matched_tokens")
                                           == res["in_process_transformers"].pop("matched_tokens"))
    if not a.skip_inject:
        out_dir = tmp / "injected"
        inj = _cli(["fingerprint", "inject", "-f", str(fp_n), "--out-dir", str(out_dir), "--steps", str(a.steps),
                    "--avg-lambda", "0.1", "--json"])
        res["inject"] = {"steps": a.steps, "avg_lambda": 0.1, "wall_s": inj["wall_s"], "peak_rss_mb": inj["peak_rss_mb"]}
    res["load_avg_at_end"] = os.getloadavg()[0]
    a.out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
