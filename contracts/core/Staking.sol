// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title Staking
/// @notice One stake pool shared by every protocol module: evaluators (DIN), hosts (OML),
/// verifiers and others bond LoyalToken here, and registered modules slash misbehaviour.
/// @dev Tokens in this contract are always either bonded (active or unbonding) or slashed and
/// owed to the module that slashed them:
/// `token.balanceOf(this) == totalActive + totalUnbonding + sum(slashedBalance)`.
/// Unbonding stake stays slashable until withdrawn, so a request to unstake cannot outrun a slash.
/// Contracts holding LOCKER_ROLE may lock part of an account's active stake (e.g. for the length of
/// a licence); locked stake cannot be requested out until the locker unlocks it. Locks never move
/// tokens and do not limit slashing.
contract Staking is AccessControl {
    using SafeERC20 for IERC20;

    /// @notice Role of protocol contracts allowed to slash and to pay out what they slashed.
    bytes32 public constant MODULE_ROLE = keccak256("MODULE_ROLE");
    /// @notice Role of protocol contracts allowed to lock active stake against unstaking.
    bytes32 public constant LOCKER_ROLE = keccak256("LOCKER_ROLE");

    struct Stake {
        uint256 active; // bonded and counted by modules
        uint256 unbonding; // requested out, still slashable
        uint64 unlockAt; // when `unbonding` may be withdrawn
    }

    IERC20 public immutable token;
    /// @notice Seconds between an unstake request and the earliest withdrawal.
    uint64 public immutable unstakeDelay;

    mapping(address account => Stake) private _stakes;
    /// @notice Slashed tokens held for each module until it pays them out.
    mapping(address module => uint256) public slashedBalance;
    uint256 public totalActive;
    uint256 public totalUnbonding;
    /// @notice Active stake of an account that cannot be requested out (sum over lockers).
    mapping(address account => uint256) public lockedOf;
    /// @notice Stake of an account locked by one locker.
    mapping(address locker => mapping(address account => uint256)) public lockedBy;

    event Staked(address indexed account, uint256 amount, uint256 activeStake);
    event UnstakeRequested(address indexed account, uint256 amount, uint256 unbonding, uint64 unlockAt);
    event Withdrawn(address indexed account, uint256 amount);
    event Slashed(address indexed account, address indexed module, uint256 amount, string reason);
    event SlashedFundsPaid(address indexed module, address indexed to, uint256 amount);
    event StakeLocked(address indexed account, address indexed locker, uint256 amount, uint256 lockedTotal);
    event StakeUnlocked(address indexed account, address indexed locker, uint256 amount, uint256 lockedTotal);

    error ZeroAmount();
    error InsufficientStake(address account, uint256 requested, uint256 available);
    error NothingToWithdraw(address account);
    error UnstakeLocked(address account, uint64 unlockAt);
    error SlashExceedsStake(address account, uint256 amount, uint256 slashable);
    error InsufficientSlashedBalance(address module, uint256 requested, uint256 available);
    error StakeIsLocked(address account, uint256 requested, uint256 unlocked);
    error InsufficientUnlockedStake(address account, uint256 requested, uint256 unlocked);
    error UnlockExceedsLock(address account, address locker, uint256 requested, uint256 locked);

    /// @param token_ the staked ERC-20 (LoyalToken).
    /// @param unstakeDelay_ seconds an unstake request waits before withdrawal.
    /// @param admin receives DEFAULT_ADMIN_ROLE (grants MODULE_ROLE to protocol contracts).
    constructor(IERC20 token_, uint64 unstakeDelay_, address admin) {
        token = token_;
        unstakeDelay = unstakeDelay_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Bond `amount` tokens from the caller (needs a prior ERC-20 approval).
    function stake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Stake storage s = _stakes[msg.sender];
        s.active += amount;
        totalActive += amount;
        emit Staked(msg.sender, amount, s.active);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Start unbonding `amount` of the caller's active stake.
    /// @dev A new request adds to any pending one and restarts the delay for the whole amount.
    /// Locked stake cannot be requested out (reverts StakeIsLocked).
    function requestUnstake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Stake storage s = _stakes[msg.sender];
        if (amount > s.active) revert InsufficientStake(msg.sender, amount, s.active);
        uint256 unlocked = _unlocked(msg.sender, s.active);
        if (amount > unlocked) revert StakeIsLocked(msg.sender, amount, unlocked);
        s.active -= amount;
        s.unbonding += amount;
        s.unlockAt = uint64(block.timestamp) + unstakeDelay;
        totalActive -= amount;
        totalUnbonding += amount;
        emit UnstakeRequested(msg.sender, amount, s.unbonding, s.unlockAt);
    }

    /// @notice Withdraw the caller's unbonded stake once its delay has passed.
    function withdraw() external {
        Stake storage s = _stakes[msg.sender];
        uint256 amount = s.unbonding;
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        if (block.timestamp < s.unlockAt) revert UnstakeLocked(msg.sender, s.unlockAt);
        s.unbonding = 0;
        s.unlockAt = 0;
        totalUnbonding -= amount;
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @notice Slash `amount` of `account`'s stake, taking active stake first, then unbonding.
    /// @dev Only MODULE_ROLE. The tokens stay here, credited to the calling module's slashedBalance.
    /// @param reason human-readable cause, kept in the event for auditors.
    function slash(address account, uint256 amount, string calldata reason) external onlyRole(MODULE_ROLE) {
        if (amount == 0) revert ZeroAmount();
        Stake storage s = _stakes[account];
        uint256 slashable = s.active + s.unbonding;
        if (amount > slashable) revert SlashExceedsStake(account, amount, slashable);
        uint256 fromActive = amount <= s.active ? amount : s.active;
        uint256 fromUnbonding = amount - fromActive;
        s.active -= fromActive;
        s.unbonding -= fromUnbonding;
        totalActive -= fromActive;
        totalUnbonding -= fromUnbonding;
        slashedBalance[msg.sender] += amount;
        emit Slashed(account, msg.sender, amount, reason);
    }

    /// @notice Pay `amount` of the calling module's slashed balance to `to`.
    /// @dev Only MODULE_ROLE; a module can only spend what it slashed itself.
    function payOutSlashed(address to, uint256 amount) external onlyRole(MODULE_ROLE) {
        if (amount == 0) revert ZeroAmount();
        uint256 available = slashedBalance[msg.sender];
        if (amount > available) revert InsufficientSlashedBalance(msg.sender, amount, available);
        slashedBalance[msg.sender] = available - amount;
        emit SlashedFundsPaid(msg.sender, to, amount);
        token.safeTransfer(to, amount);
    }

    /// @notice Lock `amount` of `account`'s unlocked active stake until this caller unlocks it.
    /// @dev Only LOCKER_ROLE. Reverts InsufficientUnlockedStake if the account's active stake not
    /// yet locked (by anyone) is smaller than `amount`.
    function lock(address account, uint256 amount) external onlyRole(LOCKER_ROLE) {
        if (amount == 0) revert ZeroAmount();
        uint256 unlocked = _unlocked(account, _stakes[account].active);
        if (amount > unlocked) revert InsufficientUnlockedStake(account, amount, unlocked);
        lockedBy[msg.sender][account] += amount;
        uint256 total = lockedOf[account] + amount;
        lockedOf[account] = total;
        emit StakeLocked(account, msg.sender, amount, total);
    }

    /// @notice Release `amount` of the stake this caller locked for `account`.
    /// @dev Only LOCKER_ROLE; a locker can only release its own locks.
    function unlock(address account, uint256 amount) external onlyRole(LOCKER_ROLE) {
        if (amount == 0) revert ZeroAmount();
        uint256 mine = lockedBy[msg.sender][account];
        if (amount > mine) revert UnlockExceedsLock(account, msg.sender, amount, mine);
        lockedBy[msg.sender][account] = mine - amount;
        uint256 total = lockedOf[account] - amount;
        lockedOf[account] = total;
        emit StakeUnlocked(account, msg.sender, amount, total);
    }

    /// @notice Active stake of `account` that is not locked (what it may request out or lock anew).
    /// @dev A slash can leave the active stake below the locked amount; this is then 0.
    function unlockedOf(address account) external view returns (uint256) {
        return _unlocked(account, _stakes[account].active);
    }

    /// @notice Active (bonded, not unbonding) stake of `account`: what modules count.
    function stakeOf(address account) external view returns (uint256) {
        return _stakes[account].active;
    }

    /// @notice Full stake record of `account`.
    function stakeInfo(address account) external view returns (uint256 active, uint256 unbonding, uint64 unlockAt) {
        Stake storage s = _stakes[account];
        return (s.active, s.unbonding, s.unlockAt);
    }

    /// @notice Active plus unbonding stake of `account`: the most a module may slash.
    function slashableOf(address account) external view returns (uint256) {
        Stake storage s = _stakes[account];
        return s.active + s.unbonding;
    }

    function _unlocked(address account, uint256 active) private view returns (uint256) {
        uint256 locked = lockedOf[account];
        return active > locked ? active - locked : 0;
    }
}
