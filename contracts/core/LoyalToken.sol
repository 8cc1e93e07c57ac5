// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title LoyalToken
/// @notice The suite's ERC-20: rewards, deposits, stakes and fees are all paid in it.
/// @dev Plain OpenZeppelin ERC-20 with EIP-2612 permits; new supply only through MINTER_ROLE.
contract LoyalToken is ERC20, ERC20Permit, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @param admin receives DEFAULT_ADMIN_ROLE and MINTER_ROLE.
    /// @param initialSupply minted to `admin`.
    constructor(address admin, uint256 initialSupply) ERC20("Loyal", "LOYAL") ERC20Permit("Loyal") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
        _mint(admin, initialSupply);
    }

    /// @notice Mint `amount` new tokens to `to`.
    /// @dev Reverts with AccessControlUnauthorizedAccount unless the caller holds MINTER_ROLE.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }
}
