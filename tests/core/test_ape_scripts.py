"""Ape console scripts (scripts/*.py) against a real Anvil with the suite deployed by our deploy path.

Ape runs in its own env `.venv-ape` (it pins web3<8), through `tools/ape/ape` (fixture `ape`).
"""
from __future__ import annotations

import pytest

from agents.core.signers import dev_signer

pytestmark = pytest.mark.slow


def test_status_reports_the_deployed_suite(chain, ape):
    status = ape.json(["status", "--json"])
    token, staking = chain.contract("LoyalToken"), chain.contract("Staking")
    assert status["chainId"] == 31337
    assert status["contracts"] == {n: e["address"] for n, e in chain.book.contracts.items()}
    assert status["token"]["address"] == token.address
    assert status["token"]["totalSupply"] == chain.call(token.functions.totalSupply())
    assert status["staking"]["address"] == staking.address
    assert status["staking"]["totalActive"] == chain.call(staking.functions.totalActive())

    res = ape.run(["status"])
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"LoyalToken {token.address}: total supply" in res.stdout
    assert f"Staking    {staking.address}: total staked" in res.stdout


def test_stake_script_stakes_through_ape(chain, ape):
    staking = chain.contract("Staking")
    who = dev_signer(3).address
    before = chain.call(staking.functions.stakeOf(who))
    out = ape.json(["stake", "--account", "3", "--amount", "7", "--json"])
    assert out["account"] == who and out["staked"] == 7 * 10**18 and out["events"] == 1
    # Seen through our own web3 8 client: the stake is on chain.
    assert chain.call(staking.functions.stakeOf(who)) == before + 7 * 10**18


def test_status_without_address_book_is_one_clear_error(ape, tmp_path):
    res = ape.run(["status"], deployments=tmp_path)
    assert res.returncode != 0
    assert f"no address book {tmp_path}/31337.json for chain 31337" in res.stdout + res.stderr
