"""The on-chain commitment to a fingerprint set: Loyal's one Merkle tree (`common.merkle`, OpenZeppelin's
StandardMerkleTree) over (key, response) pairs.

Leaf of a pair (what contracts check with OpenZeppelin's `MerkleProof.verify`):

    leaf = keccak256(bytes.concat(keccak256(abi.encode(keccak256(key), keccak256(response)))))

with `key` and `response` the UTF-8 bytes of the strings, i.e. the tree's leaf values are
`(keccak256(key), keccak256(response))` of ABI types `(bytes32, bytes32)`. Leaves are sorted (OZ's
default), so the root depends only on the set of pairs; a pair may appear once.
"""
from __future__ import annotations

from eth_utils import keccak

from common.merkle import StandardMerkleTree
from common.merkle import leaf_hash as _leaf_hash
from common.merkle import verify as _verify

LEAF_TYPES = ("bytes32", "bytes32")


def leaf_values(key: str, response: str) -> tuple[bytes, bytes]:
    """The tree's value for one pair: the hashes of its UTF-8 strings."""
    return keccak(key.encode()), keccak(response.encode())


def leaf(key: str, response: str) -> bytes:
    """The 32-byte leaf committing to one fingerprint pair."""
    return _leaf_hash(LEAF_TYPES, leaf_values(key, response))


class FingerprintTree:
    """Merkle tree over fingerprint pairs; `root` goes on-chain, `proof(key, response)` backs a claim."""

    def __init__(self, pairs: list[tuple[str, str]]):
        if not pairs:
            raise ValueError("cannot commit to an empty fingerprint set")
        values = [leaf_values(k, r) for k, r in pairs]
        if len(set(values)) != len(values):
            raise ValueError("duplicate fingerprint pair in the set")
        self.tree = StandardMerkleTree.of(values, LEAF_TYPES)

    @property
    def root(self) -> bytes:
        return self.tree.root

    def proof(self, key: str, response: str) -> list[bytes]:
        """Sibling hashes from the pair's leaf up to the root (KeyError if the pair is not in the set)."""
        try:
            return self.tree.proof(leaf_values(key, response))
        except KeyError:
            raise KeyError("pair is not in this fingerprint set") from None


def verify(proof: list[bytes], root: bytes, key: str, response: str) -> bool:
    """Same check as OpenZeppelin's MerkleProof.verify on the pair's leaf."""
    return _verify(root, LEAF_TYPES, leaf_values(key, response), proof)
