// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OmlBase} from "./OmlBase.sol";
import {Claims} from "../../contracts/oml/Claims.sol";
import {HostAnswers} from "../../contracts/oml/HostAnswers.sol";
import {FingerprintFixture} from "./FingerprintFixture.sol";

/// @notice Issue #14: claims carry the host's signed answer (nobody re-asks the host after the key
/// is public), and sealed leak claims are judged on observations committed before the reveal.
contract ClaimsEvidenceTest is OmlBase {
    string constant ENDPOINT = "http://rogue.example:8000";
    bytes constant SEALED = hex"5ea1ed";

    function setUp() public override {
        super.setUp();
        vm.prank(community);
        registry.setHostSubsetRoot(modelId, host2, FingerprintFixture.ROOT); // host2's copy: every fingerprint
    }

    /// @dev Commit `r`, next block, expect `err` from the reveal; nothing is spent or paid.
    function _revealReverts(Claims.SignedReveal memory r, bytes memory err) internal {
        vm.roll(block.number + 1);
        _commitFor(r);
        vm.roll(block.number + 1);
        uint256 proverBefore = token.balanceOf(prover);
        vm.expectRevert(err);
        vm.prank(prover);
        claims.reveal(r);
        assertTrue(!claims.keySpent(modelId, keccak256(bytes(r.key))), "key not spent");
        assertEq(token.balanceOf(prover), proverBefore, "no bond taken");
        assertEq(claims.claimCount(), 0, "no claim");
    }

    // ------------------------------------------------------------------ signed answers

    function test_signedAnswer_isTheEvidence_hostSlashedWithoutBeingAsked() public {
        uint256 claimId = _claimFingerprint(0, host2);
        Claims.Claim memory c = claims.claim(claimId);
        assertEq(c.commitBlock, c.revealBlock - 1, "commit block recorded");
        _voteAll(claimId, true);
        vm.warp(block.timestamp + CHALLENGE + 1);
        claims.finalize(claimId);
        assertEq(staking.slashableOf(host2), 0, "slashed on its own signed answer");
        assertEq(staking.slashableOf(host), STAKE, "other host untouched");
    }

    function test_reveal_unsignedAnswerReverts() public {
        Claims.SignedReveal memory r = _signedReveal(0, host2, "s");
        r.signature = "";
        _revealReverts(r, abi.encodeWithSelector(Claims.BadAnswerSignature.selector, host2));
    }

    function test_reveal_answerSignedByAnotherKeyReverts() public {
        Claims.SignedReveal memory r = _signedReveal(0, host2, "s");
        r.signature = _answerSig(r.answer, hostKey); // the prover frames host2 with host's signature
        _revealReverts(r, abi.encodeWithSelector(Claims.BadAnswerSignature.selector, host2));
    }

    function test_reveal_answerEditedAfterSigningReverts() public {
        Claims.SignedReveal memory r = _signedReveal(0, host2, "s");
        r.answer.time += 1;
        _revealReverts(r, abi.encodeWithSelector(Claims.BadAnswerSignature.selector, host2));
    }

    function test_reveal_answerSignedForAnotherChainReverts() public {
        Claims.SignedReveal memory r = _signedReveal(0, host2, "s");
        uint256 chainId = block.chainid;
        vm.chainId(chainId + 1);
        r.signature = _answerSig(r.answer, host2Key);
        vm.chainId(chainId);
        _revealReverts(r, abi.encodeWithSelector(Claims.BadAnswerSignature.selector, host2));
    }

    function test_reveal_answerForAnotherHostModelKeyOrLicenceReverts() public {
        Claims.SignedReveal memory r = _signedReveal(0, host2, "s");
        r.answer.host = host; // host's own signed answer, pinned on host2
        r.signature = _answerSig(r.answer, hostKey);
        _revealReverts(r, abi.encodeWithSelector(Claims.AnswerHostMismatch.selector, host));
        r = _signedReveal(0, host2, "s2");
        r.answer.modelId = modelId + 1;
        r.signature = _answerSig(r.answer, host2Key);
        _revealReverts(r, abi.encodeWithSelector(Claims.AnswerModelMismatch.selector, modelId + 1));
        r = _signedReveal(0, host2, "s3");
        r.answer.promptHash = keccak256("another prompt");
        r.signature = _answerSig(r.answer, host2Key);
        _revealReverts(r, abi.encodeWithSelector(Claims.AnswerPromptMismatch.selector, keccak256("another prompt")));
        r = _signedReveal(0, host2, "s4");
        r.answer.licenceStart -= 1; // an answer under an earlier licence
        r.signature = _answerSig(r.answer, host2Key);
        _revealReverts(r, abi.encodeWithSelector(Claims.AnswerLicenceMismatch.selector, r.answer.licenceStart));
    }

    function test_reveal_completionNotTheSignedOneOrWithoutTheResponseReverts() public {
        Claims.SignedReveal memory r = _signedReveal(0, host2, "s");
        r.completion = string.concat(r.completion, "!"); // not what the host signed
        _revealReverts(r, abi.encodeWithSelector(Claims.CompletionHashMismatch.selector, r.answer.completionHash));
        r = _signedReveal(0, host2, "s2");
        r.completion = "a different answer";
        r.answer.completionHash = keccak256(bytes(r.completion));
        r.signature = _answerSig(r.answer, host2Key); // the host really answered something else
        _revealReverts(r, abi.encodeWithSelector(Claims.CompletionLacksResponse.selector));
    }

    function test_reveal_replayedAnswerReverts() public {
        Claims.SignedReveal memory r = _signedReveal(0, host2, "first");
        vm.roll(block.number + 1);
        _commitFor(r);
        vm.roll(block.number + 1);
        vm.prank(prover);
        uint256 first = claims.reveal(r);
        bytes32 digest = claims.answers().answerDigest(r.answer);
        assertTrue(claims.answerUsed(digest), "answer spent");
        r.salt = "another salt"; // the same signed answer behind a new commitment
        vm.roll(block.number + 1);
        _commitFor(r);
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(Claims.AnswerAlreadyUsed.selector, digest));
        vm.prank(prover);
        claims.reveal(r);
        assertEq(claims.claimCount(), first, "no second claim");
    }

    // ------------------------------------------------------------------ sealed claims

    function _leak(uint256 i) internal view returns (Claims.LeakReveal memory r) {
        (string memory key, string memory response, bytes32[] memory proof) = FingerprintFixture.pair(i);
        (,, bytes32[] memory subsetProof) = FingerprintFixture.pair(i);
        r = Claims.LeakReveal(modelId, host2, ENDPOINT, key, response, bytes32("leak"), proof, subsetProof);
    }

    function _commitSealed(Claims.LeakReveal memory r) internal returns (bytes32 c) {
        vm.roll(block.number + 1);
        c = claims.leakCommitment(r.key, r.response, r.host, r.endpoint, r.salt);
        vm.prank(prover);
        claims.commitSealed(c, SEALED);
    }

    function _observe(uint256 i, bytes32 c, string memory observed) internal {
        bytes32 h = claims.observationHash(c, verifiers[i], observed, bytes32(i));
        vm.prank(verifiers[i]);
        claims.observe(prover, c, h);
    }

    function _reveal(Claims.LeakReveal memory r) internal returns (uint256 claimId) {
        vm.roll(block.number + 1);
        vm.prank(prover);
        claimId = claims.revealLeak(r);
    }

    function test_sealed_endpointThatGoesQuietAfterTheRevealIsStillSlashed() public {
        Claims.LeakReveal memory r = _leak(1);
        bytes32 c = _commitSealed(r);
        // they saw the fingerprint before the reveal
        for (uint256 i; i < 3; ++i) {
            _observe(i, c, r.response);
        }
        uint256 claimId = _reveal(r);
        // After the reveal the endpoint answers nothing: verifiers can no longer observe, and need not.
        vm.expectRevert(abi.encodeWithSelector(Claims.NoSealedCommitment.selector, prover, c));
        vm.prank(verifiers[0]);
        claims.observe(prover, c, keccak256("late"));
        vm.expectRevert(abi.encodeWithSelector(Claims.ObservationRequired.selector, claimId));
        vm.prank(verifiers[0]);
        claims.vote(claimId, true);
        for (uint256 i; i < 3; ++i) {
            vm.prank(verifiers[i]);
            claims.voteObserved(Claims.ObservedVote(claimId, true, r.response, bytes32(i)));
        }
        vm.warp(block.timestamp + CHALLENGE + 1);
        claims.finalize(claimId);
        assertEq(staking.slashableOf(host2), 0, "leaking host slashed");
        assertEq(staking.slashableOf(host), STAKE, "other host untouched");
    }

    function test_sealed_observationMismatchAndMissingObservation() public {
        Claims.LeakReveal memory r = _leak(1);
        bytes32 c = _commitSealed(r);
        _observe(0, c, r.response);
        _observe(1, c, r.response);
        vm.expectRevert(abi.encodeWithSelector(Claims.AlreadyObserved.selector, verifiers[1], c));
        vm.prank(verifiers[1]);
        claims.observe(prover, c, keccak256("again"));
        vm.expectRevert(abi.encodeWithSelector(Claims.NotVerifier.selector, prover));
        vm.prank(prover);
        claims.observe(prover, c, keccak256("prover"));
        uint256 claimId = _reveal(r); // verifiers[2] never observed
        vm.expectRevert(abi.encodeWithSelector(Claims.ObservationMismatch.selector, verifiers[0], claimId));
        vm.prank(verifiers[0]);
        claims.voteObserved(Claims.ObservedVote(claimId, true, "something it did not see", bytes32(uint256(0))));
        vm.expectRevert(abi.encodeWithSelector(Claims.ObservationMismatch.selector, verifiers[1], claimId));
        vm.prank(verifiers[1]);
        claims.voteObserved(Claims.ObservedVote(claimId, true, r.response, bytes32(uint256(0)))); // 0's salt
        vm.expectRevert(abi.encodeWithSelector(Claims.NoObservation.selector, verifiers[2], claimId));
        vm.prank(verifiers[2]);
        claims.voteObserved(Claims.ObservedVote(claimId, true, r.response, bytes32(uint256(2))));
        for (uint256 i; i < 2; ++i) {
            vm.prank(verifiers[i]);
            claims.voteObserved(Claims.ObservedVote(claimId, true, r.response, bytes32(i)));
        }
        vm.warp(block.timestamp + CHALLENGE + 1);
        claims.finalize(claimId);
        assertEq(staking.slashableOf(host2), 0, "two of three observed and confirmed");
        uint256 before = staking.slashableOf(verifiers[2]);
        claims.settleVerifier(claimId, verifiers[2]);
        assertEq(staking.slashableOf(verifiers[2]), before - PENALTY, "no observation = did not vote");
    }

    function test_sealed_garbageSealCannotBeConfirmed() public {
        // Every verifier's ciphertext failed to open to the commitment: each observes that and rejects.
        Claims.LeakReveal memory r = _leak(1);
        bytes32 c = _commitSealed(r);
        string memory bad = "seal-error: sealed key does not open to the commitment";
        for (uint256 i; i < 3; ++i) {
            _observe(i, c, bad);
        }
        uint256 claimId = _reveal(r);
        uint256 proverBefore = token.balanceOf(prover);
        uint256 hostBefore = token.balanceOf(host2);
        for (uint256 i; i < 3; ++i) {
            vm.prank(verifiers[i]);
            claims.voteObserved(Claims.ObservedVote(claimId, false, bad, bytes32(i)));
        }
        vm.warp(block.timestamp + CHALLENGE + 1);
        claims.finalize(claimId);
        assertTrue(claims.claim(claimId).status == Claims.Status.Rejected, "rejected");
        assertEq(staking.slashableOf(host2), STAKE, "host not slashed");
        assertEq(token.balanceOf(prover), proverBefore, "prover's bond lost");
        assertEq(token.balanceOf(host2), hostBefore + BOND - BOND * VSHARE_BPS / 10_000 / 3 * 3, "bond to host");
    }

    function test_sealed_plainCommitCannotRevealALeak_andSignedClaimsTakePlainVotes() public {
        Claims.LeakReveal memory r = _leak(1);
        vm.roll(block.number + 1);
        bytes32 c = claims.leakCommitment(r.key, r.response, r.host, r.endpoint, r.salt);
        vm.prank(prover);
        claims.commit(c);
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(Claims.NoSealedCommitment.selector, prover, c));
        vm.prank(prover);
        claims.revealLeak(r);
        vm.expectRevert(Claims.EmptySealedKeys.selector);
        vm.prank(prover);
        claims.commitSealed(keccak256("x"), "");
        uint256 claimId = _claimFingerprint(0, host2);
        vm.expectRevert(abi.encodeWithSelector(Claims.NotSealedClaim.selector, claimId));
        vm.prank(verifiers[0]);
        claims.voteObserved(Claims.ObservedVote(claimId, true, "", bytes32(0)));
    }

    function test_setSealKey_onlyTheCallersOwnKey() public {
        address v = vm.addr(1); // private key 1: its public key is the generator G
        bytes memory pub = abi.encodePacked(
            uint256(0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798),
            uint256(0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)
        );
        vm.expectRevert(abi.encodeWithSelector(Claims.NotOwnSealKey.selector, verifiers[0]));
        vm.prank(verifiers[0]);
        claims.setSealKey(pub);
        vm.prank(v);
        claims.setSealKey(pub);
        assertEq(keccak256(claims.sealKeyOf(v)), keccak256(pub), "published");
    }
}
