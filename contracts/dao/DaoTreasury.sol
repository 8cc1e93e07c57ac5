// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title DaoTreasury
/// @notice Holds the DAO's LoyalToken and pays bounties (audits, inspections, whistle-blower
/// rewards) decided by vote. Each bounty reference is paid at most once.
/// @dev The owner is the governor. Anyone may fund it with a plain ERC-20 transfer.
contract DaoTreasury is Ownable {
    using SafeERC20 for IERC20;

    IERC20 public immutable token;
    mapping(bytes32 bountyRef => bool) public bountyPaid;

    event BountyPaid(bytes32 indexed bountyRef, address indexed recipient, uint256 amount);

    error ZeroAddress();
    error ZeroAmount();
    error BountyAlreadyPaid(bytes32 bountyRef);
    error InsufficientTreasury(uint256 requested, uint256 available);

    /// @param token_ LoyalToken.
    /// @param governance owner (the governor).
    constructor(IERC20 token_, address governance) Ownable(governance) {
        token = token_;
    }

    /// @notice Pay bounty `bountyRef` of `amount` tokens to `recipient` (governance only).
    function payBounty(bytes32 bountyRef, address recipient, uint256 amount) external onlyOwner {
        if (recipient == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (bountyPaid[bountyRef]) revert BountyAlreadyPaid(bountyRef);
        uint256 available = token.balanceOf(address(this));
        if (amount > available) revert InsufficientTreasury(amount, available);
        bountyPaid[bountyRef] = true;
        emit BountyPaid(bountyRef, recipient, amount);
        token.safeTransfer(recipient, amount);
    }
}
