// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test, Vm} from "../utils/Test.sol";
import {DaoModelRegistry} from "../../contracts/dao/DaoModelRegistry.sol";
import {GasCredits} from "../../contracts/dao/GasCredits.sol";
import {DaoTreasury} from "../../contracts/dao/DaoTreasury.sol";
import {LoyalToken} from "../../contracts/core/LoyalToken.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {PersonnelRegistry} from "../../contracts/dao/PersonnelRegistry.sol";

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

    function test_buy_atVotedPrice_taxOnUse_toTreasury() public {
        LoyalToken token = LoyalToken(address(credits.token()));
        address treasury = credits.treasury();
        address buyer = address(0xB1);
        token.mint(buyer, 1_000 ether);
        vm.prank(buyer);
        vm.expectRevert(GasCredits.CreditsNotForSale.selector);
        credits.buy(10, 1 ether);
        credits.setCreditPrice(2 ether);
        credits.setGasTax(1_000); // 10%
        vm.startPrank(buyer);
        vm.expectRevert(abi.encodeWithSelector(GasCredits.PriceAboveLimit.selector, 2 ether, 1 ether));
        credits.buy(10, 1 ether); // the price went up since the buyer looked
        // no approval: the pull fails and nothing is credited
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(credits), 0, 200 ether)
        );
        credits.buy(100, 2 ether);
        assertEq(credits.balanceOf(buyer), 0, "nothing credited");
        token.approve(address(credits), 200 ether);
        vm.expectEmit(true, false, false, true, address(credits));
        emit GasCredits.CreditsBought(buyer, 100, 200 ether, 2 ether);
        assertEq(credits.buy(100, 2 ether), 200 ether, "paid");
        vm.stopPrank();
        assertEq(token.balanceOf(buyer), 800 ether, "buyer paid");
        assertEq(credits.backingOf(buyer), 200 ether, "backing");
        // spending 25 credits (5 + 2*10) releases a quarter of the backing: 10% of it to the treasury
        vm.expectEmit(true, true, false, true, address(credits));
        emit GasCredits.GasTaxPaid(buyer, 7, 50 ether, 5 ether);
        vm.prank(spender);
        credits.charge(buyer, OP, 7, 10);
        assertEq(token.balanceOf(treasury), 5 ether, "tax paid into the treasury");
        assertEq(credits.upkeepPool(), 45 ether, "rest to upkeep");
        assertEq(token.balanceOf(address(credits)), credits.backingOf(buyer) + credits.upkeepPool(), "held = backing + pool");
        vm.expectRevert(abi.encodeWithSelector(GasCredits.GasTaxTooHigh.selector, 5_001));
        credits.setGasTax(5_001);
        vm.prank(buyer);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, buyer));
        credits.setCreditPrice(1);
        vm.expectRevert(abi.encodeWithSelector(GasCredits.InsufficientUpkeep.selector, 46 ether, 45 ether));
        credits.payUpkeep(buyer, 46 ether, "ops");
        credits.payUpkeep(buyer, 45 ether, "ops");
        assertEq(token.balanceOf(buyer), 845 ether, "upkeep paid by vote");
    }

    /// @dev Fuzz: whatever is bought and spent, the tokens held equal the backings plus the pool,
    /// and the treasury got exactly the tax.
    function testFuzz_heldTokensAreBackingPlusPool(uint64 bought, uint16 taxBps, uint8 units1, uint8 units2) public {
        LoyalToken token = LoyalToken(address(credits.token()));
        address buyer = address(0xB2);
        uint256 n = bound(bought, 1, 1e9);
        credits.setCreditPrice(3 gwei);
        credits.setGasTax(uint16(bound(taxBps, 0, 5_000)));
        token.mint(buyer, n * 3 gwei);
        vm.startPrank(buyer);
        token.approve(address(credits), n * 3 gwei);
        credits.buy(n, 3 gwei);
        vm.stopPrank();
        vm.startPrank(spender);
        try credits.charge(buyer, OP, 1, units1) {} catch {}
        try credits.charge(buyer, OP, 2, units2) {} catch {}
        vm.stopPrank();
        assertEq(token.balanceOf(address(credits)), credits.backingOf(buyer) + credits.upkeepPool(), "conservation");
        assertEq(
            token.balanceOf(credits.treasury()) + token.balanceOf(address(credits)), n * 3 gwei, "nothing created or lost"
        );
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

    function test_awardModule_oncePerRound() public {
        vm.expectEmit(true, true, true, true, address(treasury));
        emit DaoTreasury.SafetyModuleAwarded(1, bytes32("red-team-evals"), hunter, 30 ether);
        treasury.awardModule(1, bytes32("red-team-evals"), hunter, 30 ether);
        vm.expectRevert(abi.encodeWithSelector(DaoTreasury.ModuleAlreadyAwarded.selector, 1, bytes32("red-team-evals")));
        treasury.awardModule(1, bytes32("red-team-evals"), hunter, 30 ether);
        treasury.awardModule(2, bytes32("red-team-evals"), hunter, 30 ether); // next round: may win again
        assertEq(token.balanceOf(hunter), 60 ether, "awarded twice over two rounds");
        vm.prank(hunter);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, hunter));
        treasury.awardModule(3, bytes32("x"), hunter, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(DaoTreasury.InsufficientTreasury.selector, 41 ether, 40 ether));
        treasury.awardModule(3, bytes32("x"), hunter, 41 ether);
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

contract PersonnelAreasTest is Test {
    PersonnelRegistry personnel;

    function setUp() public {
        vm.warp(1_000);
        personnel = new PersonnelRegistry(address(this));
    }

    function test_fourAreas_countedByTrackMask() public {
        personnel.admit(address(1), PersonnelRegistry.Track.Policy, 2, "v");
        personnel.admit(address(2), PersonnelRegistry.Track.Safety, 2, "v");
        personnel.admit(address(3), PersonnelRegistry.Track.Software, 2, "v");
        personnel.admit(address(4), PersonnelRegistry.Track.Hardware, 3, "v");
        vm.warp(block.timestamp + 1);
        uint256 t = block.timestamp;
        assertEq(personnel.eligibleCount(0x0E, 0x1E, t), 4, "every area");
        assertEq(personnel.eligibleCount(0x0E, 0x06, t), 2, "policy + safety");
        assertEq(personnel.eligibleCount(0x0E, 1 << 3, t), 1, "software");
        assertEq(personnel.eligibleCount(1 << 3, 1 << 4, t), 1, "hardware tier 3");
        (PersonnelRegistry.Track track, uint8 tier) = personnel.roleOf(address(4));
        assertEq(uint256(track), uint256(PersonnelRegistry.Track.Hardware), "track");
        assertEq(tier, 3, "tier");
        vm.expectRevert(abi.encodeWithSelector(PersonnelRegistry.InvalidTrack.selector, PersonnelRegistry.Track.None));
        personnel.admit(address(5), PersonnelRegistry.Track.None, 1, "v");
    }
}
