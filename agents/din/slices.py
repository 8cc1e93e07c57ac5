"""The owner's concealed test set: one slice per round under one Merkle root.

At creation the owner cuts its held-out test set into `rounds` slices (sample i goes to slice
i mod rounds, so every slice mixes the classes like the whole set), hashes each slice's canonical
bytes (`Shard.to_bytes`) and commits to `testSliceRoot`, the root of an OpenZeppelin
StandardMerkleTree (`common.merkle`) over the leaves `(uint256 round, bytes32 keccak(slice))`.
Round r's slice is revealed only after round r's updates are revealed (`DinTasks.revealTestSlice`
checks the leaf against the root with OpenZeppelin's MerkleProof); evaluators check the fetched
bytes against the revealed hash and score round r on slice r alone. A participant therefore never
sees the data its update of round r is scored on before that update is fixed.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from eth_utils import keccak

from common.merkle import StandardMerkleTree
from ml.din.data import Shard

LEAF_TYPES = ("uint256", "bytes32")


@dataclass(frozen=True)
class TestSlices:
    """The per-round slices of a test set and their Merkle tree."""
    __test__ = False  # not a pytest class

    slices: tuple[Shard, ...]

    @classmethod
    def cut(cls, test: Shard, rounds: int) -> "TestSlices":
        """Slice r holds samples r, r + rounds, r + 2 * rounds, ... of `test`."""
        if rounds < 1 or len(test) < rounds:
            raise ValueError(f"cannot cut a test set of {len(test)} samples into {rounds} slices")
        return cls(tuple(Shard(test.x[r::rounds], test.y[r::rounds]) for r in range(rounds)))

    def blob(self, round_: int) -> bytes:
        return self.slices[round_].to_bytes()

    def hash(self, round_: int) -> bytes:
        """keccak256 of slice `round_`'s canonical bytes (its leaf's second field)."""
        return keccak(self.blob(round_))

    @cached_property
    def tree(self) -> StandardMerkleTree:
        return StandardMerkleTree.of([(r, self.hash(r)) for r in range(len(self.slices))], LEAF_TYPES)

    @property
    def root(self) -> bytes:
        """`DinTasks.TaskParams.testSliceRoot`."""
        return self.tree.root

    def proof(self, round_: int) -> list[bytes]:
        return self.tree.proof((round_, self.hash(round_)))


def slice_from(blob: bytes, expected_hash: bytes, round_: int) -> Shard:
    """Parse a fetched slice after checking its bytes against the hash revealed on-chain."""
    if keccak(blob) != expected_hash:
        raise ValueError(f"round {round_}: the fetched test slice does not match its on-chain hash")
    return Shard.from_bytes(blob)
