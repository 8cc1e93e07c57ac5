"""Chain client, deploy path and error decoding, against a real Anvil."""
import json
import os
import shutil

import pytest

from agents.core.chain import Chain
from agents.core.deploy import deploy_suite
from common.errors import ArtifactsMissing, DeploymentMissing, Reverted, RpcUnreachable


def test_suite_is_deployed_and_addressable(chain):
    token = chain.contract("LoyalToken")
    assert chain.call(token.functions.symbol()) == "LOYAL"
    staking = chain.contract("Staking")
    assert chain.call(staking.functions.token()) == token.address


def test_redeploy_is_idempotent(chain, signers):
    before = json.loads(chain.book.path.read_text())
    d = deploy_suite(chain, signers[0])
    assert d.deployed == []
    assert json.loads(chain.book.path.read_text()) == before


def test_custom_error_decoded_by_name_and_nothing_sent(chain, signers):
    alice = signers[1]
    staking = chain.contract("Staking")
    nonce = chain.w3.eth.get_transaction_count(alice.address)
    with pytest.raises(Reverted.named("InsufficientStake")) as info:
        chain.transact(alice, staking.functions.requestUnstake(5))
    assert info.value.error_args == {"account": alice.address, "requested": 5, "available": 0}
    assert "InsufficientStake(account=" in str(info.value)
    assert chain.w3.eth.get_transaction_count(alice.address) == nonce  # no transaction went out


def test_unauthorized_slash_names_the_missing_role(chain, signers):
    staking = chain.contract("Staking")
    with pytest.raises(Reverted.named("AccessControlUnauthorizedAccount")) as info:
        chain.transact(signers[1], staking.functions.slash(signers[2].address, 1, "no"))
    assert info.value.error_args["account"] == signers[1].address


def test_stake_unstake_withdraw_flow_and_events(chain, signers):
    alice = signers[1]
    token, staking = chain.contract("LoyalToken"), chain.contract("Staking")
    chain.transact(alice, token.functions.approve(staking.address, 10**20))
    receipt = chain.transact(alice, staking.functions.stake(10**20))
    names = [e.name for e in chain.decode_events(receipt)]
    assert names == ["Transfer", "Staked"] or names == ["Staked", "Transfer"]
    chain.transact(alice, staking.functions.requestUnstake(4 * 10**19))
    with pytest.raises(Reverted.named("UnstakeLocked")):
        chain.transact(alice, staking.functions.withdraw())
    chain.advance_time(chain.call(staking.functions.unstakeDelay()))
    bal = chain.call(token.functions.balanceOf(alice.address))
    chain.transact(alice, staking.functions.withdraw())
    assert chain.call(token.functions.balanceOf(alice.address)) == bal + 4 * 10**19
    assert chain.call(staking.functions.stakeOf(alice.address)) == 6 * 10**19


def test_many_transactions_in_a_burst_keep_nonces_straight(chain, signers):
    alice, bob = signers[1], signers[2]
    token = chain.contract("LoyalToken")
    start = chain.call(token.functions.balanceOf(bob.address))
    for _ in range(20):
        chain.transact(alice, token.functions.transfer(bob.address, 1))
    assert chain.call(token.functions.balanceOf(bob.address)) == start + 20


def test_nonce_resyncs_when_another_client_used_the_key(chain, signers, anvil):
    alice, bob = signers[1], signers[2]
    token = chain.contract("LoyalToken")
    chain.transact(alice, token.functions.transfer(bob.address, 1))  # caches alice's nonce
    other = Chain.connect(anvil.rpc_url, book_path=chain.book.path)
    other.transact(alice, other.contract("LoyalToken").functions.transfer(bob.address, 1))
    chain.transact(alice, token.functions.transfer(bob.address, 1))  # stale cache: must re-sync, not fail


def test_wrong_rpc_url_is_one_clear_error():
    with pytest.raises(RpcUnreachable, match="no JSON-RPC node answers at http://127.0.0.1:9"):
        Chain.connect("http://127.0.0.1:9", timeout=1)


def test_missing_artifacts_is_one_clear_error(anvil, tmp_path):
    chain = Chain.connect(anvil.rpc_url, build_dir=tmp_path / "nothing", book_path=tmp_path / "b.json")
    with pytest.raises(ArtifactsMissing, match="run `make build`"):
        chain.contract_at("Staking", "0x" + "00" * 20)


