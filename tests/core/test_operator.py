"""A new operator's path on a devnet, through the CLI: create a key, get gas and LOYAL, stake,
unstake, let the clock run, withdraw; configuration precedence; a devnet that keeps mining and
stops its chain on SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from common.config import resolve
from common.errors import ConfigError
from tests.cli_runner import invoke

REPO = Path(__file__).resolve().parents[2]


def ok(args: list[str]):
    r = invoke(args)
    assert r.exit_code == 0, r.output
    return r


def test_new_operator_key_funds_stake_unstake_withdraw(chain, anvil, tmp_path, monkeypatch):
    monkeypatch.setenv("LOYAL_HOME", str(tmp_path))
    monkeypatch.setenv("LOYAL_KEY_PASSWORD", "op password")
    rpc = ["--rpc", anvil.rpc_url, "--book", str(chain.book.path)]
    key = json.loads(ok(["keys", "new", "op", "--json"]).stdout)
    assert Path(key["path"]) == tmp_path / "keys" / "op.json" and (Path(key["path"]).stat().st_mode & 0o777) == 0o600
    assert ok(["keys", "address", "op"]).stdout.strip() == key["address"]
    assert key["address"] in ok(["keys", "list"]).stdout
    r = invoke(["keys", "new", "op"])
    assert r.exit_code == 1 and "already exists" in r.stderr  # never overwrites a key

    ok(["chain", "fund", key["address"], "--eth", "1", "--loyal", "250", *rpc])
    ok(["token", "transfer", key["address"], "50.5", "--dev-account", "1", *rpc])
    bal = json.loads(ok(["token", "balance", "--keystore", "op", "--json", *rpc]).stdout)
    assert int(bal["loyal"]) == 300_500_000_000_000_000_000 and int(bal["eth"]) == 10**18

    ok(["stake", "100", "--keystore", "op", *rpc])
    ok(["unstake", "40", "--keystore", "op", *rpc])
    r = invoke(["withdraw", "--keystore", "op", *rpc])
    assert r.exit_code == 1 and "UnstakeLocked" in r.stderr  # the delay has not passed
    delay = chain.call(chain.contract("Staking").functions.unstakeDelay())
    ok(["chain", "advance", str(delay), *rpc])
    assert "withdrew 40 LOYAL" in ok(["withdraw", "--keystore", "op", *rpc]).stdout
    bal = json.loads(ok(["token", "balance", key["address"], "--json", *rpc]).stdout)
    assert int(bal["staked"]) == 60 * 10**18 and int(bal["loyal"]) == 240_500_000_000_000_000_000
    token = chain.contract("LoyalToken")
    assert chain.call(token.functions.allowance(key["address"], chain.book.address("Staking"))) == 0
    chain.reset_nonces()


def test_import_key_from_file_and_sign_with_it(chain, anvil, tmp_path, monkeypatch):
    from agents.core.signers import dev_signer

    monkeypatch.setenv("LOYAL_HOME", str(tmp_path))
    monkeypatch.setenv("LOYAL_KEY_PASSWORD", "pw")
    secret = tmp_path / "secret.txt"
    secret.write_text(dev_signer(7).key.to_0x_hex() + "\n")
    out = json.loads(ok(["keys", "import", "seven", "--private-key-file", str(secret), "--json"]).stdout)
    assert out["address"] == dev_signer(7).address
    rpc = ["--rpc", anvil.rpc_url, "--book", str(chain.book.path)]
    ok(["token", "approve", "Staking", "3", "--keystore", "seven", *rpc])
    token = chain.contract("LoyalToken")
    assert chain.call(token.functions.allowance(dev_signer(7).address, chain.book.address("Staking"))) == 3 * 10**18
    monkeypatch.setenv("LOYAL_KEY_PASSWORD", "wrong")
    r = invoke(["token", "approve", "Staking", "0", "--keystore", "seven", *rpc])
    assert r.exit_code == 1 and "wrong password" in r.stderr
    chain.reset_nonces()


def test_config_precedence_flag_env_file_default(tmp_path):
    cfg = tmp_path / "loyal.toml"
    cfg.write_text('rpc_url = "http://file:1"\nlog_level = "DEBUG"\npoll = 2.5\n')
    env = {"LOYAL_HOME": str(tmp_path), "LOYAL_LOG_LEVEL": "WARNING"}
    s = resolve({"rpc_url": None}, env=env)  # file found in $LOYAL_HOME
    assert (s.rpc_url, s.log_level, s.poll, s.tx_timeout) == ("http://file:1", "WARNING", 2.5, 120.0)
    assert (s.sources["rpc_url"], s.sources["log_level"], s.sources["poll"], s.sources["tx_timeout"]) == \
        ("file", "env", "file", "default")
    s = resolve({"rpc_url": "http://flag:3"}, env={**env, "LOYAL_RPC_URL": "http://env:2"})
    assert s.rpc_url == "http://flag:3" and s.sources["rpc_url"] == "flag"
    assert resolve(env={**env, "LOYAL_RPC_URL": "http://env:2"}).rpc_url == "http://env:2"
    assert resolve(env=env).deployments == tmp_path / "deployments"  # computed from home
    other = tmp_path / "other.toml"
    other.write_text('rpc_url = "http://other:4"\n')
    assert resolve(env={**env, "LOYAL_CONFIG": str(other)}).rpc_url == "http://other:4"
    with pytest.raises(ConfigError, match="poll must be a float"):
        resolve(env={"LOYAL_POLL": "soon", "LOYAL_HOME": str(tmp_path / "none")})


def test_settings_are_read_when_a_command_runs_not_at_import(tmp_path, monkeypatch):
    """`loyal config` reflects the environment of each run (nothing frozen at import)."""
    for home in (tmp_path / "a", tmp_path / "b"):
        monkeypatch.setenv("LOYAL_HOME", str(home))
        out = json.loads(ok(["config", "--json"]).stdout)["settings"]
        assert out["home"] == {"value": str(home), "source": "env"}
        assert out["deployments"]["value"] == str(home / "deployments")


def test_readme_configuration_table_lists_every_setting():
    from common.config import SETTINGS

    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Configuration"):]
    for s in SETTINGS:
        assert f"`{s.name}`" in table and f"`{s.env}`" in table, f"README lacks setting {s.name} ({s.env})"


@pytest.mark.slow
def test_devnet_keeps_mining_and_sigterm_stops_the_chain(tmp_path):
    """`loyal devnet --deploy-only --block-time 1 --port N`: blocks keep coming with no transactions,
    the address book lands where other commands look, and SIGTERM takes Anvil down too."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LOYAL_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "agents.cli", "devnet", "--deploy-only", "--port", str(port),
                             "--block-time", "1", "--seconds-per-block", "60", "--json"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"

    def rpc(method, params=()):
        return httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                          timeout=2).json()["result"]

    try:
        summary = ""
        for line in proc.stdout:  # the JSON summary is printed once the suite is deployed
            summary += line
            if line.rstrip() == "}":
                break
        assert proc.poll() is None, proc.stderr.read()
        out = json.loads(summary)
        assert out["rpc_url"] == url and Path(out["book"]) == tmp_path / "deployments" / "31337.json"
        assert len(json.loads(Path(out["book"]).read_text())["contracts"]) == len(out["contracts"])
        b1 = rpc("eth_getBlockByNumber", ["latest", False])
        time.sleep(4)
        b2 = rpc("eth_getBlockByNumber", ["latest", False])
        assert int(b2["number"], 16) >= int(b1["number"], 16) + 2  # mining on its own
        assert int(b2["timestamp"], 16) - int(b1["timestamp"], 16) >= 120  # a fast clock: 60 s per block
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        with pytest.raises(httpx.HTTPError):
            for _ in range(20):  # Anvil is gone (give it a moment to exit)
                rpc("eth_chainId")
                time.sleep(0.25)
        # SIGKILL cannot be caught: the kernel takes the chain down with its parent (PDEATHSIG)
        proc = subprocess.Popen([sys.executable, "-m", "agents.cli", "devnet", "--deploy-only", "--port", str(port)],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                rpc("eth_chainId")
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.2)
        proc.kill()
        proc.wait(timeout=15)
        with pytest.raises(httpx.HTTPError):
            for _ in range(20):
                rpc("eth_chainId")
                time.sleep(0.25)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
