"""`loyal oml demo --in-process` runs the whole story on its own Anvil and ends with the cheater (and, with
--leak, the host whose copy leaked) slashed. The tiny model keeps it fast; SmolLM2 is the default."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_runner import invoke

ROOT = Path(__file__).resolve().parents[2]


def test_oml_demo_slashes_the_cheater_and_the_leaker_only(tmp_path, monkeypatch):
    monkeypatch.setenv("LOYAL_HOME", str(tmp_path))
    result = invoke(["oml", "demo", "--tiny", "--fingerprints", "2", "--leak", "--in-process"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "claim 1 confirmed" in text and "claim 2 confirmed" in text
    assert "to the cheating host" in text and "-> claim 1 filed" in text
    assert "-> leak claim 2 against that host" in text
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 5}
    assert rows["cheater"].split("│")[5].strip() == "0"      # stake after
    assert rows["leaker"].split("│")[5].strip() == "0"
    assert rows["honest"].split("│")[5].strip() == "500"


@pytest.mark.slow
def test_oml_demo_as_processes_slashes_the_cheater_and_the_leaker_only(tmp_path):
    """The default demo: every role its own `loyal oml ...` process, plus a rogue endpoint serving the
    leaker's decrypted copy (~2-3 min on a loaded 2-core box)."""
    env = {**os.environ, "LOYAL_HOME": str(tmp_path), "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "agents.cli", "oml", "demo", "--tiny", "--fingerprints", "1", "--leak"],
                       env=env,
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    text = " ".join(r.stdout.split())
    assert "claim 1 filed against the cheating host" in text
    assert "leak claim 2 filed against the leaker" in text
    assert "got their content keys wrapped to their own keys" in text
    rows = {line.split("│")[1].strip(): line for line in r.stdout.splitlines() if line.count("│") >= 5}
    assert rows["cheater"].split("│")[5].strip() == "0"
    assert rows["leaker"].split("│")[5].strip() == "0"
    assert rows["honest"].split("│")[5].strip() == "500"
    for v in ("verifier 1", "verifier 2", "verifier 3"):  # every verifier voted before the finalize: none penalised
        assert rows[v].split("│")[5].strip() == "100"
