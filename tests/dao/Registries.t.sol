// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test, Vm} from "../utils/Test.sol";
import {DaoModelRegistry} from "../../contracts/dao/DaoModelRegistry.sol";
import {GasCredits} from "../../contracts/dao/GasCredits.sol";
import {DaoTreasury} from "../../contracts/dao/DaoTreasury.sol";
import {LoyalToken} from "../../contracts/core/LoyalToken.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

contract DaoModelRegistryTest is Test {
    DaoModelRegistry models;
    address dev = address(0xDE5);

    function setUp() public {
        vm.warp(1_000_000);
        models = new DaoModelRegistry(address(this), 1);
    }

    function _submit() internal returns (uint256 id) {
        vm.prank(dev);
        id = models.submit(keccak256("w"), "ipfs://m");
    }

    function test_approve_setsTierPurposeBudget() public {
        uint256 id = _submit();
        models.approve(id, 3, DaoModelRegistry.Scope.Narrow, "medical triage", 777, uint64(block.timestamp + 10));
        DaoModelRegistry.Model memory m = models.getModel(id);
        assertEq(uint256(m.status), uint256(DaoModelRegistry.Status.Approved), "approved");
        assertEq(m.tier, 3, "tier");
        assertEq(m.computeBudget, 777, "budget");
        assertTrue(models.isCertified(id), "certified");
        vm.warp(block.timestamp + 10);
        assertTrue(!models.isCertified(id), "expired");
        models.renewCertification(id, uint64(block.timestamp + 100));
        assertTrue(models.isCertified(id), "renewed");
    }

    function test_rejectRetryLimit() public {
        uint256 id = _submit();
        models.reject(id, bytes32("unsafe"));
        vm.expectRevert(abi.encodeWithSelector(DaoModelRegistry.NotSubmitter.selector, address(this)));
        models.requestRetry(id);
        vm.prank(dev);
        models.requestRetry(id);
        models.reject(id, bytes32("still unsafe"));
        vm.prank(dev);
        vm.expectRevert(abi.encodeWithSelector(DaoModelRegistry.RetryLimitReached.selector, id, 1));
        models.requestRetry(id);
    }

    function test_badInput() public {
        vm.expectRevert(DaoModelRegistry.EmptyArtifact.selector);
        models.submit(bytes32(0), "x");
        uint256 id = _submit();
        vm.expectRevert(abi.encodeWithSelector(DaoModelRegistry.InvalidTier.selector, 4));
        models.approve(id, 4, DaoModelRegistry.Scope.Narrow, "p", 1, uint64(block.timestamp + 1));
        vm.expectRevert(DaoModelRegistry.ZeroBudget.selector);
        models.approve(id, 1, DaoModelRegistry.Scope.Narrow, "p", 0, uint64(block.timestamp + 1));
        vm.expectRevert(DaoModelRegistry.EmptyPurpose.selector);
        models.approve(id, 1, DaoModelRegistry.Scope.Narrow, "", 1, uint64(block.timestamp + 1));
        vm.expectRevert(abi.encodeWithSelector(DaoModelRegistry.CertificationNotInFuture.selector, uint64(block.timestamp)));
        models.approve(id, 1, DaoModelRegistry.Scope.Narrow, "p", 1, uint64(block.timestamp));
        vm.expectRevert(abi.encodeWithSelector(DaoModelRegistry.UnknownModel.selector, 9));
        models.reject(9, bytes32(0));
        vm.prank(dev);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, dev));
        models.approve(id, 1, DaoModelRegistry.Scope.Narrow, "p", 1, uint64(block.timestamp + 1));
        assertEq(uint256(models.getModel(id).status), uint256(DaoModelRegistry.Status.Pending), "untouched");
    }
}

contract GasCreditsTest is Test {
    GasCredits credits;
    address spender = address(0x5E);
    address user = address(0xA5E4);
    bytes32 constant OP = keccak256("op");

    function setUp() public {
        credits = new GasCredits(address(this), new LoyalToken(address(this), 0), address(0x7EA5));
        credits.setSpender(spender, true);
        credits.setPriceRule(OP, 5, 2);
        credits.grant(user, 100, bytes32("grant"));
    }

    function test_chargeByRule() public {
        vm.expectEmit(true, true, true, true, address(credits));
        emit GasCredits.CreditsCharged(user, OP, 7, 10, 25, spender);
        vm.prank(spender);
        assertEq(credits.charge(user, OP, 7, 10), 25, "5 + 2*10");
        assertEq(credits.balanceOf(user), 75, "left");
        assertEq(credits.totalCredits(), 75, "total");
    }

    function test_refusals() public {
        vm.expectRevert(abi.encodeWithSelector(GasCredits.NotSpender.selector, address(this)));
        credits.charge(user, OP, 1, 1);
        vm.prank(spender);
        vm.expectRevert(abi.encodeWithSelector(GasCredits.InsufficientCredits.selector, user, 205, 100));
        credits.charge(user, OP, 1, 100);
        vm.expectRevert(GasCredits.ZeroAmount.selector);
        credits.grant(user, 0, bytes32(0));
    }

    function test_noTransferSurface() public {
        (bool ok,) = address(credits).call(abi.encodeWithSignature("transfer(address,uint256)", spender, 1));
        assertTrue(!ok, "no transfer function");
    }

    function testFuzz_totalEqualsSumOfBalances(uint96 a, uint8 units) public {
        credits.grant(spender, uint256(a) + 1, bytes32(0));
        vm.prank(spender);
        try credits.charge(user, OP, 1, units) {} catch {}
        assertEq(credits.totalCredits(), credits.balanceOf(user) + credits.balanceOf(spender), "sum");
    }
}

contract DaoTreasuryTest is Test {
    LoyalToken token;
    DaoTreasury treasury;
    address hunter = address(0xB0);

    function setUp() public {
        token = new LoyalToken(address(this), 0);
        treasury = new DaoTreasury(token, address(this));
        token.mint(address(treasury), 100 ether);
    }

    function test_payBountyOnce() public {
        treasury.payBounty(bytes32("audit-1"), hunter, 40 ether);
        assertEq(token.balanceOf(hunter), 40 ether, "paid");
        vm.expectRevert(abi.encodeWithSelector(DaoTreasury.BountyAlreadyPaid.selector, bytes32("audit-1")));
        treasury.payBounty(bytes32("audit-1"), hunter, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(DaoTreasury.InsufficientTreasury.selector, 61 ether, 60 ether));
        treasury.payBounty(bytes32("audit-2"), hunter, 61 ether);
        vm.prank(hunter);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, hunter));
        treasury.payBounty(bytes32("audit-3"), hunter, 1 ether);
    }
}
