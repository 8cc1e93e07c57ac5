// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

/// @title OpMerkle
/// @notice The Merkle tree TrainingLedger seals ops into, checkable with OpenZeppelin's MerkleProof.
/// @dev Leaf of op `opId` with hash `opHash`:
///     keccak256(bytes.concat(keccak256(abi.encode(opId, opHash))))
/// (OpenZeppelin's StandardMerkleTree double hash, so an inner node never passes as a leaf).
/// Leaves stay in op-id order. Each level pairs neighbours (0,1), (2,3), ... with OpenZeppelin's
/// commutative keccak (sorted pair); an odd last node is carried up unchanged. A proof is the list of
/// siblings from the leaf up, skipping levels where the node was carried.
library OpMerkle {
    /// @notice The leaf committing to op `opId` with hash `opHash`.
    function leaf(uint256 opId, bytes32 opHash) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(opId, opHash))));
    }

    /// @notice Root over `leaves` (non-empty); overwrites the array while hashing.
    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        uint256 n = leaves.length;
        while (n > 1) {
            uint256 half = n / 2;
            for (uint256 i = 0; i < half; ++i) {
                leaves[i] = Hashes.commutativeKeccak256(leaves[2 * i], leaves[2 * i + 1]);
            }
            if (n % 2 == 1) leaves[half] = leaves[n - 1];
            n = half + (n % 2);
        }
        return leaves[0];
    }

    /// @notice OpenZeppelin MerkleProof.verify of `leafHash` against `rootHash`.
    function verify(bytes32[] calldata proof, bytes32 rootHash, bytes32 leafHash) internal pure returns (bool) {
        return MerkleProof.verifyCalldata(proof, rootHash, leafHash);
    }
}
