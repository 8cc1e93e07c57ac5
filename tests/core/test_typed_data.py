"""common.typed_data: the one EIP-712 typed-data builder; its struct types are the contracts' own."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from eth_abi import encode
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils import keccak

from common.typed_data import BALLOT, EIP712_DOMAIN, Domain, typed_data

REPO = Path(__file__).resolve().parents[2]
GOVERNOR = "0x00000000000000000000000000000000000000Aa"
VOTER = "0x00000000000000000000000000000000000000bB"


def test_builds_the_full_dict_eth_account_signs():
    data = typed_data(Domain("LoyalDAO", "1", 31337, GOVERNOR), BALLOT,
                      {"voter": VOTER, "nonce": 4, "support": 1, "proposalId": 7})
    assert data == {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "Ballot": [{"name": "proposalId", "type": "uint256"}, {"name": "support", "type": "uint8"},
                       {"name": "voter", "type": "address"}, {"name": "nonce", "type": "uint256"}],
        },
        "primaryType": "Ballot",
        "domain": {"name": "LoyalDAO", "version": "1", "chainId": 31337, "verifyingContract": GOVERNOR},
        "message": {"proposalId": 7, "support": 1, "voter": VOTER, "nonce": 4},
    }
    # The EIP-712 digest by hand, from encode_type: what a contract's TYPEHASH-based check computes.
    separator = keccak(encode(["bytes32", "bytes32", "bytes32", "uint256", "address"],
                              [keccak(EIP712_DOMAIN.encode_type().encode()), keccak(b"LoyalDAO"), keccak(b"1"),
                               31337, GOVERNOR]))
    struct = keccak(encode(["bytes32", "uint256", "uint8", "address", "uint256"],
                           [keccak(BALLOT.encode_type().encode()), 7, 1, VOTER, 4]))
    assert _hash_eip191_message(encode_typed_data(full_message=data)) == keccak(b"\x19\x01" + separator + struct)


def test_message_must_name_exactly_the_fields():
    domain = Domain("LoyalDAO", "1", 1, GOVERNOR)
    with pytest.raises(ValueError, match=r"missing \['nonce'\], unexpected \[\]"):
        typed_data(domain, BALLOT, {"proposalId": 1, "support": 1, "voter": VOTER})
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        typed_data(domain, BALLOT, {"proposalId": 1, "support": 1, "voter": VOTER, "nonce": 0, "extra": 1})


def test_imports_only_the_standard_library():
    """The Ape scripts (their own venv, web3 < 8) import it: it must load without site-packages."""
    code = f"import sys; sys.path.insert(0, {str(REPO)!r}); import common.typed_data"
    r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_struct_types_are_the_contracts_typehashes(chain):
    from agents.dao.datacenter import ATTESTATION
    from agents.oml.host import AGREEMENT
    from agents.oml.permits import PERMISSION

    for contract, constant, struct_type in (("DaoGovernor", "BALLOT_TYPEHASH", BALLOT),
                                            ("HardwareRegistry", "ATTESTATION_TYPEHASH", ATTESTATION),
                                            ("HostAgreements", "AGREEMENT_TYPEHASH", AGREEMENT),
                                            ("UsageLedger", "PERMISSION_TYPEHASH", PERMISSION)):
        on_chain = chain.call(getattr(chain.contract(contract).functions, constant)())
        assert bytes(on_chain) == keccak(struct_type.encode_type().encode()), f"{contract}.{constant}"
