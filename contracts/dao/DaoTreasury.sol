// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title DaoTreasury
/// @notice Holds the DAO's LoyalToken (an initial supply, then the gas tax on spent credits) and
/// pays, by vote, bounties (audits, inspections, whistle-blower rewards, bugs found) and awards to
/// the winning safety modules of each round of the safety-standard selection. Each bounty
/// reference is paid at most once, and each module at most once per round.
/// @dev The owner is the governor. Anyone may fund it with a plain ERC-20 transfer.
contract DaoTreasury is Ownable {
    using SafeERC20 for IERC20;

    IERC20 public immutable token;
    mapping(bytes32 bountyRef => bool) public bountyPaid;
    mapping(uint32 round => mapping(bytes32 moduleRef => bool)) public moduleAwarded;

    event BountyPaid(bytes32 indexed bountyRef, address indexed recipient, uint256 amount);
    event SafetyModuleAwarded(uint32 indexed round, bytes32 indexed moduleRef, address indexed recipient, uint256 amount);

    error ZeroAddress();
    error ZeroAmount();
    error BountyAlreadyPaid(bytes32 bountyRef);
    error ModuleAlreadyAwarded(uint32 round, bytes32 moduleRef);
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

    /// @notice Award `amount` tokens to `recipient`, the developers of safety module `moduleRef`,
    /// which won round `round` of the safety-standard selection (governance only; once per module
    /// and round).
    function awardModule(uint32 round, bytes32 moduleRef, address recipient, uint256 amount) external onlyOwner {
        if (recipient == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (moduleAwarded[round][moduleRef]) revert ModuleAlreadyAwarded(round, moduleRef);
        uint256 available = token.balanceOf(address(this));
        if (amount > available) revert InsufficientTreasury(amount, available);
        moduleAwarded[round][moduleRef] = true;
        emit SafetyModuleAwarded(round, moduleRef, recipient, amount);
        token.safeTransfer(recipient, amount);
    }
}
