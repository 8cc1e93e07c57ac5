// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "../utils/Test.sol";
import {LoyalToken} from "../../contracts/core/LoyalToken.sol";
import {Staking} from "../../contracts/core/Staking.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract StakingLocksTest is Test {
    LoyalToken token;
    Staking staking;
    address admin = address(0xA11CE);
    address alice = address(0xA);
    address locker = address(0x10C);
    address locker2 = address(0x10D);
    address module = address(0xB0B);

    event StakeLocked(address indexed account, address indexed locker, uint256 amount, uint256 lockedTotal);
    event StakeUnlocked(address indexed account, address indexed locker, uint256 amount, uint256 lockedTotal);

    function setUp() public {
        token = new LoyalToken(admin, 0);
        staking = new Staking(token, 7 days, admin);
        vm.startPrank(admin);
        token.mint(alice, 1_000 ether);
        staking.grantRole(staking.LOCKER_ROLE(), locker);
        staking.grantRole(staking.LOCKER_ROLE(), locker2);
        staking.grantRole(staking.MODULE_ROLE(), module);
        vm.stopPrank();
        vm.startPrank(alice);
        token.approve(address(staking), type(uint256).max);
        staking.stake(100 ether);
        vm.stopPrank();
    }

    function test_lock_blocksUnstakeOfLockedPart() public {
        vm.expectEmit(true, true, false, true, address(staking));
        emit StakeLocked(alice, locker, 60 ether, 60 ether);
        vm.prank(locker);
        staking.lock(alice, 60 ether);
        assertEq(staking.unlockedOf(alice), 40 ether, "unlocked");
        vm.expectRevert(abi.encodeWithSelector(Staking.StakeIsLocked.selector, alice, 41 ether, 40 ether));
        vm.prank(alice);
        staking.requestUnstake(41 ether);
        vm.prank(alice);
        staking.requestUnstake(40 ether);
        assertEq(staking.stakeOf(alice), 60 ether, "locked part stays active");
    }

    function test_unlock_freesStake() public {
        vm.prank(locker);
        staking.lock(alice, 100 ether);
        vm.expectEmit(true, true, false, true, address(staking));
        emit StakeUnlocked(alice, locker, 100 ether, 0);
        vm.prank(locker);
        staking.unlock(alice, 100 ether);
        vm.prank(alice);
        staking.requestUnstake(100 ether);
        assertEq(staking.stakeOf(alice), 0, "all out");
    }

    function test_lock_cannotExceedUnlockedStake_acrossLockers() public {
        vm.prank(locker);
        staking.lock(alice, 70 ether);
        vm.expectRevert(abi.encodeWithSelector(Staking.InsufficientUnlockedStake.selector, alice, 31 ether, 30 ether));
        vm.prank(locker2);
        staking.lock(alice, 31 ether);
        vm.prank(locker2);
        staking.lock(alice, 30 ether);
        assertEq(staking.lockedOf(alice), 100 ether, "sum of locks");
        assertEq(staking.lockedBy(locker2, alice), 30 ether, "per locker");
    }

    function test_unlock_onlyOwnLock() public {
        vm.prank(locker);
        staking.lock(alice, 50 ether);
        vm.expectRevert(abi.encodeWithSelector(Staking.UnlockExceedsLock.selector, alice, locker2, 1 ether, 0));
        vm.prank(locker2);
        staking.unlock(alice, 1 ether);
    }

    function test_lock_onlyLockerRole() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, module, staking.LOCKER_ROLE()
            )
        );
        vm.prank(module);
        staking.lock(alice, 1 ether);
        vm.expectRevert(Staking.ZeroAmount.selector);
        vm.prank(locker);
        staking.lock(alice, 0);
    }

    function test_slash_ignoresLocks_andUnlockedOfSaturates() public {
        vm.prank(locker);
        staking.lock(alice, 80 ether);
        vm.prank(module);
        staking.slash(alice, 90 ether, "test");
        assertEq(staking.stakeOf(alice), 10 ether, "slashed through the lock");
        assertEq(staking.unlockedOf(alice), 0, "saturates at zero");
        vm.expectRevert(abi.encodeWithSelector(Staking.StakeIsLocked.selector, alice, 1 ether, 0));
        vm.prank(alice);
        staking.requestUnstake(1 ether);
        // Re-staking while the lock holds keeps the new stake locked up to the lock.
        vm.prank(alice);
        staking.stake(100 ether);
        assertEq(staking.unlockedOf(alice), 30 ether, "only the excess is free");
    }

    function test_noLocks_behaviourUnchanged() public {
        vm.prank(alice);
        staking.requestUnstake(100 ether);
        assertEq(staking.unlockedOf(alice), 0, "nothing active");
        assertEq(staking.lockedOf(alice), 0, "nothing locked");
    }

    function testFuzz_unstakeNeverDipsIntoLock(uint256 lockAmt, uint256 out) public {
        lockAmt = bound(lockAmt, 1, 100 ether);
        out = bound(out, 1, 100 ether);
        vm.prank(locker);
        staking.lock(alice, lockAmt);
        vm.prank(alice);
        try staking.requestUnstake(out) {
            assertLe(out, 100 ether - lockAmt, "only unlocked stake leaves");
        } catch {
            assertTrue(out > 100 ether - lockAmt, "reverted only when dipping into the lock");
        }
        assertLe(staking.lockedOf(alice), staking.stakeOf(alice), "active covers the lock");
    }
}

