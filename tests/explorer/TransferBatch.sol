// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @notice Test and benchmark helper (not part of the suite): one transaction makes `n` LoyalToken
/// `Transfer` events, so the explorer's index can be fed 100k suite events cheaply.
contract TransferBatch {
    function spray(IERC20 token, address[] calldata to, uint256 each, uint256 n) external {
        for (uint256 i = 0; i < n; i++) {
            token.transfer(to[i % to.length], each);
        }
    }
}
