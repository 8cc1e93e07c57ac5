"""`loyal dao datacenter` as its own OS process: attestations, semi-random challenges answered, the
OTK drip drawn and consumed to the run's budget, resumed after SIGKILLs with nothing lost and
nothing repeated (every issued key consumed exactly once, the workload chain exactly the one an
uninterrupted run computes)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.core.events import fetch_events
from agents.core.signers import save_keystore
from agents.core.views import read
from agents.dao.datacenter import cursor_path, run_secret, sha256_workload
from agents.dao.governance import Dao
from tests.dao.test_dao import _approved_hardware

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "dc password"
BUDGET, RATION = 1_500, 100


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agents.cli", *args], cwd=REPO, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _done(path: Path) -> int:
    try:
        return json.loads(path.read_text())["state"].get("done", 0)
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


@pytest.mark.slow
def test_datacenter_daemon_resumes_after_sigkill_exactly_once(chain, anvil, tmp_path):
    dao = Dao(chain)
    dao.advance_past(dao.now())
    dc, model_id = _approved_hardware(chain, dao, budget=5_000, credits=20_000)
    op_ks = save_keystore(dc.operator, tmp_path / "operator.json", PASSWORD, scrypt_n=2)
    hw_ks = save_keystore(dc.hardware_key, tmp_path / "unit.json", PASSWORD, scrypt_n=2)
    home = tmp_path / "dc-home"
    env = {**os.environ, "LOYAL_KEY_PASSWORD": PASSWORD, "LOYAL_HOME": str(home), "PYTHONPATH": str(REPO)}
    env.pop("LOYAL_KEYSTORE", None)
    args = ["dao", "datacenter", "--hardware", str(dc.hardware_id), "--measurement", "0x" + dc.measurement.hex(),
            "--attestation-key", str(hw_ks), "--model", str(model_id), "--budget", str(BUDGET), "--ration",
            str(RATION), "--interval", "3600", "--exit-when-done", "--poll", "0.05", "--rpc", anvil.rpc_url,
            "--book", str(chain.book.path), "--keystore", str(op_ks)]
    cursor = cursor_path(home, chain.chain_id, dc.hardware_id, dc.operator.address)
    log = tmp_path / "daemon.log"
    start_block = chain.w3.eth.block_number
    for kill_at in (3, 8):  # SIGKILL twice mid-run, at different points of the ration cycle
        proc = _start(args, env, log)
        deadline = time.monotonic() + 120
        while _done(cursor) < kill_at and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, log.read_text()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc = _start(args, env, log)
    assert proc.wait(timeout=240) == 0, log.read_text()[-3000:]

    chain.reset_nonces()
    state = json.loads(cursor.read_text())["state"]
    run_id = state["run_id"]
    run = read(chain, dao.issuer.functions.getRun(run_id))
    assert run.issued == BUDGET and state["units"] == BUDGET and state["done"] == BUDGET // RATION
    events = fetch_events(chain, from_block=start_block, contracts=["OTKIssuer", "HardwareRegistry"])
    issued = [e for e in events if e.name == "OTKIssued" and e.args["runId"] == run_id]
    consumed = [e for e in events if e.name == "OTKConsumed" and e.args["runId"] == run_id]
    assert len(issued) == len(consumed) == BUDGET // RATION
    assert sorted(e.args["keyHash"] for e in issued) == sorted(e.args["keyHash"] for e in consumed)
    assert len({e.args["keyHash"] for e in consumed}) == len(consumed)  # none twice
    assert len([e for e in events if e.name == "RunOpened"]) == 1  # restarts did not open another run
    challenged = [e for e in events if e.name == "AttestationChallenged"]
    answered = [e for e in events if e.name == "ChallengeAnswered"]
    assert len(answered) == len(challenged) and not [e for e in events if e.name == "ChallengeMissed"]
    # the work: exactly the chain an uninterrupted run computes
    h = run_secret(dc.operator)
    for e in sorted(issued, key=lambda e: e.args["index"]):
        h = sha256_workload(e.args["amount"], h)
    assert state["result"] == h.hex()
    for e in issued:
        assert read(chain, dao.issuer.functions.getKey(e.args["keyHash"])).consumed
    assert "OTK #" in log.read_text()
