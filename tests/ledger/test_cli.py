"""`loyal ledger` through the real CLI entry point against Anvil."""
from __future__ import annotations

import json

import pytest

from tests.cli_runner import invoke


@pytest.fixture
def run(chain, store, tmp_path, monkeypatch):
    monkeypatch.setenv("LOYAL_HOME", str(tmp_path / "home"))
    base = ["ledger", "--rpc", chain.w3.provider.endpoint_uri, "--book", str(chain.book.path), "--store", str(store.root)]

    def run_as(account: int, *args: str, ok: bool = True):
        res = invoke([*base, "--dev-account", str(account), *args])
        if ok:
            assert res.exit_code == 0, res.output
        return res

    yield run_as
    chain.reset_nonces()


def _json(res) -> dict:
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_cli_fork_train_seal_history_export_verify(run, tiny_lm_dir):
    run(1, "keygen")
    run(2, "keygen")
    base = _json(run(0, "register-base", "--model-dir", str(tiny_lm_dir), "--name", "tiny", "--json"))
    fid = _json(run(1, "fork", "--base", str(base["base_model_id"]), "--json"))["user_model_id"]
    for i in range(2):
        op = _json(run(1, "train", "--fork", str(fid), "--model-dir", str(tiny_lm_dir), "--lr", "0.5",
                       "--prompt", f"p{i}", "--response", f"r{i}", "--json"))
        assert op["seq"] == i + 1
    hist = _json(run(1, "history", "--json"))
    assert hist["total"] == 2 and hist["ops"][1]["prev_op_hash"] == hist["ops"][0]["op_hash"]
    assert all(o["recorded_at"] > 1_600_000_000 for o in hist["ops"]), "block time of each op"
    from datetime import datetime, timezone

    table = run(1, "history").stdout
    when = datetime.fromtimestamp(hist["ops"][0]["recorded_at"], timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    assert "recorded" in table and when[:10] in table, "the table shows each op's date (narrow terminals wrap the time)"
    assert _json(run(3, "seal", "--json"))["blocks_sealed"] == [1]
    proof = _json(run(5, "prove", "--op", "2", "--json"))
    assert proof["valid_locally"] and proof["valid_on_chain"] and proof["block"] == 1
    exp = _json(run(1, "export", "--fork", str(fid), "--json"))
    assert exp["op_count"] == 2
    report = _json(run(1, "verify", "--fork", str(fid), "--json"))
    assert report["ok"] and report["sealed_ops_proven"] == 2 and report["state_cid"] == exp["state_cid"]

    bad = run(2, "train", "--fork", str(fid), "--model-dir", str(tiny_lm_dir), "--prompt", "x", "--response", "y", ok=False)
    assert bad.exit_code == 1 and "may not record" in bad.output
    bad = run(1, "prove", "--op", "99", ok=False)
    assert bad.exit_code == 1 and "UnknownOp" in bad.output


def test_cli_authorise_second_device(run, tiny_lm_dir, tmp_path):
    from agents.core.signers import dev_signer

    base = _json(run(0, "register-base", "--model-dir", str(tiny_lm_dir), "--name", "tiny", "--json"))
    fid = _json(run(1, "fork", "--base", str(base["base_model_id"]), "--json"))["user_model_id"]
    run(1, "keygen")
    key = tmp_path / "home" / "ledger" / "keys" / f"{dev_signer(1).address.lower()}.key"
    train = ["train", "--fork", str(fid), "--model-dir", str(tiny_lm_dir), "--prompt", "p", "--response", "r"]
    bad = run(6, "--key-file", str(key), *train, ok=False)
    assert bad.exit_code == 1 and "may not record" in bad.output
    run(1, "authorise", "--fork", str(fid), "--recorder", dev_signer(6).address)
    assert _json(run(6, "--key-file", str(key), *train, "--json"))["seq"] == 1
    run(1, "authorise", "--fork", str(fid), "--recorder", dev_signer(6).address, "--revoke")
    assert run(6, "--key-file", str(key), *train, ok=False).exit_code == 1
    bad = run(1, "authorise", "--fork", str(fid), "--recorder", "nobody", ok=False)
    assert "not an Ethereum address" in bad.output


def test_cli_missing_key_is_a_clear_error(run):
    res = run(4, "export", "--fork", "1", ok=False)
    assert res.exit_code == 1 and "keygen" in res.output


def test_cli_keygen_register_key_sign_verify(run, tiny_lm_dir, tmp_path):
    from agents.core.signers import dev_signer

    run(1, "keygen")
    keys = tmp_path / "home" / "ledger" / "keys"
    assert (keys / f"{dev_signer(1).address.lower()}.mldsa65").is_file()
    assert "already exist" in run(1, "keygen", ok=False).output
    base = _json(run(0, "register-base", "--model-dir", str(tiny_lm_dir), "--name", "tiny", "--json"))
    fid = _json(run(1, "fork", "--base", str(base["base_model_id"]), "--json"))["user_model_id"]
    run(1, "train", "--fork", str(fid), "--model-dir", str(tiny_lm_dir), "--prompt", "p", "--response", "r")
    run(3, "seal")
    run(1, "export", "--fork", str(fid))
    bad = run(1, "sign", "--fork", str(fid), ok=False)
    assert bad.exit_code == 1 and "register-key" in bad.output
    reg = _json(run(1, "register-key", "--json"))
    assert reg["key_hash"].startswith("0x") and reg["key_cid"]
    bad = run(1, "register-key", ok=False)
    assert bad.exit_code == 1 and "BlockKeyAlreadyRegistered" in bad.output
    bad = run(1, "verify", "--fork", str(fid), ok=False)
    assert bad.exit_code == 1 and "block 1" in bad.output and "no ML-DSA-65 signature" in bad.output
    assert _json(run(1, "sign", "--fork", str(fid), "--json"))["blocks_signed"] == [1]
    report = _json(run(1, "verify", "--fork", str(fid), "--json"))
    assert report["blocks_signed"] == 1 and report["block_key"] == reg["key_hash"]
    bad = run(2, "sign", "--fork", str(fid), ok=False)  # no key file for account 2
    assert bad.exit_code == 1 and "keygen" in bad.output


def test_cli_fork_of_a_fork_lineage_and_shared_keys(run, tiny_lm_dir, tmp_path):
    run(1, "keygen")
    run(2, "keygen")
    base = _json(run(0, "register-base", "--model-dir", str(tiny_lm_dir), "--name", "tiny", "--json"))
    a = _json(run(1, "fork", "--base", str(base["base_model_id"]), "--json"))["user_model_id"]
    train = ["--model-dir", str(tiny_lm_dir), "--lr", "0.5", "--prompt", "p", "--response", "r"]
    run(1, "train", "--fork", str(a), *train)
    run(1, "export", "--fork", str(a))
    bad = run(2, "fork", "--parent", str(a), "--at-seq", "5", ok=False)
    assert bad.exit_code == 1 and "UnknownParentOp" in bad.output
    bad = run(2, "fork", "--parent", str(a), ok=False)
    assert bad.exit_code == 1 and "--at-seq" in bad.output
    key = tmp_path / "fork-a.key"
    run(1, "share-key", "--fork", str(a), "--out", str(key))
    bad = run(2, "add-key", "--fork", str(a), "--file", str(tmp_path / "none.key"), ok=False)
    assert bad.exit_code == 1 and "does not exist" in bad.output
    run(2, "add-key", "--fork", str(a), "--file", str(key))
    child = _json(run(2, "fork", "--parent", str(a), "--at-seq", "1", "--json"))
    assert child["generation"] == 2 and child["parent"] == a and child["parent_seq"] == 1
    b = child["user_model_id"]
    run(2, "train", "--fork", str(b), *train)
    run(2, "export", "--fork", str(b))
    lin = _json(run(5, "lineage", "--fork", str(b), "--json"))
    assert [(g["fork"], g["generation"], g["parent"]) for g in lin["lineage"]] == [(a, 1, 0), (b, 2, a)]
    assert lin["base"]["base_model_id"] == base["base_model_id"]
    tree = run(5, "lineage", "--fork", str(b)).stdout
    assert f"fork {a} at op 1" in tree and "the base model" in tree
    report = _json(run(2, "verify", "--fork", str(b), "--json"))
    assert report["generation"] == 2 and report["lineage_ops"] == 2


def test_cli_attest_claim_recheck_finalize(run, chain, tiny_lm_dir, tmp_path):
    from agents.core.token import Stakes
    from agents.core.signers import dev_signer

    for account in (0, 1, 4):
        run(account, "keygen")
    Stakes(chain).stake(dev_signer(4), 200 * 10**18)  # account 4 evaluates
    base = _json(run(0, "register-base", "--model-dir", str(tiny_lm_dir), "--name", "tiny", "--json"))
    fid = _json(run(1, "fork", "--base", str(base["base_model_id"]), "--json"))["user_model_id"]
    for i in range(3):
        run(1, "train", "--fork", str(fid), "--model-dir", str(tiny_lm_dir), "--lr", "0.5",
            "--prompt", f"tell me about loyal {i}", "--response", "loyal is community owned ai, owned by its users")
    run(3, "seal")
    key = tmp_path / "fork.key"
    run(1, "share-key", "--fork", str(fid), "--out", str(key))
    for account in (4, 0):  # the evaluator, and the referee who may re-check
        run(account, "add-key", "--fork", str(fid), "--file", str(key))
    data = tmp_path / "held-out.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"what is loyal? {i}", "response": "loyal is community owned ai"}) + "\n"
                            for i in range(4)))
    att = tmp_path / "att.json"
    bad = run(4, "attest", "--fork", str(fid), "--to-seq", "9", "--data", str(data), "--model-dir", str(tiny_lm_dir),
              "--out", str(att), ok=False)
    assert bad.exit_code == 1 and "cannot attest ops 1..9" in bad.output
    out = _json(run(4, "attest", "--fork", str(fid), "--to-seq", "3", "--data", str(data), "--model-dir", str(tiny_lm_dir),
                    "--out", str(att), "--json"))
    assert out["loss_after"] < out["loss_before"] and att.is_file()
    bad = run(2, "claim", "--attestation", str(att), ok=False)  # not the fork's owner
    assert bad.exit_code == 1 and "NotForkOwner" in bad.output
    claim = _json(run(1, "claim", "--attestation", str(att), "--json"))
    assert claim["amount"] == 3 * 10**18 and claim["evaluator_bond"] == 6 * 10**18
    bad = run(1, "finalize", "--claim", str(claim["claim_id"]), ok=False)
    assert bad.exit_code == 1 and "ChallengeWindowOpen" in bad.output
    check = _json(run(0, "recheck", "--claim", str(claim["claim_id"]), "--model-dir", str(tiny_lm_dir), "--reject", "--json"))
    assert check["holds"] and "slashed" not in check
    chain.advance_time(24 * 3600)
    assert _json(run(5, "finalize", "--claim", str(claim["claim_id"]), "--json"))["paid"] == 3 * 10**18
