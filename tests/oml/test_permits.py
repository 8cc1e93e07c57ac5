"""The platform's hand-rolled permission digest is the EIP-712 digest of the permission's typed data
(`common.typed_data`), so eth_account recovers the platform from a batch-signed permit."""
from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data

from agents.oml.permits import PermitSigner, UsageTree, permit_digest, permit_typed_data, query_hash
from common.merkle import verify

LEDGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
HOST = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PLATFORM = Account.from_key(b"\x42" * 32)


@pytest.mark.parametrize("chain_id,model_id,nonce,expiry,block", [(31337, 1, 0, 1_700_000_000, 7),
                                                                   (1, 2**200, 2**255, 2**64 - 1, 2**64 - 1)])
def test_fast_digest_equals_typed_data_digest(chain_id, model_id, nonce, expiry, block):
    signer = PermitSigner(PLATFORM.key, chain_id, LEDGER)
    qh = query_hash("what is the capital of France?")
    typed = encode_typed_data(full_message=permit_typed_data(chain_id, LEDGER, qh, HOST, model_id, nonce, expiry,
                                                             block))
    assert permit_digest(signer.separator, qh, HOST, model_id, nonce, expiry, block) == _hash_eip191_message(typed)
    assert permit_digest(signer.separator, qh, HOST, model_id, nonce, expiry, block - 1) != _hash_eip191_message(typed)


def test_batch_signatures_recover_to_the_platform_through_eth_account():
    signer = PermitSigner(PLATFORM.key, 31337, LEDGER)
    permits = signer.sign_batch(HOST, 3, [query_hash(f"q{i}") for i in range(5)], first_nonce=10, expiry=2_000_000_000,
                                 issued_block=5)
    for p in permits:
        typed = encode_typed_data(full_message=permit_typed_data(31337, LEDGER, p.query_hash, p.host, p.model_id,
                                                                 p.nonce, p.expiry, p.issued_block))
        assert Account.recover_message(typed, signature=p.signature) == PLATFORM.address
    other_ledger = encode_typed_data(full_message=permit_typed_data(31337, HOST, permits[0].query_hash, HOST, 3, 10,
                                                                    2_000_000_000, 5))
    assert Account.recover_message(other_ledger, signature=permits[0].signature) != PLATFORM.address


def test_usage_tree_proves_each_permission_once():
    digests = [permit_digest(b"\x01" * 32, query_hash(f"q{i}"), HOST, 1, i, 1, 1) for i in range(7)]
    tree = UsageTree(digests)
    assert all(verify(tree.root, ("bytes32",), (d,), tree.proof(d)) for d in digests)
    with pytest.raises(ValueError, match="duplicate"):
        UsageTree(digests + digests[:1])
    with pytest.raises(ValueError, match="at least one"):
        UsageTree([])
