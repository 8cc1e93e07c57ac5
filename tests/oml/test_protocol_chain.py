"""Python-side hashing and signing agree with the contracts, checked on a real Anvil."""
from __future__ import annotations

import pytest

from common.errors import Reverted
from agents.oml.permits import PermitSigner, UsageTree, query_hash
from ml.oml.commitment import FingerprintTree


def _signer(oml):
    ledger = oml.chain.contract("UsageLedger")
    return PermitSigner(bytes(oml.platform.key), oml.chain.chain_id, ledger.address), ledger


def test_fingerprint_tree_proofs_verify_on_chain(oml):
    registry = oml.chain.contract("ModelRegistry")
    tree = FingerprintTree(oml.pairs)
    for k, r in oml.pairs:
        assert oml.chain.call(registry.functions.isFingerprint(oml.model_id, k, r, tree.proof(k, r)))
    k, r = oml.pairs[0]
    assert not oml.chain.call(registry.functions.isFingerprint(oml.model_id, k, r + "!", tree.proof(k, r)))


def test_permit_digest_signature_and_redeem_match_the_ledger(oml):
    chain = oml.chain
    signer, ledger = _signer(oml)
    now = chain.w3.eth.get_block("latest")["timestamp"]
    [p] = signer.sign_batch(oml.honest.address, oml.model_id, [query_hash("hi")], 0, now + 600, 1)
    assert chain.call(ledger.functions.permissionDigest(p.as_struct())) == signer.digest(p)
    assert chain.call(ledger.functions.isPlatformPermission(p.as_struct(), p.signature))
    token = chain.contract("LoyalToken")
    before = chain.call(token.functions.balanceOf(oml.community.address))
    chain.transact(oml.honest, ledger.functions.redeem(p.as_struct(), p.signature))
    assert chain.call(token.functions.balanceOf(oml.community.address)) == before + 10**18
    with pytest.raises(Reverted.named("PermissionAlreadyUsed")):
        chain.transact(oml.honest, ledger.functions.redeem(p.as_struct(), p.signature))


def test_permit_from_another_key_or_chain_is_rejected(oml, signers):
    chain = oml.chain
    _, ledger = _signer(oml)
    now = chain.w3.eth.get_block("latest")["timestamp"]
    rogue = PermitSigner(bytes(signers[20].key), chain.chain_id, ledger.address)
    other_chain = PermitSigner(bytes(oml.platform.key), chain.chain_id + 1, ledger.address)
    for s in (rogue, other_chain):
        [p] = s.sign_batch(oml.honest.address, oml.model_id, [query_hash("hi")], 0, now + 600, 1)
        assert not chain.call(ledger.functions.isPlatformPermission(p.as_struct(), p.signature))
        with pytest.raises(Reverted.named("InvalidPermissionSignature")):
            chain.transact(oml.honest, ledger.functions.redeem(p.as_struct(), p.signature))


def test_usage_tree_proofs_verify_in_posted_batch(oml):
    chain = oml.chain
    signer, ledger = _signer(oml)
    now = chain.w3.eth.get_block("latest")["timestamp"]
    permits = signer.sign_batch(oml.honest.address, oml.model_id, [query_hash(f"q{i}") for i in range(5)], 0, now + 600, 1)
    tree = UsageTree([signer.digest(p) for p in permits])
    receipt = chain.transact(oml.honest, ledger.functions.postUsage(oml.model_id, len(permits), tree.root))
    batch_id = next(e for e in chain.decode_events(receipt) if e.name == "UsagePosted").args["batchId"]
    for p in permits:
        assert chain.call(ledger.functions.isInBatch(batch_id, signer.digest(p), tree.proof(signer.digest(p))))
    with pytest.raises(Reverted.named("QueryBudgetExceeded")):
        chain.transact(oml.honest, ledger.functions.postUsage(oml.model_id, 10_000, tree.root))


def test_host_subsets_trace_a_leaked_pair_to_its_host(oml):
    from agents.oml.community import set_host_subset, trace_leak

    subsets = {oml.honest.address: oml.pairs[:2], oml.cheater.address: oml.pairs[2:]}
    for host, pairs in subsets.items():
        set_host_subset(oml.chain, oml.community, oml.model_id, host, pairs)
    key, response = oml.pairs[3]
    assert trace_leak(oml.chain, oml.model_id, key, response, subsets) == [oml.cheater.address]
    with pytest.raises(Reverted.named("NotCommunity")):
        set_host_subset(oml.chain, oml.honest, oml.model_id, oml.honest.address, oml.pairs[:1])
