"""DAO Ape console scripts (scripts/dao_*.py) against a real Anvil with the suite deployed by our deploy path.

Ape runs in its own env `.venv-ape` (it pins web3<8), through `tools/ape/ape` (fixture `ape`). The
scripts reach the chain by `--network <RPC URL>` (any network, not only the devnet provider) and sign
with the voters' own accounts: a keyfile (the same file `loyal keys new` writes) and an Ape alias.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak

from agents.core.signers import dev_signer, save_keystore

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "ape voter"


@pytest.fixture
def voters(tmp_path, monkeypatch):
    """policy1 as a keyfile path, policy2 as an Ape alias (what `ape accounts import` writes), an outside
    relayer with its own keyfile; the passphrases from the environment."""
    monkeypatch.setenv("LOYAL_KEY_PASSWORD", PASSWORD)
    keyfile = save_keystore(dev_signer(23), tmp_path / "policy1.json", PASSWORD, scrypt_n=2)
    alias = f"policy2-{uuid.uuid4().hex[:8]}"
    accounts_dir = REPO / ".venv-ape" / "data" / "accounts"
    accounts_dir.mkdir(parents=True, exist_ok=True)
    aliased = save_keystore(dev_signer(24), accounts_dir / f"{alias}.json", PASSWORD, scrypt_n=2)
    relayer = Account.create()
    relayer_file = save_keystore(relayer, tmp_path / "relayer.json", PASSWORD, scrypt_n=2)
    yield {"keyfile": str(keyfile), "alias": alias, "relayer": str(relayer_file), "relayer_address": relayer.address}
    aliased.unlink(missing_ok=True)


def test_own_accounts_any_network_sign_here_relay_there(chain, ape, anvil, voters, tmp_path):
    chain.w3.provider.make_request("anvil_setBalance", [voters["relayer_address"], hex(10**18)])
    net = ["--network", anvil.rpc_url]
    models = chain.contract("DaoModelRegistry")
    r = chain.transact(dev_signer(27), models.functions.submit(keccak(text="ape-model"), "ipfs://ape"))
    model_id = next(e for e in chain.decode_events(r) if e.name == "ModelSubmitted").args["modelId"]
    until = chain.w3.eth.get_block("latest")["timestamp"] + 365 * 86400
    chain.advance_time(1)

    p = ape.json(["dao_propose", "--account", voters["keyfile"], "--type", "review", "--call", "DaoModelRegistry.approve",
                  json.dumps([model_id, 2, 0, "ape triage", 5000, until]), "--description", "Approve via Ape", *net,
                  "--json"])
    pid = p["proposalId"]
    assert p["proposer"] == dev_signer(23).address and p["votingOpens"].startswith("20") and p["type"] == "Review"
    early = ape.run(["dao_vote", "--account", "20", "--proposal", pid, *net])
    assert early.returncode == 1 and f"is Pending (voting opens {p['votingOpens']})" in early.stderr
    assert "Traceback" not in early.stdout + early.stderr
    v = ape.json(["dao_vote", "--account", voters["alias"], "--proposal", pid, "--wait", *net, "--json"])
    assert v["voter"] == dev_signer(24).address and v["tally"]["for"] == 1 and v["state"] == "Active"

    ballot = tmp_path / "ballot.json"
    s = ape.json(["dao_vote_by_sig", "--signer", "20", "--proposal", pid, "--sign-only", str(ballot), *net, "--json"])
    assert s["voter"] == dev_signer(20).address and ballot.exists()
    # forged: the ballot edited to another proposal is refused before anything is sent
    forged = json.loads(ballot.read_text())
    forged["proposalId"] = str(int(pid) + 1)
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    bad = ape.run(["dao_vote_by_sig", "--relayer", voters["relayer"], "--relay", str(tmp_path / "forged.json"), *net])
    assert bad.returncode == 1 and "signed for another proposal" in bad.stderr
    rel = ape.json(["dao_vote_by_sig", "--relayer", voters["relayer"], "--relay", str(ballot), *net, "--json"])
    assert rel["hasVoted"] is True and rel["relayer"] == voters["relayer_address"]
    again = ape.run(["dao_vote_by_sig", "--relayer", voters["relayer"], "--relay", str(ballot), *net])
    assert again.returncode == 1 and "nonce is now" in again.stderr

    e = ape.json(["dao_execute", "--account", "26", "--proposal", pid, "--wait", *net, "--json"])
    assert e["state"] == "Executed" and "ModelApproved" in e["events"]
    chain.reset_nonces()
    assert chain.call(models.functions.isCertified(model_id))


def test_refusals_are_named_one_line_nothing_sent(chain, ape, anvil):
    net = ["--network", anvil.rpc_url]
    chain.advance_time(1)
    nonce = chain.w3.eth.get_transaction_count(dev_signer(23).address)
    out = ape.run(["dao_propose", "--account", "23", "--type", "review", "--call", "DaoModelRegistry.revoke",
                   json.dumps([1, "0x" + "00" * 32]), "--description", "revoke by review", *net])
    assert out.returncode == 1
    assert "a Review proposal may not call DaoModelRegistry.revoke" in out.stderr, out.stdout + out.stderr
    unknown = ape.run(["dao_vote", "--account", "20", "--proposal", "424242", *net])
    assert unknown.returncode == 1 and "no proposal 424242" in unknown.stderr
    assert chain.w3.eth.get_transaction_count(dev_signer(23).address) == nonce
    # a revert nested in execute (the registry's error, not the governor's) is decoded by name
    p = ape.json(["dao_propose", "--account", "23", "--type", "review", "--call", "DaoModelRegistry.approve",
                  json.dumps([99, 1, 0, "x", 10, 2_000_000_000]), "--description", "approve a model nobody submitted",
                  *net, "--json"])
    for voter in ("20", "21"):
        ape.json(["dao_vote", "--account", voter, "--proposal", p["proposalId"], "--wait", *net, "--json"])
    t0 = time.monotonic()
    nested = ape.run(["dao_execute", "--account", "26", "--proposal", p["proposalId"], "--wait", *net])
    assert nested.returncode == 1 and "UnknownModel(modelId=99)" in nested.stderr, nested.stdout + nested.stderr
    assert len((nested.stdout + nested.stderr).strip().splitlines()) == 1
    assert time.monotonic() - t0 < 60
