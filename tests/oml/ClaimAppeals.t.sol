// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OmlBase} from "./OmlBase.sol";
import {Claims} from "../../contracts/oml/Claims.sol";
import {ClaimAppeals} from "../../contracts/oml/ClaimAppeals.sol";
import {UsageLedger} from "../../contracts/oml/UsageLedger.sol";
import {PersonnelRegistry} from "../../contracts/dao/PersonnelRegistry.sol";
import {DaoGovernor} from "../../contracts/dao/DaoGovernor.sol";

/// @notice Appeals against a verifier majority, decided by a real DaoGovernor Safety proposal:
/// payouts held in escrow for the appeal window, reversal re-slashes or refunds, the overturned
/// majority is penalised, an upheld outcome forfeits the bond; every refusal is a named revert.
contract ClaimAppealsTest is OmlBase {
    ClaimAppeals appeals;
    PersonnelRegistry personnel;
    DaoGovernor gov;
    address s2 = address(0x5202); // Safety tier 2
    address s3 = address(0x5303); // Safety tier 3
    address p3 = address(0x9303); // Policy tier 3: not a Safety voter

    uint256 constant APPEAL_BOND = 25 ether;
    uint64 constant APPEAL_WINDOW = 2 days;
    uint64 constant DECISION_WINDOW = 10 days;
    uint256 constant OVERTURN_PENALTY = 20 ether;

    function setUp() public override {
        super.setUp();
        appeals = new ClaimAppeals(
            claims, staking, ClaimAppeals.Config(APPEAL_BOND, APPEAL_WINDOW, DECISION_WINDOW, OVERTURN_PENALTY)
        );
        claims.setAppeals(address(appeals));
        bytes32 moduleRole = staking.MODULE_ROLE();
        vm.prank(admin);
        staking.grantRole(moduleRole, address(appeals));

        personnel = new PersonnelRegistry(address(this));
        personnel.admit(s2, PersonnelRegistry.Track.Safety, 2, bytes32("s2"));
        personnel.admit(s3, PersonnelRegistry.Track.Safety, 3, bytes32("s3"));
        personnel.admit(p3, PersonnelRegistry.Track.Policy, 3, bytes32("p3"));
        DaoGovernor.TypeConfig[4] memory c;
        c[0] = DaoGovernor.TypeConfig(1, 12, 4, 5000, 5000, 1 hours, 2 days, 7 days); // Safety
        c[1] = DaoGovernor.TypeConfig(1, 14, 6, 3000, 5000, 1 hours, 2 days, 7 days); // Review
        c[2] = DaoGovernor.TypeConfig(2, 12, 6, 5000, 6667, 1 days, 5 days, 14 days); // System
        c[3] = DaoGovernor.TypeConfig(3, 8, 6, 5000, 5000, 0, 1 hours, 1 days); // Emergency
        gov = new DaoGovernor(personnel, c, 6667, 7500);
        personnel.transferOwnership(address(gov));
        DaoGovernor.AllowedAction[] memory allow = new DaoGovernor.AllowedAction[](1);
        allow[0] = DaoGovernor.AllowedAction(DaoGovernor.ProposalType.Safety, address(appeals), ClaimAppeals.decide.selector);
        gov.bootstrapAllow(allow);
        gov.sealBootstrap();
        appeals.setGovernor(address(gov));

        vm.prank(host);
        token.approve(address(appeals), type(uint256).max);
        vm.prank(prover);
        token.approve(address(appeals), type(uint256).max);
        vm.warp(block.timestamp + 1);
    }

    // ------------------------------------------------------------------ helpers

    function assertEq(uint256 a, uint256 b) internal pure {
        assertEq(a, b, "values differ");
    }

    function assertTrue(bool c) internal pure {
        assertTrue(c, "expected true");
    }

    /// @dev A claim against `host` decided by `confirms` confirming and 3 - confirms rejecting votes.
    function _decided(uint256 i, uint256 confirms) internal returns (uint256 id) {
        id = _claimFingerprint(i, host);
        vm.warp(block.timestamp + CHALLENGE + 1);
        for (uint256 v; v < 3; ++v) {
            vm.prank(verifiers[v]);
            claims.vote(id, v < confirms);
        }
        claims.finalize(id);
    }

    /// @dev Safety proposal `decide(id, reverse)` passed by s2 and s3 and executed by the governor.
    function _daoDecides(uint256 id, bool reverse) internal {
        address[] memory t = new address[](1);
        uint256[] memory v = new uint256[](1);
        bytes[] memory d = new bytes[](1);
        t[0] = address(appeals);
        d[0] = abi.encodeCall(ClaimAppeals.decide, (id, reverse));
        string memory desc = reverse ? "Reverse claim" : "Uphold claim";
        vm.prank(s2);
        uint256 pid = gov.proposeTyped(DaoGovernor.ProposalType.Safety, t, v, d, desc);
        vm.warp(block.timestamp + 1 hours + 1);
        vm.prank(s2);
        gov.castVote(pid, 1);
        vm.prank(s3);
        gov.castVote(pid, 1);
        vm.warp(block.timestamp + 2 days + 1);
        gov.execute(t, v, d, keccak256(bytes(desc)));
    }

    // ------------------------------------------------------------------ escrow

    function test_confirmedClaimPayoutsHeldUntilAppealWindowEnds() public {
        uint256 proverBefore = token.balanceOf(prover);
        uint256 communityBefore = token.balanceOf(community);
        uint256 id = _decided(0, 3);
        assertEq(uint8(claims.claim(id).status), uint8(Claims.Status.Confirmed));
        assertEq(staking.stakeOf(host), 0); // slashed at once
        assertEq(token.balanceOf(prover), proverBefore - BOND); // nothing paid yet
        vm.expectRevert(abi.encodeWithSelector(Claims.NotReleasable.selector, id));
        claims.release(id);
        vm.expectRevert(abi.encodeWithSelector(Claims.NotReleasable.selector, id));
        claims.settleVerifier(id, verifiers[0]);
        vm.warp(block.timestamp + APPEAL_WINDOW + 1);
        assertTrue(appeals.isFinal(id));
        claims.release(id);
        assertEq(token.balanceOf(prover), proverBefore + 20 ether); // 20 % of 100, bond back
        assertEq(token.balanceOf(community), communityBefore + 100 ether - 20 ether - 3 * 2 ether);
        claims.settleVerifier(id, verifiers[0]);
        vm.expectRevert(abi.encodeWithSelector(Claims.NotReleasable.selector, id));
        claims.release(id);
    }

    // ------------------------------------------------------------------ reversals

    function test_hostAppeal_reversedByDao_hostMadeWhole_overturnedMajorityPenalised() public {
        uint256 hostBefore = token.balanceOf(host);
        uint256 proverBefore = token.balanceOf(prover);
        uint256 id = _decided(0, 2); // v0, v1 confirm; v2 rejects
        assertEq(staking.stakeOf(host), 0);
        vm.prank(host);
        appeals.appeal(id);
        assertEq(token.balanceOf(host), hostBefore - APPEAL_BOND);
        vm.warp(block.timestamp + APPEAL_WINDOW + 1);
        assertTrue(!appeals.isFinal(id)); // pending appeal holds the payouts past the window
        vm.expectRevert(abi.encodeWithSelector(Claims.NotReleasable.selector, id));
        claims.release(id);

        _daoDecides(id, true);
        assertEq(uint8(claims.claim(id).status), uint8(Claims.Status.Rejected));
        assertEq(uint8(appeals.appealOf(id).state), uint8(ClaimAppeals.State.Reversed));
        // host: slashed stake back as tokens, the prover's bond minus v2's share, its appeal bond back
        uint256 v2Share = BOND * VSHARE_BPS / 10_000;
        assertEq(token.balanceOf(host), hostBefore + STAKE + BOND - v2Share);
        assertEq(token.balanceOf(prover), proverBefore - BOND);
        // Claims' settlement: the majority that confirmed is now against the outcome
        uint256 v0Stake = staking.stakeOf(verifiers[0]);
        claims.settleVerifier(id, verifiers[0]);
        assertEq(staking.stakeOf(verifiers[0]), v0Stake - PENALTY);
        uint256 v2Bal = token.balanceOf(verifiers[2]);
        claims.settleVerifier(id, verifiers[2]);
        assertEq(token.balanceOf(verifiers[2]), v2Bal + v2Share);
        // ClaimAppeals' overturn penalty, paid to the appellant
        uint256 hostMid = token.balanceOf(host);
        appeals.penaliseVerifier(id, verifiers[0]);
        appeals.penaliseVerifier(id, verifiers[1]);
        assertEq(staking.stakeOf(verifiers[0]), v0Stake - PENALTY - OVERTURN_PENALTY);
        assertEq(staking.stakeOf(verifiers[1]), VSTAKE - OVERTURN_PENALTY);
        assertEq(token.balanceOf(host), hostMid + 2 * OVERTURN_PENALTY);
        vm.expectRevert(abi.encodeWithSelector(ClaimAppeals.NotOverturnedMajority.selector, verifiers[2], id));
        appeals.penaliseVerifier(id, verifiers[2]);
        vm.expectRevert(abi.encodeWithSelector(ClaimAppeals.AlreadyPenalised.selector, verifiers[0], id));
        appeals.penaliseVerifier(id, verifiers[0]);
    }

    function test_proverAppeal_rejectionReversedByDao_hostSlashedNow() public {
        uint256 proverBefore = token.balanceOf(prover);
        uint256 communityBefore = token.balanceOf(community);
        uint256 id = _decided(1, 1); // v0 confirms; v1, v2 (colluding) reject
        assertEq(uint8(claims.claim(id).status), uint8(Claims.Status.Rejected));
        assertEq(staking.stakeOf(host), STAKE);
        vm.prank(prover);
        appeals.appeal(id);
        _daoDecides(id, true);
        assertEq(uint8(claims.claim(id).status), uint8(Claims.Status.Confirmed));
        assertEq(staking.stakeOf(host), 0);
        // prover: 20 % of the slash, claim bond and appeal bond back
        assertEq(token.balanceOf(prover), proverBefore + 20 ether);
        uint256 v0Reward = STAKE * VSHARE_BPS / 10_000; // the lone confirming verifier gets the whole share
        assertEq(token.balanceOf(community), communityBefore + STAKE - 20 ether - v0Reward);
        uint256 v0Bal = token.balanceOf(verifiers[0]);
        claims.settleVerifier(id, verifiers[0]);
        assertEq(token.balanceOf(verifiers[0]), v0Bal + v0Reward);
        appeals.penaliseVerifier(id, verifiers[1]);
        assertEq(staking.stakeOf(verifiers[1]), VSTAKE - OVERTURN_PENALTY);
        assertEq(token.balanceOf(prover), proverBefore + 20 ether + OVERTURN_PENALTY);
    }

    function test_upheldOutcome_forfeitsBondToWinner_andReleases() public {
        uint256 proverBefore = token.balanceOf(prover);
        uint256 hostBefore = token.balanceOf(host);
        uint256 id = _decided(0, 3);
        vm.prank(host);
        appeals.appeal(id);
        _daoDecides(id, false);
        assertEq(uint8(appeals.appealOf(id).state), uint8(ClaimAppeals.State.Upheld));
        assertEq(token.balanceOf(host), hostBefore - APPEAL_BOND);
        assertEq(token.balanceOf(prover), proverBefore - BOND + APPEAL_BOND);
        claims.release(id);
        assertEq(token.balanceOf(prover), proverBefore + 20 ether + APPEAL_BOND);
        vm.expectRevert(abi.encodeWithSelector(ClaimAppeals.NotReversed.selector, id));
        appeals.penaliseVerifier(id, verifiers[0]);
    }

    function test_undecidedAppealLapses_outcomeStands() public {
        uint256 id = _decided(0, 3);
        vm.prank(host);
        appeals.appeal(id);
        uint64 deadline = uint64(block.timestamp) + DECISION_WINDOW;
        vm.expectRevert(abi.encodeWithSelector(ClaimAppeals.DecisionWindowOpen.selector, id, deadline));
        appeals.lapse(id);
        vm.warp(uint256(deadline) + 1);
        uint256 proverBefore = token.balanceOf(prover);
        appeals.lapse(id);
        assertEq(token.balanceOf(prover), proverBefore + APPEAL_BOND);
        vm.prank(address(gov));
        vm.expectRevert(abi.encodeWithSelector(ClaimAppeals.NoPendingAppeal.selector, id));
        appeals.decide(id, true);
        claims.release(id);
        assertEq(uint8(claims.claim(id).status), uint8(Claims.Status.Confirmed));
    }

    // ------------------------------------------------------------------ bad input

    function test_appealAfterWindowReverts() public {
        uint256 id = _decided(0, 3);
        uint64 deadline = uint64(block.timestamp) + APPEAL_WINDOW;
        vm.warp(uint256(deadline) + 1);
        vm.prank(host);
        vm.expectRevert(abi.encodeWithSelector(ClaimAppeals.AppealWindowClosed.selector, id, deadline));
        appeals.appeal(id);
    }

    function test_appealWithoutBondReverts_noState() public {
        uint256 id = _decided(0, 3);
        vm.prank(host);
        token.approve(address(appeals), 0);
        uint256 balance = token.balanceOf(host);
        vm.prank(host);
        vm.expectRevert(abi.encodeWithSelector(ClaimAppeals.BondNotPosted.selector, APPEAL_BOND, 0, balance));
        appeals.appeal(id);
        assertEq(uint8(appeals.appealOf(id).state), uint8(ClaimAppeals.State.None));
    }

    function test_doubleAppealReverts() public {
        uint256 id = _decided(0, 3);
        vm.prank(host);
        appeals.appeal(id);
        vm.prank(host);
        vm.expectRevert(abi.encodeWithSelector(ClaimAppeals.AlreadyAppealed.selector, id));
        appeals.appeal(id);
    }

    function test_decideByNonDaoCallerReverts() public {
        uint256 id = _decided(0, 3);
        vm.prank(host);
        appeals.appeal(id);
        vm.prank(s3); // a DAO member acting alone is not the DAO
        vm.expectRevert(abi.encodeWithSelector(ClaimAppeals.NotGovernor.selector, s3));
        appeals.decide(id, true);
        vm.expectRevert(abi.encodeWithSelector(Claims.NotAppeals.selector, address(this)));
        claims.overturn(id);
    }

    function test_onlyTheLosingSideMayAppeal() public {
        uint256 id = _decided(0, 3);
        vm.prank(prover); // the winner
        vm.expectRevert(abi.encodeWithSelector(ClaimAppeals.NotLosingSide.selector, prover, id));
        appeals.appeal(id);
        vm.prank(verifiers[0]);
        vm.expectRevert(abi.encodeWithSelector(ClaimAppeals.NotLosingSide.selector, verifiers[0], id));
        appeals.appeal(id);
    }

    function test_undecidedOrReleasedClaimNotAppealable() public {
        uint256 id = _claimFingerprint(0, host);
        vm.prank(host);
        vm.expectRevert(abi.encodeWithSelector(ClaimAppeals.ClaimNotAppealable.selector, id, Claims.Status.Open));
        appeals.appeal(id);
        vm.warp(block.timestamp + CHALLENGE + 1);
        _voteAll(id, true);
        claims.finalize(id);
        vm.warp(block.timestamp + APPEAL_WINDOW + 1);
        claims.release(id);
        vm.prank(host);
        vm.expectRevert(abi.encodeWithSelector(ClaimAppeals.ClaimNotAppealable.selector, id, Claims.Status.Confirmed));
        appeals.appeal(id);
    }

    function test_safetyProposalIsTheOnlyTypeThatMayDecide() public {
        uint256 id = _decided(0, 3);
        vm.prank(host);
        appeals.appeal(id);
        address[] memory t = new address[](1);
        uint256[] memory v = new uint256[](1);
        bytes[] memory d = new bytes[](1);
        t[0] = address(appeals);
        d[0] = abi.encodeCall(ClaimAppeals.decide, (id, true));
        vm.prank(p3);
        vm.expectRevert(
            abi.encodeWithSelector(
                DaoGovernor.ActionNotAllowed.selector, DaoGovernor.ProposalType.Emergency, address(appeals), ClaimAppeals.decide.selector
            )
        );
        gov.proposeTyped(DaoGovernor.ProposalType.Emergency, t, v, d, "x");
    }

    function test_bindingsAreOnce() public {
        vm.expectRevert(Claims.AppealsAlreadySet.selector);
        claims.setAppeals(address(0xBEEF));
        vm.expectRevert(ClaimAppeals.GovernorAlreadySet.selector);
        appeals.setGovernor(address(0xBEEF));
    }
}
