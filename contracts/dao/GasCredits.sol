// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title GasCredits
/// @notice Non-transferable accounting units that DAO system operations (opening a compute run,
/// drawing an OTK ration) are charged in. Credits are granted by vote and spent only by the
/// system contracts governance lists as spenders; there is no transfer, approval or market, so
/// they are bookkeeping, not a token. The price of each operation is a votable rule:
/// `base + perUnit * units`.
/// @dev The owner is the governor.
contract GasCredits is Ownable {
    /// @notice Price rule of one operation kind.
    struct PriceRule {
        uint128 base;
        uint128 perUnit;
    }

    mapping(address account => uint256) public balanceOf;
    mapping(bytes32 operation => PriceRule) private _prices;
    mapping(address spender => bool) public isSpender;
    uint256 public totalCredits;

    event CreditsGranted(address indexed account, uint256 amount, bytes32 reason);
    /// @notice `account` paid `cost` credits for `units` of `operation` on run `runId` of `spender`.
    event CreditsCharged(
        address indexed account,
        bytes32 indexed operation,
        uint256 indexed runId,
        uint256 units,
        uint256 cost,
        address spender
    );
    event PriceRuleSet(bytes32 indexed operation, uint128 base, uint128 perUnit);
    event SpenderSet(address indexed spender, bool allowed);

    error ZeroAddress();
    error ZeroAmount();
    error NotSpender(address caller);
    error InsufficientCredits(address account, uint256 cost, uint256 available);

    /// @param governance owner (the governor, or the deployer until it hands over).
    constructor(address governance) Ownable(governance) {}

    /// @notice Grant `amount` credits to `account` (governance only).
    function grant(address account, uint256 amount, bytes32 reason) external onlyOwner {
        if (account == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        balanceOf[account] += amount;
        totalCredits += amount;
        emit CreditsGranted(account, amount, reason);
    }

    /// @notice Set the price rule of `operation` (governance only).
    function setPriceRule(bytes32 operation, uint128 base, uint128 perUnit) external onlyOwner {
        _prices[operation] = PriceRule(base, perUnit);
        emit PriceRuleSet(operation, base, perUnit);
    }

    /// @notice Allow or disallow a system contract to charge credits (governance only).
    function setSpender(address spender, bool allowed) external onlyOwner {
        if (spender == address(0)) revert ZeroAddress();
        isSpender[spender] = allowed;
        emit SpenderSet(spender, allowed);
    }

    /// @notice Charge `account` for `units` of `operation` on the spender's run `runId` (listed spenders only).
    /// @param runId the run the operation is for (OTKIssuer's run id), carried in `CreditsCharged` for auditors.
    /// @return cost credits deducted.
    function charge(address account, bytes32 operation, uint256 runId, uint256 units)
        external
        returns (uint256 cost)
    {
        if (!isSpender[msg.sender]) revert NotSpender(msg.sender);
        cost = priceOf(operation, units);
        uint256 available = balanceOf[account];
        if (cost > available) revert InsufficientCredits(account, cost, available);
        balanceOf[account] = available - cost;
        totalCredits -= cost;
        emit CreditsCharged(account, operation, runId, units, cost, msg.sender);
    }

    /// @notice Price of `units` of `operation` under the current rule.
    function priceOf(bytes32 operation, uint256 units) public view returns (uint256) {
        PriceRule memory r = _prices[operation];
        return uint256(r.base) + uint256(r.perUnit) * units;
    }

    /// @notice Price rule of `operation`.
    function priceRule(bytes32 operation) external view returns (PriceRule memory) {
        return _prices[operation];
    }
}