def test_unknown_deployment_is_one_clear_error(anvil, tmp_path):
    chain = Chain.connect(anvil.rpc_url, book_path=tmp_path / "empty.json")
    with pytest.raises(DeploymentMissing, match="Staking is not deployed on chain 31337"):
        chain.contract("Staking")


def test_deploy_resumes_after_a_partial_run(anvil, signers, tmp_path):
    chain = Chain.connect(anvil.rpc_url, book_path=tmp_path / "b.json")
    from agents.core.deploy import Deployer, INITIAL_SUPPLY

    Deployer(chain, signers[0]).ensure("LoyalToken", signers[0].address, INITIAL_SUPPLY)  # run cut short
    d = deploy_suite(chain, signers[0])
    assert "LoyalToken" not in d.deployed  # the contract deployed before the cut is reused
    assert d.deployed[0] == "Staking"  # the run picks up where it stopped


def test_a_dropped_transaction_is_broadcast_again_and_a_missing_receipt_times_out(tmp_path):
    """A node that loses a pending transaction (restart, eviction) gets the same signed bytes again;
    a transaction that is never mined ends in a clear TransactionTimeout, not a hang."""
    import threading

    from agents.core.anvil import Anvil
    from agents.core.chain import Chain
    from agents.core.deploy import deploy_suite
    from agents.core.signers import dev_signer
    from common.errors import TransactionTimeout

    with Anvil() as node:
        chain = Chain.connect(node.rpc_url, book_path=tmp_path / "book.json")
        deploy_suite(chain, dev_signer(0))
        token = chain.contract("LoyalToken")
        rpc = chain.w3.provider.make_request
        rpc("evm_setAutomine", [False])
        chain.rebroadcast_after = 0.3
        result: dict = {}
        t = threading.Thread(target=lambda: result.update(
            r=chain.transact(dev_signer(0), token.functions.transfer(dev_signer(1).address, 5))))
        t.start()
        while not rpc("txpool_content", [])["result"]["pending"]:
            pass
        (by_nonce,) = rpc("txpool_content", [])["result"]["pending"].values()
        (tx,) = by_nonce.values()
        rpc("anvil_dropTransaction", [tx["hash"]])  # the node forgets it
        import time

        time.sleep(1.0)  # the client notices and sends it again
        rpc("evm_mine", [])
        t.join(timeout=30)
        assert result["r"]["status"] == 1 and chain.rebroadcasts >= 1
        with pytest.raises(TransactionTimeout, match="has no receipt after 1 s"):
            chain.transact(dev_signer(0), token.functions.transfer(dev_signer(1).address, 5), timeout=1)


def test_anvil_keeps_its_state_cache_in_its_own_directory_and_removes_it_on_stop():
    """Anvil snapshots old blocks' state to disk and never deletes them itself; a test run left
    gigabytes behind in ~/.foundry/anvil/tmp until the disk filled."""
    import httpx

    from agents.core.anvil import Anvil

    node = Anvil(accounts=2).start()
    cache = node.cache_dir
    try:
        # Past Anvil's in-memory window (500 blocks) each block's state goes to the cache.
        with httpx.Client(timeout=30) as http:
            def rpc(method: str, params: list):
                return http.post(node.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                                     "params": params}).json()["result"]
            (sender, _) = rpc("eth_accounts", [])
            for _ in range(560):
                rpc("eth_sendTransaction", [{"from": sender, "to": sender, "value": "0x1"}])
        assert cache is not None and any(cache.iterdir()), "anvil wrote no state snapshots to --cache-path"
    finally:
        node.stop()
    assert not cache.exists()
    assert node.cache_dir is None


def test_anvil_sweeps_the_caches_of_nodes_whose_starter_was_killed(tmp_path):
    """A node started by a process that was SIGKILLed never ran `stop()`: the next node started
    anywhere removes its cache; caches of live starters stay."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from agents.core.anvil import CACHE_PREFIX, Anvil

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = Path(tempfile.mkdtemp(prefix=f"{CACHE_PREFIX}{dead.stdout.strip()}-"))
    (stale / "0xabc.json").write_text("{}")
    live = Path(tempfile.mkdtemp(prefix=f"{CACHE_PREFIX}{os.getppid()}-"))
    try:
        with Anvil(accounts=1):
            pass
        assert not stale.exists()
        assert live.exists()
    finally:
        shutil.rmtree(live, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)
