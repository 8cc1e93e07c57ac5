// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {DaoModelRegistry} from "../../contracts/dao/DaoModelRegistry.sol";
import {HardwareRegistry} from "../../contracts/dao/HardwareRegistry.sol";
import {OTKIssuer} from "../../contracts/dao/OTKIssuer.sol";
import {DaoComputeBase} from "./OTKIssuer.t.sol";

/// @dev Emergency powers, run terms and attestation challenges, each with the registries owned by
/// this test contract standing in for the governor (the allow-lists that keep these powers to
/// Emergency proposals are DaoGovernor.t.sol's; the full path through votes is tests/dao/test_dao.py's).
contract EmergencyPowersTest is DaoComputeBase {
    bytes32 constant K0 = "k0";
    bytes32 constant K1 = "k1";

    function _hash(bytes32 key) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(key));
    }

    function _unhealthy(uint256 runId, OTKIssuer.HaltReason reason) internal {
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.RunUnhealthy.selector, runId, reason));
    }

    function test_revokeModel_haltsRuns_refusesKeys_unspentReclaimable() public {
        _attest(GOOD);
        uint256 runId = _open(1_000, 100);
        _drip(runId, K0);
        _drip(runId, K1);
        vm.prank(operator);
        issuer.consume(K0);
        vm.expectEmit(true, false, false, true, address(models));
        emit DaoModelRegistry.ModelRevoked(modelId, "unsafe outputs");
        models.revoke(modelId, "unsafe outputs");
        assertEq(uint256(models.getModel(modelId).status), uint256(DaoModelRegistry.Status.Revoked), "revoked");
        // the operator cannot use the key it holds, even before anyone halts the run
        vm.prank(operator);
        _unhealthy(runId, OTKIssuer.HaltReason.ModelRevoked);
        issuer.consume(K1);
        // anyone reclaims the unspent key at once: its units return to every budget
        assertEq(issuer.reclaim(_hash(K1)), 100, "reclaimed");
        assertEq(issuer.modelIssued(modelId), 100, "only the consumed key counts");
        vm.expectEmit(true, false, false, true, address(issuer));
        emit OTKIssuer.RunHalted(runId, OTKIssuer.HaltReason.ModelRevoked);
        issuer.halt(runId);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.ModelNotCertified.selector, modelId));
        issuer.openRun(_spec(100, 10));
        // revocation is final: no retry, no approval, no second revocation
        vm.expectRevert(
            abi.encodeWithSelector(DaoModelRegistry.WrongModelStatus.selector, modelId, DaoModelRegistry.Status.Revoked)
        );
        models.approve(modelId, 1, DaoModelRegistry.Scope.Narrow, "triage", 1, uint64(block.timestamp + 1 days));
        vm.expectRevert(
            abi.encodeWithSelector(DaoModelRegistry.WrongModelStatus.selector, modelId, DaoModelRegistry.Status.Revoked)
        );
        models.revoke(modelId, "again");
    }

    function test_emergencyPowers_ownerOnly() public {
        address mallory = address(0xBAD);
        vm.startPrank(mallory);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, mallory));
        models.revoke(modelId, "x");
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, mallory));
        models.freezeBudget(modelId, "x");
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, mallory));
        models.cutBudget(modelId, 1);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, mallory));
        hardware.revoke(hwId, "x");
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, mallory));
        hardware.freezeBudget(hwId, "x");
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, mallory));
        hardware.cutBudget(hwId, 1);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, mallory));
        issuer.haltRun(1);
        vm.stopPrank();
        assertTrue(models.isCertified(modelId), "untouched");
    }

    function test_revokeHardware_byVote_haltsRuns_evenAfterReapproval() public {
        _attest(GOOD);
        uint256 runId = _open(1_000, 100);
        _drip(runId, K0);
        vm.expectEmit(true, false, false, true, address(hardware));
        emit HardwareRegistry.HardwareRevokedByVote(hwId, "seal broken");
        hardware.revoke(hwId, "seal broken");
        assertEq(uint256(hardware.statusOf(hwId)), uint256(HardwareRegistry.Status.Pending), "pending again");
        hardware.approve(hwId, 5_000); // re-approved after inspection: the old run stays dead
        vm.prank(operator);
        _unhealthy(runId, OTKIssuer.HaltReason.HardwareRevoked);
        issuer.consume(K0);
        assertEq(issuer.reclaim(_hash(K0)), 100, "reclaimable");
    }

    function test_freezeBudget_model_and_hardware_pausesRationsNotKeys() public {
        _attest(GOOD);
        uint256 runId = _open(1_000, 100);
        _drip(runId, K0);
        models.freezeBudget(modelId, "incident");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.ModelBudgetFrozen.selector, modelId));
        issuer.drip(runId, _hash(K1));
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.ModelBudgetFrozen.selector, modelId));
        issuer.openRun(_spec(100, 10));
        vm.prank(operator);
        issuer.consume(K0); // a freeze is a pause: issued keys stay usable
        vm.expectRevert(abi.encodeWithSelector(DaoModelRegistry.AlreadyFrozen.selector, modelId));
        models.freezeBudget(modelId, "again");
        models.unfreezeBudget(modelId);
        hardware.freezeBudget(hwId, "audit");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.HardwareBudgetFrozen.selector, hwId));
        issuer.drip(runId, _hash(K1));
        hardware.unfreezeBudget(hwId);
        vm.expectRevert(abi.encodeWithSelector(HardwareRegistry.NotFrozen.selector, hwId));
        hardware.unfreezeBudget(hwId);
        assertEq(_drip(runId, K1), 100, "resumes");
    }

    function test_cutBudget_capsWhatIsLeft() public {
        _attest(GOOD);
        uint256 runId = _open(1_000, 100);
        _drip(runId, K0);
        _drip(runId, K1);
        vm.expectEmit(true, false, false, true, address(models));
        emit DaoModelRegistry.ModelBudgetCut(modelId, 10_000, 250);
        models.cutBudget(modelId, 250);
        assertEq(issuer.modelRemaining(modelId), 50, "250 - 200 issued");
        assertEq(_drip(runId, "k2"), 50, "the rest of the cut budget");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.RunBudgetExhausted.selector, runId));
        issuer.drip(runId, _hash("k3"));
        vm.expectRevert(abi.encodeWithSelector(DaoModelRegistry.NotABudgetCut.selector, modelId, 250, 300));
        models.cutBudget(modelId, 300);
        hardware.cutBudget(hwId, 100); // below what is issued: nothing more on this unit
        assertEq(issuer.hardwareRemaining(hwId), 0, "hardware spent");
        vm.expectRevert(abi.encodeWithSelector(HardwareRegistry.NotABudgetCut.selector, hwId, 100, 100));
        hardware.cutBudget(hwId, 100);
    }

    function test_haltRun_byVote() public {
        _attest(GOOD);
        uint256 runId = _open(1_000, 100);
        _drip(runId, K0);
        vm.expectEmit(true, false, false, true, address(issuer));
        emit OTKIssuer.RunHalted(runId, OTKIssuer.HaltReason.HaltedByVote);
        issuer.haltRun(runId);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.RunNotActive.selector, runId, OTKIssuer.RunStatus.Halted));
        issuer.consume(K0);
        assertEq(issuer.reclaim(_hash(K0)), 100, "reclaimable");
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.RunNotActive.selector, runId, OTKIssuer.RunStatus.Halted));
        issuer.haltRun(runId);
    }

    // ------------------------------------------------------------------ run terms

    function test_tier1Model_cannotGetTier3Run_norGeneralScope_norOtherPurpose() public {
        uint256 m1 = models.submit(keccak256("small"), "ipfs://small");
        models.approve(m1, 1, DaoModelRegistry.Scope.Narrow, "radiology triage", 5_000, uint64(block.timestamp + 30 days));
        OTKIssuer.RunSpec memory spec = _spec(100, 10);
        spec.modelId = m1;
        spec.purpose = "radiology triage";
        spec.tier = 3;
        vm.startPrank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.TierNotApproved.selector, m1, 1, 3));
        issuer.openRun(spec);
        spec.tier = 1;
        spec.scope = DaoModelRegistry.Scope.General;
        vm.expectRevert(
            abi.encodeWithSelector(
                OTKIssuer.ScopeNotApproved.selector, m1, DaoModelRegistry.Scope.Narrow, DaoModelRegistry.Scope.General
            )
        );
        issuer.openRun(spec);
        spec.scope = DaoModelRegistry.Scope.Narrow;
        spec.purpose = "weapons chemistry";
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.PurposeNotApproved.selector, m1));
        issuer.openRun(spec);
        spec.purpose = "radiology triage";
        uint256 runId = issuer.openRun(spec);
        vm.stopPrank();
        assertEq(issuer.getRun(runId).tier, 1, "tier kept");
    }

    function test_termsChange_haltsRunsOutsideTheNewApproval() public {
        _attest(GOOD);
        uint256 runId = _open(1_000, 100); // tier 2, Narrow, "triage"
        _drip(runId, K0);
        models.setTerms(modelId, 1, DaoModelRegistry.Scope.Narrow, "triage"); // tier lowered by vote
        vm.prank(operator);
        _unhealthy(runId, OTKIssuer.HaltReason.OutsideApproval);
        issuer.consume(K0);
        vm.expectEmit(true, false, false, true, address(issuer));
        emit OTKIssuer.RunHalted(runId, OTKIssuer.HaltReason.OutsideApproval);
        assertEq(_drip(runId, K1), 0, "no ration outside the approval");
    }

    // ------------------------------------------------------------------ challenges

    function _answer(bytes32 measurement) internal returns (bool) {
        return _attest(measurement);
    }

    function test_challenge_blocksRations_untilAnsweredWithItsSeed() public {
        issuer.setChallengeOdds(1); // every ration challenges
        _attest(GOOD);
        uint256 runId = _open(1_000, 100);
        vm.expectEmit(true, false, false, false, address(hardware)); // the seed is drawn: topics only
        emit HardwareRegistry.AttestationChallenged(hwId, bytes32(0), 0);
        _drip(runId, K0);
        bytes32 seed = hardware.getHardware(hwId).challenge;
        assertTrue(seed != bytes32(0), "challenge opened");
        uint64 deadline = hardware.getHardware(hwId).challengeDeadline;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.ChallengePending.selector, hwId, deadline));
        issuer.drip(runId, _hash(K1));
        vm.prank(operator);
        issuer.consume(K0); // an open (not yet overdue) challenge does not void keys
        // an unsolicited attestation cannot dodge it, nor one measured before the challenge
        uint64 at = uint64(block.timestamp);
        bytes memory sig = _sigFor(hwId, GOOD, at, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(HardwareRegistry.WrongChallenge.selector, hwId, seed, bytes32(0)));
        hardware.attest(hwId, GOOD, at, bytes32(0), sig);
        vm.warp(block.timestamp + 60);
        sig = _sigFor(hwId, GOOD, at - 1, seed); // measured before the challenge was issued (at `at`)
        vm.expectRevert(abi.encodeWithSelector(HardwareRegistry.AttestationBeforeChallenge.selector, hwId, at - 1, at));
        hardware.attest(hwId, GOOD, at - 1, seed, sig);
        assertTrue(_answer(GOOD), "answered");
        assertEq(hardware.getHardware(hwId).challenge, bytes32(0), "closed");
        assertEq(_drip(runId, K1), 100, "rations resume");
    }

    function test_missedChallenge_countsAsFailure_andVoidsKeys() public {
        issuer.setChallengeOdds(1);
        _attest(GOOD);
        uint256 runId = _open(1_000, 100);
        _drip(runId, K0);
        uint64 deadline = hardware.getHardware(hwId).challengeDeadline;
        vm.expectRevert(abi.encodeWithSelector(HardwareRegistry.NoOverdueChallenge.selector, hwId));
        hardware.expireChallenge(hwId);
        vm.warp(deadline + 1);
        vm.prank(operator);
        _unhealthy(runId, OTKIssuer.HaltReason.ChallengeMissed);
        issuer.consume(K0);
        bytes32 seed = hardware.getHardware(hwId).challenge;
        uint64 at = uint64(block.timestamp);
        bytes memory late = _sigFor(hwId, GOOD, at, seed);
        vm.expectRevert(abi.encodeWithSelector(HardwareRegistry.ChallengeOverdue.selector, hwId, deadline));
        hardware.attest(hwId, GOOD, at, seed, late);
        vm.expectEmit(true, false, false, true, address(hardware));
        emit HardwareRegistry.ChallengeMissed(hwId, seed, deadline);
        hardware.expireChallenge(hwId); // anyone
        (bool ok,, uint32 failed) = hardware.attestationState(hwId);
        assertTrue(!ok && failed == 1, "a failure");
        assertEq(_drip(runId, K1), 0, "run halted");
        assertEq(uint256(issuer.getRun(runId).status), uint256(OTKIssuer.RunStatus.Halted), "halted");
    }

    function test_missedChallenges_revokeAtTheLimit() public {
        issuer.setChallengeOdds(1);
        for (uint256 i = 0; i < 3; ++i) {
            _attest(GOOD);
            uint256 runId = _open(100, 10);
            _drip(runId, keccak256(abi.encode(i)));
            vm.warp(block.timestamp + 31 minutes);
            hardware.expireChallenge(hwId);
        }
        assertEq(uint256(hardware.statusOf(hwId)), uint256(HardwareRegistry.Status.Pending), "revoked");
    }

    function test_openChallenge_listedChallengersOnly() public {
        vm.expectRevert(abi.encodeWithSelector(HardwareRegistry.NotChallenger.selector, operator));
        vm.prank(operator);
        hardware.openChallenge(hwId, "seed");
    }

    /// @dev The challenge pattern is drawn from prevrandao: different randomness, different rations
    /// challenged; about one in `odds`.
    function testFuzz_challengesAreSemiRandom(uint256 randao) public {
        issuer.setChallengeOdds(4);
        vm.prevrandao(bytes32(randao));
        _attest(GOOD);
        uint256 runId = _open(4_000, 100);
        uint256 challenged;
        for (uint256 i = 0; i < 40; ++i) {
            _drip(runId, keccak256(abi.encode("key", i)));
            if (hardware.getHardware(hwId).challenge != bytes32(0)) {
                challenged++;
                _answer(GOOD);
            }
        }
        assertTrue(challenged > 0, "some rations challenged");
        assertTrue(challenged < 40, "not every ration");
    }
}