/// @dev Random stake / lock / unlock / unstake / slash sequences for one account and two lockers.
contract StakingLocksHandler is Test {
    Staking staking;
    address alice;
    address[2] lockers;
    address module;
    uint256 public unstakedPastLock; // requests that dipped into locked stake (must stay 0)

    constructor(Staking staking_, address alice_, address[2] memory lockers_, address module_) {
        staking = staking_;
        alice = alice_;
        lockers = lockers_;
        module = module_;
    }

    function stake(uint256 amount) external {
        amount = bound(amount, 1, 50 ether);
        vm.prank(alice);
        try staking.stake(amount) {} catch {}
    }

    function lock(uint256 who, uint256 amount) external {
        vm.prank(lockers[who % 2]);
        try staking.lock(alice, bound(amount, 1, 200 ether)) {} catch {}
    }

    function unlock(uint256 who, uint256 amount) external {
        vm.prank(lockers[who % 2]);
        try staking.unlock(alice, bound(amount, 1, 200 ether)) {} catch {}
    }

    function requestUnstake(uint256 amount) external {
        amount = bound(amount, 1, 200 ether);
        uint256 active = staking.stakeOf(alice);
        uint256 locked = staking.lockedOf(alice);
        vm.prank(alice);
        try staking.requestUnstake(amount) {
            if (amount + locked > active) unstakedPastLock += 1;
        } catch {}
    }

    function slash(uint256 amount) external {
        amount = bound(amount, 1, 200 ether);
        vm.prank(module);
        try staking.slash(alice, amount, "invariant") {} catch {}
    }
}

contract StakingLocksInvariantTest is Test {
    LoyalToken token;
    Staking staking;
    StakingLocksHandler handler;
    address admin = address(0xA11CE);
    address alice = address(0xA);
    address[2] lockers = [address(0x10C), address(0x10D)];
    address module = address(0xB0B);

    function setUp() public {
        token = new LoyalToken(admin, 0);
        staking = new Staking(token, 7 days, admin);
        vm.startPrank(admin);
        token.mint(alice, 10_000 ether);
        staking.grantRole(staking.LOCKER_ROLE(), lockers[0]);
        staking.grantRole(staking.LOCKER_ROLE(), lockers[1]);
        staking.grantRole(staking.MODULE_ROLE(), module);
        vm.stopPrank();
        vm.prank(alice);
        token.approve(address(staking), type(uint256).max);
        handler = new StakingLocksHandler(staking, alice, lockers, module);
        targetContract(address(handler));
    }

    function invariant_lockedIsSumOfLockers() public view {
        assertEq(
            staking.lockedOf(alice),
            staking.lockedBy(lockers[0], alice) + staking.lockedBy(lockers[1], alice),
            "lockedOf = sum of lockedBy"
        );
    }

    function invariant_unstakeNeverDipsIntoLocks() public view {
        assertEq(handler.unstakedPastLock(), 0, "no unstake past the locks");
    }

    function invariant_balanceCoversStakes() public view {
        assertEq(
            token.balanceOf(address(staking)),
            staking.totalActive() + staking.totalUnbonding() + staking.slashedBalance(module),
            "held = staked + slashed-not-paid"
        );
    }
}
