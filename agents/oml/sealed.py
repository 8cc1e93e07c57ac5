"""Sealed claim keys, for endpoints that sign nothing (a leaked copy, a rogue server).

At commit the prover encrypts the commitment's opening — key, response, accused host, endpoint, salt
— to every registered verifier with ECIES over secp256k1 (`eciespy`; the verifiers' Ethereum keys,
whose public halves they publish with `Claims.setSealKey`) and posts the ciphertexts with
`Claims.commitSealed` (ABI `(address[] verifiers, bytes[] ciphertexts)`, emitted as `KeysSealed`).
Each verifier decrypts its own, checks the opening hashes to the commitment (`leakCommitment`), queries
the endpoint **before the key is public** and commits `observationHash(commitment, verifier,
observed, salt)` with `Claims.observe`. After the reveal it votes with `voteObserved`, opening that
observation; the contract refuses any other vote on a sealed claim.

A ciphertext that does not decrypt, or decrypts to an opening that does not hash to the commitment,
is `SealDoesNotOpen`: the verifier records `seal-error: …` as its observation and votes against, so a
prover who seals garbage to a majority of verifiers cannot get a confirm.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import ecies
from eth_abi import decode, encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from common.errors import LoyalError

SEAL_ERROR = "seal-error: "
NO_ANSWER = "no-answer: "


class SealDoesNotOpen(LoyalError):
    """This verifier's sealed key is missing, does not decrypt, or does not open the commitment."""


@dataclass(frozen=True)
class Opening:
    """What opens a leak commitment: `Claims.leakCommitment(key, response, host, endpoint, salt)`."""
    key: str
    response: str
    host: str
    endpoint: str
    salt: bytes

    def commitment(self) -> bytes:
        return keccak(encode(["bytes32", "bytes32", "address", "bytes32", "bytes32"],
                             [keccak(self.key.encode()), keccak(self.response.encode()),
                              to_checksum_address(self.host), keccak(self.endpoint.encode()), self.salt]))

    def to_bytes(self) -> bytes:
        return json.dumps({"key": self.key, "response": self.response, "host": self.host,
                           "endpoint": self.endpoint, "salt": "0x" + self.salt.hex()}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Opening":
        d = json.loads(data)
        return cls(str(d["key"]), str(d["response"]), to_checksum_address(d["host"]), str(d["endpoint"]),
                   bytes.fromhex(str(d["salt"]).removeprefix("0x")))


def public_key(account: LocalAccount) -> bytes:
    """The 64-byte secp256k1 public key `Claims.setSealKey` takes (the account's address hashes from it)."""
    return account._key_obj.public_key.to_bytes()


def seal(opening: Opening, verifier_keys: dict[str, bytes]) -> bytes:
    """The `sealedKeys` blob: the opening encrypted to each verifier's public key."""
    if not verifier_keys:
        raise ValueError("no verifier to seal the key to")
    addrs = [to_checksum_address(a) for a in verifier_keys]
    cts = [ecies.encrypt(verifier_keys[a].hex(), opening.to_bytes()) for a in verifier_keys]
    return encode(["address[]", "bytes[]"], [addrs, cts])


def unseal(blob: bytes, verifier: LocalAccount, commitment: bytes) -> Opening:
    """This verifier's opening of `commitment` from a `KeysSealed` blob; raises SealDoesNotOpen."""
    try:
        addrs, cts = decode(["address[]", "bytes[]"], blob)
    except Exception:
        raise SealDoesNotOpen("sealed keys are not ABI (address[], bytes[])") from None
    mine = [ct for a, ct in zip(addrs, cts) if to_checksum_address(a) == verifier.address]
    if not mine:
        raise SealDoesNotOpen(f"no sealed key for verifier {verifier.address}")
    try:
        opening = Opening.from_bytes(ecies.decrypt(bytes(verifier.key), mine[0]))
    except Exception as e:  # a bad MAC, a bad point, bad JSON: all the prover's fault
        raise SealDoesNotOpen(f"sealed key does not decrypt ({type(e).__name__})") from None
    if opening.commitment() != commitment:
        raise SealDoesNotOpen("sealed key does not open the commitment")
    return opening


def observation_hash(commitment: bytes, verifier: str, observed: str, salt: bytes) -> bytes:
    """`Claims.observationHash`: what a verifier commits to before the reveal."""
    return keccak(encode(["bytes32", "address", "bytes32", "bytes32"],
                         [commitment, to_checksum_address(verifier), keccak(observed.encode()), salt]))
