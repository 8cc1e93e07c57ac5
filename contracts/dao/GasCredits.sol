// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title GasCredits
/// @notice Non-transferable accounting units that DAO system operations (opening a compute run,
/// drawing an OTK ration) are charged in. Credits are bought with LoyalToken at the voted
/// `creditPrice` (or granted by vote) and spent only by the system contracts governance lists as
/// spenders; there is no transfer, approval or market, so they are bookkeeping, not a token. The
/// price of each operation is a votable rule: `base + perUnit * units`.
///
/// Gas tax: the LoyalToken paid for credits stays here as their backing. When credits are spent,
/// their share of the account's backing is released: `gasTaxBps` of it goes to the DAO treasury at
/// once, the rest to the upkeep pool (paid out only by vote). Granted credits have no backing and
/// pay no tax.
/// @dev The owner is the governor. Invariant: token balance held = sum of backings + upkeep pool.
contract GasCredits is Ownable {
    using SafeERC20 for IERC20;

    /// @notice Price rule of one operation kind.
    struct PriceRule {
        uint128 base;
        uint128 perUnit;
    }

    uint256 private constant BPS = 10_000;
    /// @notice Highest gas tax governance may set (basis points of a spent credit's backing).
    uint16 public constant MAX_GAS_TAX_BPS = 5_000;

    IERC20 public immutable token;
    /// @notice Where the gas tax goes (the DAO treasury).
    address public immutable treasury;

    mapping(address account => uint256) public balanceOf;
    /// @notice LoyalToken (wei) backing `account`'s bought credits not yet spent.
    mapping(address account => uint256) public backingOf;
    mapping(bytes32 operation => PriceRule) private _prices;
    mapping(address spender => bool) public isSpender;
    uint256 public totalCredits;
    /// @notice LoyalToken (wei) per credit; 0 = credits are not for sale.
    uint256 public creditPrice;
    /// @notice Share (bps) of a spent credit's backing paid to the treasury.
    uint16 public gasTaxBps;
    /// @notice LoyalToken (wei) released by spent credits, net of tax, held for system upkeep.
    uint256 public upkeepPool;

    event CreditsGranted(address indexed account, uint256 amount, bytes32 reason);
    event CreditsBought(address indexed account, uint256 credits, uint256 paid, uint256 price);
    /// @notice `account` paid `cost` credits for `units` of `operation` on run `runId` of `spender`.
    event CreditsCharged(
        address indexed account,
        bytes32 indexed operation,
        uint256 indexed runId,
        uint256 units,
        uint256 cost,
        address spender
    );
    /// @notice Spending credits released `released` tokens of `account`'s backing: `tax` to the treasury.
    event GasTaxPaid(address indexed account, uint256 indexed runId, uint256 released, uint256 tax);
    event PriceRuleSet(bytes32 indexed operation, uint128 base, uint128 perUnit);
    event SpenderSet(address indexed spender, bool allowed);
    event CreditPriceSet(uint256 price);
    event GasTaxSet(uint16 gasTaxBps);
    event UpkeepPaid(address indexed recipient, uint256 amount, bytes32 reason);

    error ZeroAddress();
    error ZeroAmount();
    error NotSpender(address caller);
    error InsufficientCredits(address account, uint256 cost, uint256 available);
    error CreditsNotForSale();
    error PriceAboveLimit(uint256 price, uint256 maxPrice);
    error GasTaxTooHigh(uint16 gasTaxBps);
    error InsufficientUpkeep(uint256 requested, uint256 available);

    /// @param governance owner (the governor, or the deployer until it hands over).
    /// @param token_ LoyalToken, what credits are bought with.
    /// @param treasury_ the DAO treasury, where the gas tax goes.
    constructor(address governance, IERC20 token_, address treasury_) Ownable(governance) {
        if (address(token_) == address(0) || treasury_ == address(0)) revert ZeroAddress();
        token = token_;
        treasury = treasury_;
    }

    /// @notice Buy `credits` credits for `credits * creditPrice` LoyalToken (approve this contract
    /// first); refused if the price is above `maxPrice` (a vote changed it since you looked).
    /// @return paid LoyalToken (wei) taken.
    function buy(uint256 credits, uint256 maxPrice) external returns (uint256 paid) {
        if (credits == 0) revert ZeroAmount();
        uint256 price = creditPrice;
        if (price == 0) revert CreditsNotForSale();
        if (price > maxPrice) revert PriceAboveLimit(price, maxPrice);
        paid = credits * price;
        balanceOf[msg.sender] += credits;
        backingOf[msg.sender] += paid;
        totalCredits += credits;
        emit CreditsBought(msg.sender, credits, paid, price);
        token.safeTransferFrom(msg.sender, address(this), paid);
    }

    /// @notice Grant `amount` credits to `account` (governance only; no backing, no tax).
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

    /// @notice Set the LoyalToken price of one credit (governance only; 0 stops sales).
    function setCreditPrice(uint256 price) external onlyOwner {
        creditPrice = price;
        emit CreditPriceSet(price);
    }

    /// @notice Set the gas tax (governance only; at most `MAX_GAS_TAX_BPS`).
    function setGasTax(uint16 gasTaxBps_) external onlyOwner {
        if (gasTaxBps_ > MAX_GAS_TAX_BPS) revert GasTaxTooHigh(gasTaxBps_);
        gasTaxBps = gasTaxBps_;
        emit GasTaxSet(gasTaxBps_);
    }

    /// @notice Pay `amount` of the upkeep pool to `recipient` (governance only).
    function payUpkeep(address recipient, uint256 amount, bytes32 reason) external onlyOwner {
        if (recipient == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        uint256 available = upkeepPool;
        if (amount > available) revert InsufficientUpkeep(amount, available);
        upkeepPool = available - amount;
        emit UpkeepPaid(recipient, amount, reason);
        token.safeTransfer(recipient, amount);
    }

    /// @notice Allow or disallow a system contract to charge credits (governance only).
    function setSpender(address spender, bool allowed) external onlyOwner {
        if (spender == address(0)) revert ZeroAddress();
        isSpender[spender] = allowed;
        emit SpenderSet(spender, allowed);
    }

    /// @notice Charge `account` for `units` of `operation` on the spender's run `runId` (listed
    /// spenders only); pays the gas tax on the backing the spent credits release.
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
        uint256 backing = backingOf[account];
        if (backing == 0 || cost == 0) return cost;
        uint256 released = Math.mulDiv(backing, cost, available);
        uint256 tax = Math.mulDiv(released, gasTaxBps, BPS);
        backingOf[account] = backing - released;
        upkeepPool += released - tax;
        emit GasTaxPaid(account, runId, released, tax);
        if (tax != 0) token.safeTransfer(treasury, tax);
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
