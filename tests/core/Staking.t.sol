// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test, Vm} from "../utils/Test.sol";
import {LoyalToken} from "../../contracts/core/LoyalToken.sol";
import {Staking} from "../../contracts/core/Staking.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract StakingTest is Test {
    LoyalToken token;
    Staking staking;
    address admin = address(0xA11CE);
    address alice = address(0xA);
    address module = address(0xB0B);
    uint64 constant DELAY = 7 days;


    function setUp() public {
        token = new LoyalToken(admin, 0);
        staking = new Staking(token, DELAY, admin);
        vm.startPrank(admin);
        token.mint(alice, 1_000 ether);
        staking.grantRole(staking.MODULE_ROLE(), module);
        vm.stopPrank();
        vm.prank(alice);
        token.approve(address(staking), type(uint256).max);
    }

    function test_stake_emitsAndCounts() public {
        vm.expectEmit(true, false, false, true, address(staking));
        emit Staking.Staked(alice, 100 ether, 100 ether);
        vm.prank(alice);
        staking.stake(100 ether);
        assertEq(staking.stakeOf(alice), 100 ether, "active");
        assertEq(token.balanceOf(address(staking)), 100 ether, "held");
    }

    function test_stake_zeroReverts() public {
        vm.expectRevert(Staking.ZeroAmount.selector);
        vm.prank(alice);
        staking.stake(0);
    }

    function test_unstake_waitsForDelay() public {
        vm.startPrank(alice);
        staking.stake(100 ether);
        staking.requestUnstake(40 ether);
        (uint256 active, uint256 unbonding, uint64 unlockAt) = staking.stakeInfo(alice);
        assertEq(active, 60 ether, "active");
        assertEq(unbonding, 40 ether, "unbonding");
        vm.expectRevert(abi.encodeWithSelector(Staking.UnstakeLocked.selector, alice, unlockAt));
        staking.withdraw();
        vm.warp(unlockAt);
        staking.withdraw();
        vm.stopPrank();
        assertEq(token.balanceOf(alice), 940 ether, "balance back");
    }

    function test_unstake_moreThanActiveReverts() public {
        vm.startPrank(alice);
        staking.stake(10 ether);
        vm.expectRevert(abi.encodeWithSelector(Staking.InsufficientStake.selector, alice, 11 ether, 10 ether));
        staking.requestUnstake(11 ether);
        vm.stopPrank();
    }

    function test_withdraw_nothingReverts() public {
        vm.expectRevert(abi.encodeWithSelector(Staking.NothingToWithdraw.selector, alice));
        vm.prank(alice);
        staking.withdraw();
    }

    function test_slash_onlyModule() public {
        vm.prank(alice);
        staking.stake(10 ether);
        bytes32 role = staking.MODULE_ROLE();
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, role));
        vm.prank(alice);
        staking.slash(alice, 1 ether, "self");
    }

    function test_slash_reachesUnbondingStake() public {
        vm.startPrank(alice);
        staking.stake(10 ether);
        staking.requestUnstake(8 ether);
        vm.stopPrank();
        vm.expectEmit(true, true, false, true, address(staking));
        emit Staking.Slashed(alice, module, 9 ether, "dissent");
        vm.prank(module);
        staking.slash(alice, 9 ether, "dissent");
        assertEq(staking.slashableOf(alice), 1 ether, "left");
        assertEq(staking.slashedBalance(module), 9 ether, "credited to module");
    }

    function test_slash_moreThanStakedReverts() public {
        vm.prank(alice);
        staking.stake(10 ether);
        vm.expectRevert(abi.encodeWithSelector(Staking.SlashExceedsStake.selector, alice, 11 ether, 10 ether));
        vm.prank(module);
        staking.slash(alice, 11 ether, "too much");
    }

    function test_payOut_onlyOwnSlashedBalance() public {
        vm.prank(alice);
        staking.stake(10 ether);
        vm.startPrank(module);
        staking.slash(alice, 4 ether, "x");
        vm.expectRevert(abi.encodeWithSelector(Staking.InsufficientSlashedBalance.selector, module, 5 ether, 4 ether));
        staking.payOutSlashed(admin, 5 ether);
        staking.payOutSlashed(admin, 4 ether);
        vm.stopPrank();
        assertEq(token.balanceOf(admin), 4 ether, "paid");
    }

    function testFuzz_stakeUnstakeSlash_conserveTokens(uint256 s, uint256 u, uint256 x) public {
        s = bound(s, 1, 1_000 ether);
        u = bound(u, 1, s);
        x = bound(x, 1, s);
        vm.startPrank(alice);
        staking.stake(s);
        staking.requestUnstake(u);
        vm.stopPrank();
        vm.prank(module);
        staking.slash(alice, x, "fuzz");
        assertEq(staking.slashableOf(alice), s - x, "slashable after slash");
        assertEq(
            token.balanceOf(address(staking)),
            staking.totalActive() + staking.totalUnbonding() + staking.slashedBalance(module),
            "conservation"
        );
    }
}

