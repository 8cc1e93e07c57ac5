"""The `loyal` CLI as users run it: a subprocess with real output and exit codes."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def loyal(*args, env=None):
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_deploy_then_events_for_auditors(anvil, tmp_path):
    book = tmp_path / "book.json"
    first = loyal("deploy", "--rpc", anvil.rpc_url, "--book", str(book), "--json")
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert set(out["deployed"]) >= {"LoyalToken", "Staking"}
    again = json.loads(loyal("deploy", "--rpc", anvil.rpc_url, "--book", str(book), "--json").stdout)
    assert again["deployed"] == [] and again["contracts"] == out["contracts"]
    ev = loyal("events", "--rpc", anvil.rpc_url, "--book", str(book), "-c", "LoyalToken", "-e", "Transfer", "--json")
    assert ev.returncode == 0, ev.stderr
    rows = [json.loads(line) for line in ev.stdout.splitlines()]
    mint = rows[0]
    assert mint["contract"] == "LoyalToken" and mint["event"] == "Transfer"
    assert mint["args"]["from"] == "0x" + "00" * 20 and mint["args"]["value"] == str(10**27)  # > 2**53: a string
    assert mint["LOYAL"] == {"value": "1000000000"}


def test_bad_rpc_url_is_one_line_and_exit_1():
    r = loyal("deploy", "--rpc", "http://127.0.0.1:9")
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0
    assert "no JSON-RPC node answers at http://127.0.0.1:9" in r.stderr


def test_bad_key_file_is_one_line(anvil, tmp_path):
    bad = tmp_path / "key.json"
    bad.write_text("{}")
    r = loyal("deploy", "--rpc", anvil.rpc_url, "--book", str(tmp_path / "b.json"), "--keystore", str(bad),
              env={"LOYAL_KEY_PASSWORD": "x"})
    assert r.returncode == 1 and "is not a Web3 Secret Storage keystore" in r.stderr
    assert not (tmp_path / "b.json").exists()  # nothing written


def test_devnet_main_job_json(tmp_path):
    r = loyal("devnet", "--home", str(tmp_path), "--only", "core", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["steps"]["core: token and staking"]["total_staked_LOYAL"] == 550.0
    assert (tmp_path / "deployments" / "31337.json").exists()


def test_events_follow_prints_new_events_and_resumes_from_cursor(chain, signers, anvil, tmp_path):
    import time

    cursor = tmp_path / "audit.json"
    start = chain.w3.eth.block_number + 1
    cmd = [sys.executable, "-m", "agents.cli", "events", "--rpc", anvil.rpc_url, "--book", str(chain.book.path),
           "-e", "Transfer", "--from-block", str(start), "--follow", "--cursor", str(cursor), "--json"]
    token = chain.contract("LoyalToken")

    def run_until(n_lines):
        p = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        lines = [json.loads(p.stdout.readline()) for _ in range(n_lines)]
        time.sleep(0.5)  # let the cursor commit land
        p.kill()
        p.wait()
        return lines

    chain.transact(signers[1], token.functions.transfer(signers[2].address, 11))
    chain.transact(signers[1], token.functions.transfer(signers[2].address, 12))
    assert [e["args"]["value"] for e in run_until(2)] == [11, 12]
    chain.transact(signers[1], token.functions.transfer(signers[2].address, 13))
    assert [e["args"]["value"] for e in run_until(1)] == [13]  # resumed after the first two
