// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title HashChainFloor
/// @notice The floor `TrainingLedger.recordTraining` is measured against (bench/ledger_gas.py): a
/// contract-enforced hash-chain append with the same calldata that stores only the new head and
/// emits the op. No owner check, no op ids, no sealing: nothing a ledger could drop and still hold
/// its guarantees. Not deployed by the suite.
contract HashChainFloor {
    mapping(uint256 chainId => bytes32) public head;

    event Appended(
        uint256 indexed chainId, bytes32 prev, bytes32 opHash, string interactionCid, string deltaCid, bytes32 deltaCommitment, bytes32 stateCommitment
    );

    error HashMismatch(bytes32 expected, bytes32 provided);

    /// @notice Start chain `chainId` at `genesis` (a non-zero head, like a ledger fork's genesis).
    function start(uint256 chainId, bytes32 genesis) external {
        head[chainId] = genesis;
    }

    function append(
        uint256 chainId,
        string calldata interactionCid,
        string calldata deltaCid,
        bytes32 deltaCommitment,
        bytes32 stateCommitment,
        bytes32 opHash
    ) external {
        bytes32 prev = head[chainId];
        bytes32 h = keccak256(
            abi.encode(prev, keccak256(bytes(interactionCid)), keccak256(bytes(deltaCid)), deltaCommitment, stateCommitment)
        );
        if (h != opHash) revert HashMismatch(h, opHash);
        head[chainId] = h;
        emit Appended(chainId, prev, h, interactionCid, deltaCid, deltaCommitment, stateCommitment);
    }
}
