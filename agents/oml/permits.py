"""Permissions σ(q) and usage roots, bit-for-bit what `UsageLedger` and `Claims` check.

A permission is EIP-712 typed data `Permission(bytes32 queryHash,address host,uint256 modelId,
uint256 nonce,uint64 expiry,uint64 issuedBlock)` under the domain ("Loyal OML UsageLedger", "1", chainId, ledger).
`issuedBlock` is the chain head when the platform signed: `Claims` accepts σ(key) as a defence only if
it is from a block before the claim's commitment. `PermitSigner` hashes and signs many permissions per call with libsecp256k1 (coincurve): that is
the platform's batch signing. A usage root is the root of Loyal's one Merkle tree (`common.merkle`,
OpenZeppelin's StandardMerkleTree) over `usageLeaf(digest) = keccak256(keccak256(abi.encode(digest)))`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import coincurve
from Crypto.Hash import keccak as _keccak
from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from common.merkle import StandardMerkleTree
from common.typed_data import EIP712_DOMAIN, Domain, StructType, typed_data

PERMISSION = StructType("Permission", (
    ("queryHash", "bytes32"), ("host", "address"), ("modelId", "uint256"), ("nonce", "uint256"), ("expiry", "uint64"),
    ("issuedBlock", "uint64")))
DOMAIN_TYPEHASH = keccak(EIP712_DOMAIN.encode_type().encode())
PERMISSION_TYPEHASH = keccak(PERMISSION.encode_type().encode())
LEDGER_NAME = "Loyal OML UsageLedger"
LEDGER_VERSION = "1"


def query_hash(query: str) -> bytes:
    """What a permission names: keccak256 of the query's UTF-8 bytes (never the query itself)."""
    return keccak(query.encode())


def domain_separator(chain_id: int, ledger: str) -> bytes:
    return keccak(encode(["bytes32", "bytes32", "bytes32", "uint256", "address"],
                         [DOMAIN_TYPEHASH, keccak(LEDGER_NAME.encode()), keccak(LEDGER_VERSION.encode()), chain_id,
                          to_checksum_address(ledger)]))


@dataclass(frozen=True)
class Permit:
    """A signed permission: the struct fields plus the platform's 65-byte signature."""
    query_hash: bytes
    host: str
    model_id: int
    nonce: int
    expiry: int
    signature: bytes
    issued_block: int   # the chain head when the platform signed it

    def as_struct(self) -> tuple:
        """The tuple web3 passes as `UsageLedger.Permission`."""
        return (self.query_hash, to_checksum_address(self.host), self.model_id, self.nonce, self.expiry,
                self.issued_block)

    def to_json(self) -> dict:
        d = asdict(self)
        d["query_hash"] = "0x" + self.query_hash.hex()
        d["signature"] = "0x" + self.signature.hex()
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Permit":
        return cls(bytes.fromhex(d["query_hash"][2:]), to_checksum_address(d["host"]), int(d["model_id"]),
                   int(d["nonce"]), int(d["expiry"]), bytes.fromhex(d["signature"][2:]), int(d["issued_block"]))


def permit_typed_data(chain_id: int, ledger: str, qhash: bytes, host: str, model_id: int, nonce: int,
                      expiry: int, issued_block: int) -> dict:
    """The permission as EIP-712 typed data (`common.typed_data`): what `permit_digest` hashes by hand."""
    return typed_data(Domain(LEDGER_NAME, LEDGER_VERSION, chain_id, to_checksum_address(ledger)), PERMISSION,
                      {"queryHash": qhash, "host": to_checksum_address(host), "modelId": model_id, "nonce": nonce,
                       "expiry": expiry, "issuedBlock": issued_block})


def permit_digest(separator: bytes, qhash: bytes, host: str, model_id: int, nonce: int, expiry: int,
                  issued_block: int) -> bytes:
    """EIP-712 digest of `permit_typed_data`, ABI-encoded by hand for speed (every field is one static
    32-byte word); tests/oml/test_permits.py checks it equals eth_account's hash of the typed data."""
    if len(qhash) != 32:
        raise ValueError("query hash must be 32 bytes")
    struct = _k256(PERMISSION_TYPEHASH + qhash + bytes(12) + bytes.fromhex(host[2:])
                   + model_id.to_bytes(32, "big") + nonce.to_bytes(32, "big") + expiry.to_bytes(32, "big")
                   + issued_block.to_bytes(32, "big"))
    return _k256(b"\x19\x01" + separator + struct)


def _k256(data: bytes) -> bytes:
    """keccak256 straight from pycryptodome (eth_utils.keccak adds validation costing ~half the time)."""
    return _keccak.new(digest_bits=256, data=data).digest()


class PermitSigner:
    """The platform key signing permissions for one UsageLedger on one chain."""

    def __init__(self, private_key: bytes, chain_id: int, ledger: str):
        self._key = coincurve.PrivateKey(private_key)
        self.separator = domain_separator(chain_id, ledger)

    def digest(self, p: Permit) -> bytes:
        return permit_digest(self.separator, p.query_hash, p.host, p.model_id, p.nonce, p.expiry, p.issued_block)

    def sign_batch(self, host: str, model_id: int, qhashes: list[bytes], first_nonce: int, expiry: int,
                   issued_block: int) -> list[Permit]:
        """Sign one permission per query hash, nonces `first_nonce`, `first_nonce + 1`, ..., all
        issued at block `issued_block` (the chain head the platform read)."""
        host = to_checksum_address(host)
        out = []
        for i, qh in enumerate(qhashes):
            nonce = first_nonce + i
            d = permit_digest(self.separator, qh, host, model_id, nonce, expiry, issued_block)
            rs_v = self._key.sign_recoverable(d, hasher=None)  # r || s || recovery id (low-s)
            out.append(Permit(qh, host, model_id, nonce, expiry, rs_v[:64] + bytes([rs_v[64] + 27]), issued_block))
        return out


USAGE_LEAF_TYPES = ("bytes32",)


class UsageTree:
    """Loyal's one Merkle tree (`common.merkle`, sorted leaves) over permission digests, as
    `UsageLedger.isInBatch` checks it; a permission may appear once in a batch."""

    def __init__(self, digests: list[bytes]):
        if not digests:
            raise ValueError("a usage batch needs at least one permission")
        if len(set(digests)) != len(digests):
            raise ValueError("duplicate permission in a usage batch")
        self.tree = StandardMerkleTree.of([(d,) for d in digests], USAGE_LEAF_TYPES)

    @property
    def root(self) -> bytes:
        return self.tree.root

    def proof(self, digest: bytes) -> list[bytes]:
        return self.tree.proof((digest,))


REQUEST_TAG = b"Loyal OML permit request v1"


def request_digest(host: str, model_id: int, qhashes: list[bytes], issued_at: int, request_id: bytes) -> bytes:
    """What a host signs (EIP-191 personal message) to ask the platform for permits: its address,
    the model, the query hashes in order, the time of the request and a random 16-byte request id
    (so two identical requests in the same second are two requests, and a copy is a replay)."""
    if len(request_id) != 16:
        raise ValueError("request id must be 16 bytes")
    return _k256(REQUEST_TAG + bytes.fromhex(host[2:]) + model_id.to_bytes(32, "big")
                 + issued_at.to_bytes(8, "big") + request_id + b"".join(qhashes))

