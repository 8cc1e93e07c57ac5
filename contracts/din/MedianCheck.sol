// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title MedianCheck
/// @notice Verifies a proposed median by counting instead of sorting (BlockFlow scoring).
/// @dev The median of n values is the lower median: the value at sorted index (n - 1) / 2.
/// `m` is that value iff fewer than or exactly idx values lie below it and more than idx values
/// lie at or below it. O(n) comparisons, no sort, no writes.
library MedianCheck {
    /// @notice How many of `values` lie below, at and above `m`.
    function count(uint32[] memory values, uint32 m)
        internal
        pure
        returns (uint256 below, uint256 equal, uint256 above)
    {
        for (uint256 i = 0; i < values.length; i++) {
            uint32 v = values[i];
            if (v < m) below++;
            else if (v == m) equal++;
            else above++;
        }
    }

    /// @notice Whether `m` is the lower median of `values` (false for an empty list).
    function isLowerMedian(uint32[] memory values, uint32 m) internal pure returns (bool) {
        if (values.length == 0) return false;
        uint256 idx = (values.length - 1) / 2;
        (uint256 below, uint256 equal,) = count(values, m);
        return below <= idx && below + equal > idx;
    }
}
