"""DAO Ape console scripts (scripts/dao_*.py) against a real Anvil with the suite deployed by our deploy path.

Ape runs in its own env `.venv-ape` (it pins web3<8), through `tools/ape/ape`.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from eth_utils import keccak

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


def ape(args: list[str], chain, anvil) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(APE_FOUNDRY_HOST=anvil.rpc_url, LOYAL_DEPLOYMENTS=str(chain.book.path.parent))
    res = subprocess.run([str(APE), "run", *args], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    return json.loads(res.stdout[res.stdout.index("{"):])


def test_propose_vote_vote_by_sig_execute_through_ape(chain, anvil):
    models = chain.contract("DaoModelRegistry")
    r = chain.transact(dev_signer(27), models.functions.submit(keccak(text="ape-model"), "ipfs://ape"))
    model_id = next(e for e in chain.decode_events(r) if e.name == "ModelSubmitted").args["modelId"]
    until = chain.w3.eth.get_block("latest")["timestamp"] + 365 * 86400

    p = ape(["dao_propose", "--account", "23", "--type", "review", "--call", "DaoModelRegistry.approve",
             json.dumps([model_id, 2, "ape triage", 5000, until]), "--description", "Approve via Ape", "--json"],
            chain, anvil)
    pid = p["proposalId"]
    v = ape(["dao_vote", "--account", "20", "--proposal", str(pid), "--support", "for", "--wait", "--json"],
            chain, anvil)
    assert v["tally"]["for"] == 1
    s = ape(["dao_vote_by_sig", "--signer", "24", "--relayer", "26", "--proposal", str(pid), "--json"], chain, anvil)
    assert s["hasVoted"] is True and s["voter"] == dev_signer(24).address
    e = ape(["dao_execute", "--account", "26", "--proposal", str(pid), "--wait", "--json"], chain, anvil)
    assert e["state"] == "Executed" and "ModelApproved" in e["events"]

    chain.reset_nonces()
    gov = chain.contract("DaoGovernor")
    assert chain.call(gov.functions.hasVoted(pid, dev_signer(24).address))
    assert chain.call(models.functions.isCertified(model_id))
