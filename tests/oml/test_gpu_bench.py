"""bench/gpu.py: one clear line and exit 0 without CUDA; the same sweep code runs on the CPU."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import gpu

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_without_cuda_says_so_in_one_line_and_exits_0(tmp_path):
    out = tmp_path / "gpu.json"
    p = subprocess.run([sys.executable, "-m", "bench.gpu", "--out", str(out)], cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 0
    assert p.stdout.strip().count("\n") == 0 and p.stdout.startswith("no CUDA device")
    assert not out.exists()


def test_sweep_code_runs_on_the_cpu_with_a_tiny_model(tmp_path):
    out = tmp_path / "gpu.json"
    res = gpu.run("cpu", "tiny", [4], epochs=2, batch_size=4, out=out)
    assert res["device"] == "cpu" and not res["bf16_autocast"]
    [row] = json.loads(out.read_text())["runs"]
    assert row["n"] == 4 and row["steps"] >= 1 and 0.0 <= row["exact_match"] <= 1.0
    assert row["inject_fingerprints_per_s"] > 0 and row["check_keys_per_s"] > 0 and row["perplexity"] > 1
