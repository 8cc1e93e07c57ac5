"""`loyal devnet --deploy-only --explorer` (what `make demo` runs, with the scenario): the chain, the
index and the pages keep running, and the URL it prints serves the overview of that chain."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def test_devnet_prints_a_working_explorer_url(tmp_path):
    env = {**os.environ, "LOYAL_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "agents.cli", "devnet", "--deploy-only", "--explorer"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline, url = time.monotonic() + 120, None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "devnet exited before printing the explorer URL"
            m = re.match(r"explorer at (http://\S+)/", line)
            url = m.group(1) if m else None
        assert url, "no explorer URL printed"
        page = httpx.get(url + "/", timeout=30).text
        assert "DinTasks" in page and "the index is up to date" in page
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
