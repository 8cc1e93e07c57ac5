"""DAO Ape console scripts (scripts/dao_*.py) against a real Anvil with the suite deployed by our deploy path.

Ape runs in its own env `.venv-ape` (it pins web3<8), through `tools/ape/ape` (fixture `ape`).
"""
from __future__ import annotations

import json

import pytest
from eth_utils import keccak

from agents.core.signers import dev_signer

pytestmark = pytest.mark.slow


def test_propose_vote_vote_by_sig_execute_through_ape(chain, ape):
    models = chain.contract("DaoModelRegistry")
    r = chain.transact(dev_signer(27), models.functions.submit(keccak(text="ape-model"), "ipfs://ape"))
    model_id = next(e for e in chain.decode_events(r) if e.name == "ModelSubmitted").args["modelId"]
    until = chain.w3.eth.get_block("latest")["timestamp"] + 365 * 86400

    p = ape.json(["dao_propose", "--account", "23", "--type", "review", "--call", "DaoModelRegistry.approve",
             json.dumps([model_id, 2, "ape triage", 5000, until]), "--description", "Approve via Ape", "--json"])
    pid = p["proposalId"]
    v = ape.json(["dao_vote", "--account", "20", "--proposal", str(pid), "--support", "for", "--wait", "--json"])
    assert v["tally"]["for"] == 1
    s = ape.json(["dao_vote_by_sig", "--signer", "24", "--relayer", "26", "--proposal", str(pid), "--json"])
    assert s["hasVoted"] is True and s["voter"] == dev_signer(24).address
    e = ape.json(["dao_execute", "--account", "26", "--proposal", str(pid), "--wait", "--json"])
    assert e["state"] == "Executed" and "ModelApproved" in e["events"]

    chain.reset_nonces()
    gov = chain.contract("DaoGovernor")
    assert chain.call(gov.functions.hasVoted(pid, dev_signer(24).address))
    assert chain.call(models.functions.isCertified(model_id))
