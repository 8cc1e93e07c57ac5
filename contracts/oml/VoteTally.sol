// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title VoteTally
/// @notice The one decision rule for a claim put to the verifiers (`Claims` and `LineageClaims`):
/// a strict majority of the verifiers registered at the reveal confirms; the claim is rejected once
/// rejections make that majority unreachable (half or more) or voting has ended without it.
library VoteTally {
    enum Outcome {
        Pending,
        Confirmed,
        Rejected
    }

    /// @param confirmations votes to confirm so far
    /// @param rejections votes to reject so far
    /// @param verifiers verifiers registered at the reveal (the electorate)
    /// @param votingOver whether the voting window has ended
    function outcome(uint256 confirmations, uint256 rejections, uint256 verifiers, bool votingOver)
        internal
        pure
        returns (Outcome)
    {
        if (confirmations * 2 > verifiers) return Outcome.Confirmed;
        if (rejections * 2 >= verifiers || votingOver) return Outcome.Rejected;
        return Outcome.Pending;
    }
}
