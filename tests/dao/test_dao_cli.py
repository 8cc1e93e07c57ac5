"""`loyal dao proposals|show|propose|vote|execute|buy-credits` against a real Anvil, voters on their own
keystores (the same `--keystore` every role uses); a ballot signed into a file by one account and
relayed by another."""
from __future__ import annotations

import json

import pytest
from eth_utils import keccak

from agents.core.signers import dev_signer, save_keystore
from agents.dao.governance import Dao
from tests.cli_runner import invoke

PASSWORD = "voter password"


@pytest.fixture
def env(chain, anvil, tmp_path, monkeypatch):
    monkeypatch.setenv("LOYAL_KEY_PASSWORD", PASSWORD)
    monkeypatch.setenv("LOYAL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LOYAL_KEYSTORE", raising=False)
    keys = {i: save_keystore(dev_signer(i), tmp_path / f"member{i}.json", PASSWORD, scrypt_n=2) for i in (20, 23, 24)}
    dao = Dao(chain)
    dao.advance_past(dao.now())
    return chain, ["--rpc", anvil.rpc_url, "--book", str(chain.book.path)], keys, dao


def loyal_json(*args):
    r = invoke([*args, "--json"])
    assert r.exit_code == 0, r.output[-2000:]
    return json.loads(r.stdout)


def test_propose_vote_relay_execute_with_own_keystores(env, tmp_path):
    chain, opts, keys, dao = env
    r = chain.transact(dev_signer(27), dao.models.functions.submit(keccak(text="cli-model"), "ipfs://cli"))
    model_id = next(e for e in chain.decode_events(r) if e.name == "ModelSubmitted").args["modelId"]
    until = dao.now() + 365 * 86400
    p = loyal_json("dao", "propose", "--type", "review", "--call",
                   f'DaoModelRegistry.approve [{model_id}, 2, 0, "cli triage", 5000, {until}]',
                   "--description", "Approve via the CLI", *opts, "--keystore", str(keys[23]))
    pid = p["proposalId"]
    assert p["type"] == "Review" and p["proposer"] == dev_signer(23).address and p["votingOpens"].startswith("20")
    listed = loyal_json("dao", "proposals", *opts)["proposals"]
    assert any(x["proposalId"] == pid and x["state"] == "Pending" for x in listed)

    v = loyal_json("dao", "vote", pid, "--support", "for", "--wait", *opts, "--keystore", str(keys[20]))
    assert v["tally"]["for"] == 1 and v["state"] == "Active"
    ballot = tmp_path / "ballot.json"
    signed = loyal_json("dao", "vote", pid, "--sign-only", str(ballot), *opts, "--keystore", str(keys[24]))
    assert signed["voter"] == dev_signer(24).address and ballot.exists()
    relayed = loyal_json("dao", "vote", "--relay", str(ballot), *opts, "--dev-account", "26")
    assert relayed["voter"] == dev_signer(24).address and relayed["relayer"] == dev_signer(26).address
    again = invoke(["dao", "vote", "--relay", str(ballot), *opts, "--dev-account", "26"])
    assert again.exit_code == 1 and "nonce" in again.stderr and len(again.stderr.splitlines()) == 1

    e = loyal_json("dao", "execute", pid, "--wait", *opts, "--dev-account", "26")
    assert e["state"] == "Executed" and "ModelApproved" in e["events"]
    shown = loyal_json("dao", "show", pid, *opts)
    assert shown["state"] == "Executed" and shown["actions"][0]["function"] == "approve"
    assert shown["actions"][0]["enum"] == {"scope": "Narrow"}
    text = invoke(["dao", "show", pid, *opts]).stdout
    assert "DaoModelRegistry.approve(modelId=" in text and "scope=Narrow" in text
    chain.reset_nonces()
    assert chain.call(dao.models.functions.isCertified(model_id))


def test_refusals_are_one_line_and_send_nothing(env):
    chain, opts, keys, dao = env
    voter = dev_signer(20)
    n = chain.w3.eth.get_transaction_count(voter.address)
    r = invoke(["dao", "vote", "424242", *opts, "--keystore", str(keys[20])])
    assert r.exit_code == 1 and r.stderr.startswith("error: no proposal 424242")
    r = invoke(["dao", "propose", "--type", "review", "--call", "DaoModelRegistry.revoke [1, \"0x" + "00" * 32 + "\"]",
                "--description", "x", *opts, "--keystore", str(keys[23])])
    assert r.exit_code == 1 and "a Review proposal may not call DaoModelRegistry.revoke (only Emergency proposals may)" in r.stderr, r.stderr
    p = loyal_json("dao", "propose", "--type", "review", "--call", 'PersonnelRegistry.fileReport ["0x' + "11" * 32
                   + '", "0x' + "22" * 32 + '"]', "--description", "early", *opts, "--keystore", str(keys[23]))
    r = invoke(["dao", "vote", p["proposalId"], *opts, "--keystore", str(keys[20])])
    assert r.exit_code == 1 and "is Pending (voting opens 20" in r.stderr and len(r.stderr.splitlines()) == 1
    assert chain.w3.eth.get_transaction_count(voter.address) == n
