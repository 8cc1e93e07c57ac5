"""The on-chain commitment to a fingerprint set: a Merkle tree over (key, response) pairs.

Leaf format (what contracts check with OpenZeppelin's `MerkleProof.verify`):

    leaf = keccak256(bytes.concat(keccak256(abi.encode(keccak256(key), keccak256(response)))))

with `key` and `response` the UTF-8 bytes of the strings. The double hash is OpenZeppelin's
StandardMerkleTree convention (it keeps a 64-byte inner node from passing as a leaf). Inner nodes
hash their two children in sorted order (OZ's commutative keccak), so a proof is just the sibling
list. Leaves are sorted before building, so the root depends only on the set of pairs.
"""
from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak


def leaf(key: str, response: str) -> bytes:
    """The 32-byte leaf committing to one fingerprint pair."""
    inner = keccak(encode(["bytes32", "bytes32"], [keccak(key.encode()), keccak(response.encode())]))
    return keccak(inner)


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    if not leaves:
        raise ValueError("cannot commit to an empty fingerprint set")
    level = sorted(leaves)
    if len(set(level)) != len(level):
        raise ValueError("duplicate fingerprint pair in the set")
    levels = [level]
    while len(level) > 1:
        nxt = [_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])  # odd node is promoted unchanged
        levels.append(nxt)
        level = nxt
    return levels


class FingerprintTree:
    """Merkle tree over fingerprint pairs; `root` goes on-chain, `proof(...)` backs a claim."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self._levels = _levels([leaf(k, r) for k, r in pairs])
        self._index = {h: i for i, h in enumerate(self._levels[0])}

    @property
    def root(self) -> bytes:
        return self._levels[-1][0]

    def proof(self, key: str, response: str) -> list[bytes]:
        """Sibling hashes from the pair's leaf up to the root."""
        h = leaf(key, response)
        if h not in self._index:
            raise KeyError("pair is not in this fingerprint set")
        i, out = self._index[h], []
        for level in self._levels[:-1]:
            sib = i ^ 1
            if sib < len(level):
                out.append(level[sib])
            i //= 2
        return out


def verify(proof: list[bytes], root: bytes, key: str, response: str) -> bool:
    """Same check as OpenZeppelin's MerkleProof.verify on the pair's leaf."""
    h = leaf(key, response)
    for sib in proof:
        h = _pair(h, sib)
    return h == root
