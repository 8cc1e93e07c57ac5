"""The one Merkle tree of Loyal: OpenZeppelin's `StandardMerkleTree` (npm `@openzeppelin/merkle-tree`).

Every root Loyal puts on chain (training-ledger blocks, usage batches, fingerprint sets) comes from
this tree, and every proof it gives passes OpenZeppelin's `MerkleProof.verify`:

- a leaf is `keccak256(keccak256(abi.encode(values)))` for the tree's ABI `types` (the double hash
  keeps a 64-byte inner node from passing as a leaf);
- an inner node is the commutative keccak of its two children, `keccak256(min(a, b) || max(a, b))`,
  so a proof is just the list of siblings from the leaf up;
- the tree is OZ's array of `2n - 1` nodes: the leaves fill the end in reverse order
  (`tree[2n - 2 - i]` is leaf `i`), then `tree[i] = node_hash(tree[2i + 1], tree[2i + 2])` down to the
  root `tree[0]`;
- leaves are sorted by hash first (`sort_leaves=True`, OZ's default), so the root depends only on
  the set of values; `sort_leaves=False` keeps them in the given order (a contract that builds the
  tree itself, like `OpMerkle`, can then agree with it).

`tests/core/test_merkle.py` checks roots and proofs against the npm package itself.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from Crypto.Hash import keccak as _keccak
from eth_abi import encode

Value = Sequence[Any]


def _k256(data: bytes) -> bytes:
    return _keccak.new(digest_bits=256, data=data).digest()


def leaf_hash(types: Sequence[str], value: Value) -> bytes:
    """OZ's standard leaf: `keccak256(keccak256(abi.encode(value)))` with `value` typed by `types`."""
    if len(value) != len(types):
        raise ValueError(f"a leaf value has {len(types)} fields ({', '.join(types)}), got {len(value)}")
    return _k256(_k256(encode(list(types), list(value))))


def node_hash(a: bytes, b: bytes) -> bytes:
    """OZ's commutative keccak (`Hashes.commutativeKeccak256`): the hash of the sorted pair."""
    return _k256(a + b) if a < b else _k256(b + a)


def process_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` leads to from `leaf` (OZ `MerkleProof.processProof`)."""
    h = leaf
    for sibling in proof:
        h = node_hash(h, sibling)
    return h


def verify(root: bytes, types: Sequence[str], value: Value, proof: Sequence[bytes]) -> bool:
    """Whether `proof` shows `value` (typed by `types`) is a leaf under `root` (OZ `StandardMerkleTree.verify`)."""
    return process_proof(leaf_hash(types, value), proof) == root


class StandardMerkleTree:
    """OZ's StandardMerkleTree over `values` (each a sequence matching the ABI `types`).

    `StandardMerkleTree.of(values, types)` builds it; `root`, `proof(i or value)` and `verify` follow
    the npm package. Duplicate values are allowed, as there (a caller whose leaves must be distinct
    checks that itself); a proof by value then proves the last of them, as there.
    """

    def __init__(self, values: Sequence[Value], types: Sequence[str], *, sort_leaves: bool = True):
        if not values:
            raise ValueError("a Merkle tree needs at least one leaf")
        self.types = tuple(types)
        self.values = [tuple(v) for v in values]
        hashed = [(leaf_hash(self.types, v), i) for i, v in enumerate(self.values)]
        if sort_leaves:
            hashed.sort(key=lambda hv: hv[0])  # stable, like the npm package's Array.sort
        n = len(hashed)
        tree: list[bytes] = [b""] * (2 * n - 1)
        self._tree_index = [0] * n  # value index -> position of its leaf in `tree`
        for leaf_no, (h, value_index) in enumerate(hashed):
            tree[len(tree) - 1 - leaf_no] = h
            self._tree_index[value_index] = len(tree) - 1 - leaf_no
        for i in range(n - 2, -1, -1):
            tree[i] = node_hash(tree[2 * i + 1], tree[2 * i + 2])
        self.tree = tree
        self._by_leaf = {tree[self._tree_index[i]]: i for i in range(n)}

    @classmethod
    def of(cls, values: Sequence[Value], types: Sequence[str], *, sort_leaves: bool = True) -> "StandardMerkleTree":
        return cls(values, types, sort_leaves=sort_leaves)

    @property
    def root(self) -> bytes:
        return self.tree[0]

    def __len__(self) -> int:
        return len(self.values)

    def leaf_hash(self, value: Value) -> bytes:
        return leaf_hash(self.types, value)

    def index_of(self, value: Value) -> int:
        """The index in `values` of `value` (KeyError if it is not a leaf)."""
        try:
            return self._by_leaf[self.leaf_hash(value)]
        except KeyError:
            raise KeyError("value is not a leaf of this tree") from None

    def proof(self, leaf: int | Value) -> list[bytes]:
        """Sibling hashes from the leaf of `values[leaf]` (an index) or of the value `leaf` up to the root."""
        i = leaf if isinstance(leaf, int) else self.index_of(leaf)
        if not 0 <= i < len(self.values):
            raise IndexError(f"leaf index {i} out of range for {len(self.values)} values")
        node, out = self._tree_index[i], []
        while node > 0:
            out.append(self.tree[node - 1 if node % 2 == 0 else node + 1])
            node = (node - 1) // 2
        return out

    def verify(self, leaf: int | Value, proof: Sequence[bytes]) -> bool:
        """Whether `proof` proves `values[leaf]` (an index) or the value `leaf` against this root."""
        value = self.values[leaf] if isinstance(leaf, int) else leaf
        return verify(self.root, self.types, value, proof)
