"""Ape console scripts (scripts/*.py) against a real Anvil with the suite deployed by our deploy path.

Ape runs in its own env `.venv-ape` (it pins web3<8), through `tools/ape/ape`.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from agents.core.signers import dev_signer

REPO = Path(__file__).resolve().parents[2]
APE = REPO / "tools" / "ape" / "ape"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (REPO / ".venv-ape" / "bin" / "ape").exists(),
        reason=".venv-ape is absent: run `make ape-setup` (Ape pins web3<8, so it lives in its own env)",
    ),
]


def ape_run(args: list[str], rpc_url: str, deployments: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(APE_FOUNDRY_HOST=rpc_url, LOYAL_DEPLOYMENTS=str(deployments))
    return subprocess.run([str(APE), "run", *args], env=env, capture_output=True, text=True, timeout=240)


def test_status_reports_the_deployed_suite(chain, anvil):
    res = ape_run(["status", "--json"], anvil.rpc_url, chain.book.path.parent)
    assert res.returncode == 0, res.stderr[-2000:]
    status = json.loads(res.stdout[res.stdout.index("{"):])
    token, staking = chain.contract("LoyalToken"), chain.contract("Staking")
    assert status["chainId"] == 31337
    assert status["contracts"] == {n: e["address"] for n, e in chain.book.contracts.items()}
    assert status["token"]["address"] == token.address
    assert status["token"]["totalSupply"] == chain.call(token.functions.totalSupply())
    assert status["staking"]["address"] == staking.address
    assert status["staking"]["totalActive"] == chain.call(staking.functions.totalActive())

    res = ape_run(["status"], anvil.rpc_url, chain.book.path.parent)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"LoyalToken {token.address}: total supply" in res.stdout
    assert f"Staking    {staking.address}: total staked" in res.stdout


def test_stake_script_stakes_through_ape(chain, anvil):
    staking = chain.contract("Staking")
    who = dev_signer(3).address
    before = chain.call(staking.functions.stakeOf(who))
    res = ape_run(["stake", "--account", "3", "--amount", "7", "--json"], anvil.rpc_url, chain.book.path.parent)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert out["account"] == who and out["staked"] == 7 * 10**18 and out["events"] == 1
    # Seen through our own web3 8 client: the stake is on chain.
    assert chain.call(staking.functions.stakeOf(who)) == before + 7 * 10**18


def test_status_without_address_book_is_one_clear_error(anvil, tmp_path):
    res = ape_run(["status"], anvil.rpc_url, tmp_path)
    assert res.returncode != 0
    assert f"no address book {tmp_path}/31337.json for chain 31337" in res.stdout + res.stderr
