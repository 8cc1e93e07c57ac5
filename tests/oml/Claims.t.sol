// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OmlBase} from "./OmlBase.sol";
import {Claims} from "../../contracts/oml/Claims.sol";
import {UsageLedger} from "../../contracts/oml/UsageLedger.sol";
import {Staking} from "../../contracts/core/Staking.sol";
import {FingerprintFixture} from "./FingerprintFixture.sol";

contract ClaimsTest is OmlBase {
    /// @dev The honest host asks the platform for σ(key) when it serves fingerprint `i`.
    function _servedWithPermission(uint256 i, address who) internal view returns (UsageLedger.Permission memory p) {
        (string memory key,,) = FingerprintFixture.pair(i);
        p = _permission(key, who, 100 + i);
    }

    function _passChallenge() internal {
        vm.warp(block.timestamp + CHALLENGE + 1);
    }

    function test_cheaterIsSlashed_proverRewarded_communityPaid() public {
        uint256 proverBefore = token.balanceOf(prover);
        uint256 claimId = _claimFingerprint(0, host2);
        assertEq(token.balanceOf(address(claims)), BOND, "bond held");
        _voteAll(claimId, true);
        vm.expectRevert(abi.encodeWithSelector(Claims.ChallengeWindowOpen.selector, block.timestamp + CHALLENGE));
        claims.finalize(claimId);
        _passChallenge();
        uint256 reward = STAKE * SHARE_BPS / 10_000;
        uint256 perVerifier = STAKE * VSHARE_BPS / 10_000 / 3;
        vm.expectEmit(true, true, false, true, address(claims));
        emit Claims.ClaimConfirmed(claimId, host2, STAKE, reward, STAKE - reward - 3 * perVerifier, perVerifier);
        claims.finalize(claimId);
        assertEq(staking.slashableOf(host2), 0, "cheater slashed");
        assertEq(staking.stakeOf(host), STAKE, "honest host untouched");
        assertEq(token.balanceOf(prover), proverBefore + reward, "bond back plus reward");
        assertEq(token.balanceOf(community), STAKE - reward - 3 * perVerifier, "community paid");
        assertEq(token.balanceOf(address(claims)), 0, "nothing left behind");
        assertEq(staking.slashedBalance(address(claims)), 3 * perVerifier, "verifier shares held for settlement");
        assertTrue(claims.claim(claimId).status == Claims.Status.Confirmed, "confirmed");
    }

    function test_revealEventLinksTheCommitmentToTheClaimId() public {
        Claims.SignedReveal memory r = _signedReveal(0, host2, keccak256("link"));
        bytes32 commitment = claims.claimCommitment(r.key, r.response, host2, keccak256("link"));
        vm.expectEmit(true, true, false, true, address(claims));
        emit Claims.ClaimCommitted(prover, commitment);
        vm.prank(prover);
        claims.commit(commitment);
        vm.roll(block.number + 1);
        vm.warp(block.timestamp + 12);
        uint256 claimId = claims.claimCount() + 1;
        vm.expectEmit(true, true, true, true, address(claims));
        emit Claims.ClaimRevealed(claimId, modelId, host2, prover, uint64(block.timestamp + CHALLENGE), commitment);
        vm.prank(prover);
        assertEq(claims.reveal(r), claimId, "claim id");
    }

    function test_honestHostDefendedBySignedPermission() public {
        UsageLedger.Permission memory p = _servedWithPermission(1, host);
        bytes memory sig = _platformSig(p);
        uint256 hostBefore = token.balanceOf(host);
        uint256 claimId = _claimFingerprint(1, host);
        vm.prank(host);
        claims.defendWithPermission(claimId, p, sig);
        assertTrue(claims.claim(claimId).status == Claims.Status.Defended, "defended");
        assertEq(token.balanceOf(host), hostBefore + BOND, "prover's bond to host");
        assertEq(staking.stakeOf(host), STAKE, "stake untouched");
        _passChallenge();
        vm.expectRevert(abi.encodeWithSelector(Claims.ClaimNotOpen.selector, claimId, Claims.Status.Defended));
        claims.finalize(claimId);
    }

    function test_honestHostDefendedByUsageBatch() public {
        UsageLedger.Permission memory p = _servedWithPermission(2, host);
        bytes32 leafHash = usage.usageLeaf(usage.permissionDigest(p));
        vm.prank(host);
        uint256 batchId = usage.postUsage(modelId, 1, leafHash); // one-permission batch: root = leaf
        vm.warp(block.timestamp + 1);
        uint256 claimId = _claimFingerprint(2, host);
        claims.defendWithUsage(claimId, p, batchId, new bytes32[](0));
        assertTrue(claims.claim(claimId).status == Claims.Status.Defended, "defended");
    }

    function test_defence_permissionObtainedAfterCommitReverts() public {
        Claims.SignedReveal memory r = _signedReveal(0, host2, bytes32("s"));
        _commitFor(r);
        uint64 commitBlock = uint64(block.number);
        vm.roll(block.number + 1);
        vm.warp(block.timestamp + 10);
        vm.prank(prover);
        uint256 claimId = claims.reveal(r);
        UsageLedger.Permission memory late = _permission(r.key, host2, 1); // issued after the commitment
        bytes memory sig = _platformSig(late);
        vm.expectRevert(abi.encodeWithSelector(Claims.PermissionIssuedAfterCommit.selector, claimId, late.issuedBlock));
        claims.defendWithPermission(claimId, late, sig);
        assertTrue(late.issuedBlock > commitBlock, "late by construction");
    }

    /// @dev Issue #14: commit, σ and reveal in one second. A timestamp cannot order them; the block can.
    function test_defence_permissionIssuedInTheCommitBlockReverts_sameTimestamp() public {
        Claims.SignedReveal memory r = _signedReveal(0, host2, bytes32("s"));
        _commitFor(r);
        UsageLedger.Permission memory sameBlock = _permission(r.key, host2, 1); // the commit block's head
        vm.roll(block.number + 1); // reveal in the next block, same second
        vm.prank(prover);
        uint256 claimId = claims.reveal(r);
        UsageLedger.Permission memory afterReveal = _permission(r.key, host2, 2); // requested after the reveal
        assertEq(afterReveal.expiry, claims.claim(claimId).committedAt + TTL, "expiry cannot tell them apart");
        uint256 hostBefore = token.balanceOf(host2);
        for (uint256 i; i < 2; ++i) {
            UsageLedger.Permission memory p = i == 0 ? sameBlock : afterReveal;
            bytes memory sig = _platformSig(p);
            vm.expectRevert(abi.encodeWithSelector(Claims.PermissionIssuedAfterCommit.selector, claimId, p.issuedBlock));
            claims.defendWithPermission(claimId, p, sig);
        }
        _voteAll(claimId, true);
        _passChallenge();
        claims.finalize(claimId);
        assertEq(staking.slashableOf(host2), 0, "the cheater is slashed");
        assertEq(token.balanceOf(host2), hostBefore, "no bond for the cheater");
    }

    function test_defence_permissionFromTheBlockBeforeDefends_sameTimestamp() public {
        Claims.SignedReveal memory r = _signedReveal(1, host, bytes32("s"));
        UsageLedger.Permission memory p = _permission(r.key, host, 1); // served in the block before
        bytes memory sig = _platformSig(p);
        vm.roll(block.number + 1);
        _commitFor(r);
        vm.roll(block.number + 1);
        vm.prank(prover);
        uint256 claimId = claims.reveal(r);
        uint256 hostBefore = token.balanceOf(host);
        claims.defendWithPermission(claimId, p, sig);
        assertTrue(claims.claim(claimId).status == Claims.Status.Defended, "defended");
        assertEq(token.balanceOf(host), hostBefore + BOND, "bond to the honest host");
        assertEq(staking.slashableOf(host), STAKE, "never slashed");
    }

    function test_defence_batchPostedInTheCommitBlockReverts() public {
        Claims.SignedReveal memory r = _signedReveal(2, host2, bytes32("s"));
        UsageLedger.Permission memory p = _servedWithPermission(2, host2);
        vm.roll(block.number + 1);
        _commitFor(r);
        bytes32 leaf = usage.usageLeaf(usage.permissionDigest(p));
        vm.prank(host2);
        uint256 batchId = usage.postUsage(modelId, 1, leaf);
        vm.roll(block.number + 1);
        vm.prank(prover);
        uint256 claimId = claims.reveal(r);
        vm.expectRevert(abi.encodeWithSelector(Claims.BatchPostedAfterCommit.selector, claimId, batchId));
        claims.defendWithUsage(claimId, p, batchId, new bytes32[](0));
    }

    function test_defence_batchPostedAfterCommitReverts() public {
        uint256 claimId = _claimFingerprint(2, host2);
        UsageLedger.Permission memory p = _servedWithPermission(2, host2);
        p.issuedBlock = claims.claim(claimId).commitBlock - 1; // pretend-early σ; the batch is still late
        bytes32 leafHash = usage.usageLeaf(usage.permissionDigest(p));
        vm.prank(host2);
        uint256 batchId = usage.postUsage(modelId, 1, leafHash);
        vm.expectRevert(abi.encodeWithSelector(Claims.BatchPostedAfterCommit.selector, claimId, batchId));
        claims.defendWithUsage(claimId, p, batchId, new bytes32[](0));
    }

    function test_defence_otherHostsPermissionReverts() public {
        UsageLedger.Permission memory p = _servedWithPermission(0, host);
        bytes memory sig = _platformSig(p);
        uint256 claimId = _claimFingerprint(0, host2);
        vm.expectRevert(abi.encodeWithSelector(Claims.PermissionMismatch.selector, claimId));
        claims.defendWithPermission(claimId, p, sig);
        p.host = host2;
        vm.expectRevert(abi.encodeWithSelector(Claims.InvalidPermission.selector, claimId));
        claims.defendWithPermission(claimId, p, sig);
    }

    function test_defence_afterChallengeWindowReverts() public {
        UsageLedger.Permission memory p = _servedWithPermission(1, host);
        bytes memory sig = _platformSig(p);
        uint256 claimId = _claimFingerprint(1, host);
        uint64 ends = claims.claim(claimId).revealedAt + CHALLENGE;
        _passChallenge();
        vm.expectRevert(abi.encodeWithSelector(Claims.ChallengeWindowClosed.selector, ends));
        claims.defendWithPermission(claimId, p, sig);
    }

    function test_doubleClaimOfSpentKeyReverts() public {
        _claimFingerprint(3, host2);
        (string memory key,,) = FingerprintFixture.pair(3);
        vm.expectRevert(abi.encodeWithSelector(Claims.KeySpent.selector, modelId, keccak256(bytes(key))));
        this.claimAgain(3, host);
    }

    /// @dev External so expectRevert sees the reveal's revert (commit succeeds first).
    function claimAgain(uint256 i, address target) external returns (uint256) {
        return _claimFingerprint(i, target);
    }

    function test_revealAfterWindowReverts() public {
        Claims.SignedReveal memory r = _signedReveal(0, host2, bytes32("s"));
        _commitFor(r);
        uint64 deadline = uint64(block.timestamp) + REVEAL;
        vm.roll(block.number + 1);
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(Claims.RevealWindowClosed.selector, deadline));
        vm.prank(prover);
        claims.reveal(r);
    }

    function test_revealInCommitBlockReverts() public {
        Claims.SignedReveal memory r = _signedReveal(0, host2, bytes32("s"));
        _commitFor(r);
        vm.expectRevert(abi.encodeWithSelector(Claims.RevealTooEarly.selector, block.number));
        vm.prank(prover);
        claims.reveal(r);
    }

    function test_revealNeedsTheProversOwnCommitment() public {
        Claims.SignedReveal memory r = _signedReveal(0, host2, bytes32("s"));
        _commitFor(r);
        vm.roll(block.number + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                Claims.UnknownCommitment.selector, claims.claimCommitment(r.key, r.response, host2, r.salt)
            )
        );
        vm.prank(address(0xBAD)); // a front-runner replaying the reveal
        claims.reveal(r);
    }

    function test_revealOfNonFingerprintReverts() public {
        Claims.SignedReveal memory r = _signedReveal(0, host2, bytes32("s"));
        r.response = "made up";
        _commitFor(r);
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(Claims.NotAFingerprint.selector, modelId));
        vm.prank(prover);
        claims.reveal(r);
        assertTrue(!claims.keySpent(modelId, keccak256(bytes(r.key))), "key not spent by a failed reveal");
    }

    function test_claimAgainstUnboundHostReverts() public {
        address stranger = address(0x5742);
        vm.expectRevert(abi.encodeWithSelector(Claims.HostNotBound.selector, modelId, stranger));
        this.claimAgain(0, stranger);
    }

    function test_falseClaimLosesBond() public {
        uint256 proverBefore = token.balanceOf(prover);
        uint256 hostBefore = token.balanceOf(host);
        uint256 claimId = _claimFingerprint(4, host);
        vm.prank(verifiers[0]);
        claims.vote(claimId, false);
        vm.prank(verifiers[1]);
        claims.vote(claimId, false);
        _passChallenge();
        claims.finalize(claimId);
        assertTrue(claims.claim(claimId).status == Claims.Status.Rejected, "rejected");
        assertEq(token.balanceOf(prover), proverBefore - BOND, "prover lost bond");
        uint256 perVerifier = BOND * VSHARE_BPS / 10_000 / 2;
        assertEq(token.balanceOf(host), hostBefore + BOND - 2 * perVerifier, "host compensated");
        assertEq(claims.claim(claimId).verifierReward, perVerifier, "rejecting verifiers' share");
        assertEq(staking.stakeOf(host), STAKE, "stake untouched");
    }

    function test_noMajorityRejectsAfterVoting_andLateVoteReverts() public {
        uint256 claimId = _claimFingerprint(0, host2);
        vm.prank(verifiers[0]);
        claims.vote(claimId, true);
        _passChallenge();
        uint64 deadline = claims.claim(claimId).revealedAt + CHALLENGE + VOTING;
        vm.expectRevert(abi.encodeWithSelector(Claims.VotingOpen.selector, deadline));
        claims.finalize(claimId);
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(Claims.VotingClosed.selector, deadline));
        vm.prank(verifiers[1]);
        claims.vote(claimId, true);
        claims.finalize(claimId);
        assertTrue(claims.claim(claimId).status == Claims.Status.Rejected, "no majority, rejected");
        assertEq(staking.stakeOf(host2), STAKE, "not slashed");
    }

    function test_vote_rules() public {
        uint256 claimId = _claimFingerprint(0, host2);
        vm.startPrank(verifiers[0]);
        claims.vote(claimId, true);
        vm.expectRevert(abi.encodeWithSelector(Claims.AlreadyVoted.selector, verifiers[0], claimId));
        claims.vote(claimId, true);
        vm.stopPrank();
        address late = address(0x1A7E);
        vm.prank(admin);
        token.mint(late, VSTAKE);
        _approveAndStake(late, VSTAKE);
        vm.prank(late);
        claims.registerVerifier();
        vm.expectRevert(abi.encodeWithSelector(Claims.RegisteredAfterReveal.selector, late, claimId));
        vm.prank(late);
        claims.vote(claimId, true);
        vm.expectRevert(abi.encodeWithSelector(Staking.StakeIsLocked.selector, verifiers[1], 1, 0));
        vm.prank(verifiers[1]);
        staking.requestUnstake(1); // a registered verifier's minimum stake is locked
        bytes32 moduleRole = staking.MODULE_ROLE();
        vm.prank(admin);
        staking.grantRole(moduleRole, admin);
        vm.prank(admin);
        staking.slash(verifiers[1], 1, "test"); // only a slash takes it below the minimum
        vm.expectRevert(
            abi.encodeWithSelector(Claims.InsufficientVerifierStake.selector, verifiers[1], VSTAKE, VSTAKE - 1)
        );
        vm.prank(verifiers[1]);
        claims.vote(claimId, true);
        vm.expectRevert(abi.encodeWithSelector(Claims.NotVerifier.selector, prover));
        vm.prank(prover);
        claims.vote(claimId, true);
    }

    /// @dev Slashing never asks Staking for more than the host still has (which would revert
    /// SlashExceedsStake): a host that withdrew part of its stake loses what is left, capped at
    /// the model's stakeRequired, and a second claim against an emptied host still settles.
    function testFuzz_slashNeverExceedsStake(uint256 withdrawn) public {
        withdrawn = bound(withdrawn, 0, STAKE);
        if (withdrawn != 0) {
            // The licence locks the stake: only after it ends can the host take stake out.
            vm.warp(agreements.licenceOf(modelId, host2).endsAt);
            agreements.release(modelId, host2);
            vm.prank(host2);
            staking.requestUnstake(withdrawn);
            vm.warp(block.timestamp + 7 days);
            vm.prank(host2);
            staking.withdraw();
        }
        uint256 left = STAKE - withdrawn;
        uint256 claimId = _claimFingerprint(0, host2);
        _voteAll(claimId, true);
        _passChallenge();
        claims.finalize(claimId);
        assertEq(staking.slashableOf(host2), 0, "all that was left is slashed");
        uint256 pool = left * VSHARE_BPS / 10_000 / 3 * 3;
        assertEq(token.balanceOf(community), left - left * SHARE_BPS / 10_000 - pool, "community share");
        uint256 again = _claimFingerprint(1, host2);
        _voteAll(again, true);
        _passChallenge();
        claims.finalize(again); // slashes 0, still confirms and returns the bond
        assertTrue(claims.claim(again).status == Claims.Status.Confirmed, "confirmed");
        assertEq(staking.stakeOf(host), STAKE, "honest host untouched");
    }

    function test_slashCappedAtStakeRequired() public {
        vm.prank(host2);
        staking.stake(50 ether); // holds more than the model requires
        uint256 claimId = _claimFingerprint(0, host2);
        _voteAll(claimId, true);
        _passChallenge();
        claims.finalize(claimId);
        assertEq(staking.stakeOf(host2), 50 ether, "only stakeRequired slashed");
    }

    function test_stakingRejectsSlashBeyondStake() public {
        vm.expectRevert(abi.encodeWithSelector(Staking.SlashExceedsStake.selector, host2, STAKE + 1, STAKE));
        vm.prank(address(claims));
        staking.slash(host2, STAKE + 1, "too much");
    }

    function test_revealWithoutVerifiersReverts() public {
        for (uint256 i; i < 3; ++i) {
            vm.prank(verifiers[i]);
            claims.leaveVerifiers();
        }
        vm.expectRevert(Claims.NoVerifiers.selector);
        this.claimAgain(0, host2);
    }
}
