// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

/// @title OpMerkle
/// @notice The Merkle tree TrainingLedger seals ops into: OpenZeppelin's StandardMerkleTree with the
/// leaves kept in op-id order, i.e. `StandardMerkleTree.of(values, ["uint256", "bytes32"], {sortLeaves: false})`
/// of OpenZeppelin's merkle-tree npm package over `values[i] = [opId, opHash]` (Python: `common.merkle`).
/// @dev Leaf of op `opId` with hash `opHash`:
///     keccak256(bytes.concat(keccak256(abi.encode(opId, opHash))))
/// (the StandardMerkleTree double hash, so an inner node never passes as a leaf).
/// The tree is OpenZeppelin's array of 2n-1 nodes: `tree[2n-2-i]` is leaf `i`, and
/// `tree[j] = commutativeKeccak256(tree[2j+1], tree[2j+2])` for j = n-2 down to 0, the root being `tree[0]`.
/// Numbering the nodes from the end (node `s` is `tree[2n-2-s]`, so node i is leaf i for i < n), node `n+k` is
/// the hash of nodes `2k` and `2k+1`: a queue that starts with the leaves in order, pops two nodes and
/// pushes their parent, n-1 times. For n = 5, leaves l0..l4, the root is
/// H(H(l2, l3), H(l4, H(l0, l1))); a power-of-two count gives the usual complete tree.
/// A proof is the list of siblings from the leaf up (OpenZeppelin's `getProof`); `MerkleProof.verify` checks it.
library OpMerkle {
    /// @notice The leaf committing to op `opId` with hash `opHash`.
    function leaf(uint256 opId, bytes32 opHash) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(opId, opHash))));
    }

    /// @notice Root over `leaves` (non-empty, in order); overwrites the array while hashing.
    /// @dev Runs that queue in place: node `s` lives in slot `s` if s < n, else in slot `s - n`. Step k
    /// writes node `n+k` to slot k, whose node k was already consumed (at step k/2); each slot is written once.
    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        uint256 n = leaves.length;
        if (n == 1) return leaves[0];
        unchecked {
            // k < n - 1 and a, b < 2n: no overflow for any array that fits in memory.
            for (uint256 k = 0; k < n - 1; ++k) {
                uint256 a = 2 * k;
                uint256 b = a + 1;
                if (a >= n) a -= n;
                if (b >= n) b -= n;
                leaves[k] = Hashes.commutativeKeccak256(leaves[a], leaves[b]);
            }
            return leaves[n - 2];
        }
    }

    /// @notice OpenZeppelin MerkleProof.verify of `leafHash` against `rootHash`.
    function verify(bytes32[] calldata proof, bytes32 rootHash, bytes32 leafHash) internal pure returns (bool) {
        return MerkleProof.verifyCalldata(proof, rootHash, leafHash);
    }
}