/// @dev Drives random stake/unstake/withdraw/slash/payout sequences for the invariant test.
contract StakingHandler {
    Vm constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    LoyalToken public token;
    Staking public staking;
    address public module;
    address[3] public actors = [address(0x1001), address(0x1002), address(0x1003)];
    uint256 public slashedTotal;
    uint256 public paidOutTotal;

    constructor(LoyalToken t, Staking s, address m) {
        token = t;
        staking = s;
        module = m;
        for (uint256 i = 0; i < 3; i++) {
            vm.prank(actors[i]);
            t.approve(address(s), type(uint256).max);
        }
    }

    function stake(uint256 who, uint256 amount) external {
        address a = actors[who % 3];
        amount = (amount % token.balanceOf(a)) + 1;
        if (token.balanceOf(a) < amount) return;
        vm.prank(a);
        staking.stake(amount);
    }

    function requestUnstake(uint256 who, uint256 amount) external {
        address a = actors[who % 3];
        uint256 active = staking.stakeOf(a);
        if (active == 0) return;
        vm.prank(a);
        staking.requestUnstake((amount % active) + 1);
    }

    function withdraw(uint256 who, uint256 dt) external {
        address a = actors[who % 3];
        (, uint256 unbonding, uint64 unlockAt) = staking.stakeInfo(a);
        if (unbonding == 0) return;
        vm.warp(block.timestamp + (dt % 10 days));
        if (block.timestamp < unlockAt) return;
        vm.prank(a);
        staking.withdraw();
    }

    function slash(uint256 who, uint256 amount) external {
        address a = actors[who % 3];
        uint256 slashable = staking.slashableOf(a);
        if (slashable == 0) return;
        amount = (amount % slashable) + 1;
        vm.prank(module);
        staking.slash(a, amount, "invariant");
        slashedTotal += amount;
    }

    function payOut(uint256 amount) external {
        uint256 bal = staking.slashedBalance(module);
        if (bal == 0) return;
        amount = (amount % bal) + 1;
        vm.prank(module);
        staking.payOutSlashed(address(0xFEE), amount);
        paidOutTotal += amount;
    }
}

contract StakingInvariantTest is Test {
    LoyalToken token;
    Staking staking;
    StakingHandler handler;
    address admin = address(0xA11CE);
    address module = address(0xB0B);

    function setUp() public {
        token = new LoyalToken(admin, 0);
        staking = new Staking(token, 1 days, admin);
        handler = new StakingHandler(token, staking, module);
        vm.startPrank(admin);
        staking.grantRole(staking.MODULE_ROLE(), module);
        for (uint256 i = 0; i < 3; i++) token.mint(handler.actors(i), 1_000 ether);
        vm.stopPrank();
        targetContract(address(handler));
    }

    /// total staked == token balance held minus slashed-and-not-yet-paid-out
    function invariant_stakedEqualsBalanceMinusSlashedUnpaid() public view {
        uint256 held = token.balanceOf(address(staking));
        uint256 slashedUnpaid = handler.slashedTotal() - handler.paidOutTotal();
        assertEq(staking.totalActive() + staking.totalUnbonding(), held - slashedUnpaid, "staked");
        assertEq(staking.slashedBalance(module), slashedUnpaid, "module balance");
    }

    function invariant_supplyConserved() public view {
        uint256 sum = token.balanceOf(address(staking)) + token.balanceOf(address(0xFEE));
        for (uint256 i = 0; i < 3; i++) sum += token.balanceOf(handler.actors(i));
        assertEq(sum, 3_000 ether, "no tokens created or lost");
    }
}
