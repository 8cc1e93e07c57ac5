"""Python mirror of TrainingLedger's hashes: fork genesis, op hash chain, and the OpMerkle block tree
(`common.merkle`, the one Merkle tree, with unsorted leaves).

Same preimages as the contract (see its NatSpec); tests check both sides agree on a real chain.
"""
from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from common.merkle import StandardMerkleTree, leaf_hash, verify

OP_TYPEHASH = keccak(
    b"LoyalLedgerOp(uint256 chainId,address ledger,uint256 userModelId,uint256 seq,bytes32 prevOpHash,"
    b"bytes32 interactionCidHash,bytes32 deltaCidHash,bytes32 deltaCommitment,bytes32 stateCommitment)"
)
GENESIS_TYPEHASH = keccak(
    b"LoyalLedgerFork(uint256 chainId,address ledger,uint256 userModelId,uint256 baseModelId,"
    b"bytes32 baseModelCidHash,address owner,uint256 parentId,uint256 parentSeq,bytes32 parentOpHash,"
    b"uint256 generation)"
)


def genesis_hash(chain_id: int, ledger: str, user_model_id: int, base_model_id: int, base_cid: str, owner: str,
                 parent_id: int = 0, parent_seq: int = 0, parent_op_hash: bytes = b"\0" * 32,
                 generation: int = 1) -> bytes:
    """A fork's genesis: for a fork of the base model (generation 1) parent 0, seq 0, hash 0; for a
    fork of fork `parent_id`'s export at op `parent_seq`, that op's hash and the parent's generation + 1."""
    return keccak(
        encode(
            ["bytes32", "uint256", "address", "uint256", "uint256", "bytes32", "address", "uint256", "uint256",
             "bytes32", "uint256"],
            [GENESIS_TYPEHASH, chain_id, to_checksum_address(ledger), user_model_id, base_model_id,
             keccak(base_cid.encode()), to_checksum_address(owner), parent_id, parent_seq, parent_op_hash, generation],
        )
    )


@dataclass(frozen=True)
class OpFields:
    """The fields an op hash commits to."""

    user_model_id: int
    seq: int
    prev_op_hash: bytes
    interaction_cid: str
    delta_cid: str
    delta_commitment: bytes
    state_commitment: bytes


def op_hash(chain_id: int, ledger: str, f: OpFields) -> bytes:
    return keccak(
        encode(
            ["bytes32", "uint256", "address", "uint256", "uint256", "bytes32", "bytes32", "bytes32", "bytes32", "bytes32"],
            [OP_TYPEHASH, chain_id, to_checksum_address(ledger), f.user_model_id, f.seq, f.prev_op_hash,
             keccak(f.interaction_cid.encode()), keccak(f.delta_cid.encode()), f.delta_commitment, f.state_commitment],
        )
    )


LEAF_TYPES = ("uint256", "bytes32")


def leaf(op_id: int, op_hash_: bytes) -> bytes:
    """OpMerkle.leaf: keccak256(bytes.concat(keccak256(abi.encode(opId, opHash))))."""
    return leaf_hash(LEAF_TYPES, (op_id, op_hash_))


class BlockTree:
    """The tree `sealBlock` builds over ops `first_op_id ..`: Loyal's one Merkle tree (`common.merkle`)
    with leaf values `(opId, opHash)` kept in id order, i.e. OpenZeppelin's
    `StandardMerkleTree.of(values, ["uint256", "bytes32"], {sortLeaves: false})`."""

    def __init__(self, first_op_id: int, op_hashes: list[bytes]):
        if not op_hashes:
            raise ValueError("a sealed block holds at least one op")
        self.first_op_id = first_op_id
        self.tree = StandardMerkleTree.of([(first_op_id + i, h) for i, h in enumerate(op_hashes)], LEAF_TYPES,
                                          sort_leaves=False)

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def size(self) -> int:
        return len(self.tree)

    def proof(self, op_id: int) -> list[bytes]:
        i = op_id - self.first_op_id
        if not 0 <= i < self.size:
            raise KeyError(f"op {op_id} is not in this block")
        return self.tree.proof(i)


def verify_proof(proof: list[bytes], root: bytes, op_id: int, op_hash_: bytes) -> bool:
    """OpenZeppelin MerkleProof.verify on the op's leaf."""
    return verify(root, LEAF_TYPES, (op_id, op_hash_), proof)
