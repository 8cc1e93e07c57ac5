"""EIP-712 typed data, built one way for every signature Loyal asks for.

`typed_data(domain, struct_type, message)` gives the full `{"types", "primaryType", "domain",
"message"}` dict that `eth_account.messages.encode_typed_data(full_message=...)` signs: the
standard `EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)` and
one flat struct type (fields of atomic types: uintN, address, bytes32, bool, string, bytes).

Standard library only: the Ape scripts (`scripts/`, their own venv with web3 < 8) import it too.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StructType:
    """An EIP-712 struct type: its name and its (field name, Solidity type) pairs in order."""

    name: str
    fields: tuple[tuple[str, str], ...]

    def encode_type(self) -> str:
        """EIP-712 `encodeType`, e.g. `Ballot(uint256 proposalId,uint8 support,address voter,uint256 nonce)`;
        its keccak256 is the contract's TYPEHASH."""
        return f"{self.name}({','.join(f'{t} {n}' for n, t in self.fields)})"

    def as_types(self) -> list[dict[str, str]]:
        return [{"name": n, "type": t} for n, t in self.fields]


EIP712_DOMAIN = StructType("EIP712Domain", (
    ("name", "string"), ("version", "string"), ("chainId", "uint256"), ("verifyingContract", "address")))

BALLOT = StructType("Ballot", (
    ("proposalId", "uint256"), ("support", "uint8"), ("voter", "address"), ("nonce", "uint256")))
"""OpenZeppelin Governor's `castVoteBySig` ballot (the DAO agent and the Ape vote-by-signature script)."""

QUALITY_ATTESTATION = StructType("QualityAttestation", (
    ("evaluator", "address"), ("userModelId", "uint256"), ("fromSeq", "uint256"), ("toSeq", "uint256"),
    ("toOpHash", "bytes32"), ("evalDataHash", "bytes32"), ("lossBefore", "uint256"), ("lossAfter", "uint256")))
"""A staked evaluator's held-out-loss statement on a range of a fork's ops (TrainingLedger rewards)."""


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain of one contract on one chain (OpenZeppelin `EIP712(name, version)`)."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "chainId": int(self.chain_id),
                "verifyingContract": self.verifying_contract}


def typed_data(domain: Domain, struct_type: StructType, message: Mapping[str, Any]) -> dict[str, Any]:
    """The full typed-data dict for `message`, which must name exactly `struct_type`'s fields."""
    names = [n for n, _ in struct_type.fields]
    if set(message) != set(names):
        missing, extra = sorted(set(names) - set(message)), sorted(set(message) - set(names))
        raise ValueError(f"{struct_type.name} message: missing {missing}, unexpected {extra}")
    return {
        "types": {EIP712_DOMAIN.name: EIP712_DOMAIN.as_types(), struct_type.name: struct_type.as_types()},
        "primaryType": struct_type.name,
        "domain": domain.as_dict(),
        "message": {n: message[n] for n in names},
    }
