// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OmlBase} from "./OmlBase.sol";
import {Claims} from "../../contracts/oml/Claims.sol";
import {UsageLedger} from "../../contracts/oml/UsageLedger.sol";
import {FingerprintFixture} from "./FingerprintFixture.sol";
import {Staking} from "../../contracts/core/Staking.sol";

/// @notice Traced-leak claims (a fingerprint of host A's subset served at another endpoint) and the
/// settlement of verifier rewards and penalties.
contract ClaimsLeakSettleTest is OmlBase {
    string constant ENDPOINT = "http://rogue.example:8000";
    /// @dev Stands for the ECIES ciphertexts (the contract only publishes them; tests/oml/test_sealed.py opens real ones).
    bytes constant SEALED = hex"5ea1ed";
    string constant SERVED = "the endpoint's answer";

    function setUp() public override {
        super.setUp();
        // host's copy carries fingerprints {0, 1}, host2's copy {2, 3}: two-leaf subset trees.
        vm.startPrank(community);
        registry.setHostSubsetRoot(modelId, host, _pairRoot(0, 1));
        registry.setHostSubsetRoot(modelId, host2, _pairRoot(2, 3));
        vm.stopPrank();
    }

    function _leaf(uint256 i) internal pure returns (bytes32) {
        (string memory k, string memory r,) = FingerprintFixture.pair(i);
        return keccak256(bytes.concat(keccak256(abi.encode(keccak256(bytes(k)), keccak256(bytes(r))))));
    }

    function _pairRoot(uint256 i, uint256 j) internal pure returns (bytes32) {
        (bytes32 a, bytes32 b) = (_leaf(i), _leaf(j));
        return a < b ? keccak256(abi.encode(a, b)) : keccak256(abi.encode(b, a));
    }

    function _leak(uint256 i, uint256 sibling, address target) internal view returns (Claims.LeakReveal memory r) {
        (string memory key, string memory response, bytes32[] memory proof) = FingerprintFixture.pair(i);
        bytes32[] memory sub = new bytes32[](1);
        sub[0] = _leaf(sibling);
        r = Claims.LeakReveal(modelId, target, ENDPOINT, key, response, bytes32("leak"), proof, sub);
    }

    function _commitLeak(Claims.LeakReveal memory r) internal returns (bytes32 c) {
        vm.roll(block.number + 1); // the prover commits in a later block than the query it was served
        c = claims.leakCommitment(r.key, r.response, r.host, r.endpoint, r.salt);
        vm.prank(prover);
        claims.commitSealed(c, SEALED);
    }

    /// @dev Every verifier observes `observed` at the endpoint before the reveal (salt = its index).
    function _observeAll(bytes32 c, string memory observed) internal {
        for (uint256 i; i < 3; ++i) {
            bytes32 h = claims.observationHash(c, verifiers[i], observed, bytes32(i));
            vm.prank(verifiers[i]);
            claims.observe(prover, c, h);
        }
    }

    function _voteObservedAll(uint256 claimId, bool confirm, string memory observed) internal {
        for (uint256 i; i < 3; ++i) {
            vm.prank(verifiers[i]);
            claims.voteObserved(Claims.ObservedVote(claimId, confirm, observed, bytes32(i)));
        }
    }

    function _fileLeak(Claims.LeakReveal memory r) internal returns (uint256 claimId) {
        _observeAll(_commitLeak(r), SERVED);
        vm.roll(block.number + 1);
        vm.warp(block.timestamp + 12);
        vm.prank(prover);
        claimId = claims.revealLeak(r);
    }

    // ------------------------------------------------------------------ traced leaks

    function test_leakOfHostsCopy_slashesThatHost() public {
        uint256 communityBefore = token.balanceOf(community);
        Claims.LeakReveal memory r = _leak(2, 3, host2);
        bytes32 c = _commitLeak(r);
        _observeAll(c, SERVED);
        vm.roll(block.number + 1);
        vm.expectEmit(true, false, false, true, address(claims));
        emit Claims.LeakEvidence(1, ENDPOINT);
        vm.prank(prover);
        uint256 claimId = claims.revealLeak(r);
        assertEq(claims.claim(claimId).endpointHash, keccak256(bytes(ENDPOINT)), "endpoint recorded");
        assertEq(claims.claim(claimId).sealedCommitment, c, "sealed commitment recorded");
        _voteObservedAll(claimId, true, SERVED);
        vm.warp(block.timestamp + CHALLENGE + 1);
        claims.finalize(claimId);
        assertTrue(claims.claim(claimId).status == Claims.Status.Confirmed, "confirmed");
        assertEq(staking.slashableOf(host2), 0, "leaking host slashed");
        assertEq(staking.stakeOf(host), STAKE, "other host untouched");
        uint256 pool = STAKE * VSHARE_BPS / 10_000 / 3 * 3;
        assertEq(token.balanceOf(community), communityBefore + STAKE - STAKE * SHARE_BPS / 10_000 - pool, "community");
    }

    function test_leakClaim_keyFromAnotherHostsSubsetReverts() public {
        Claims.LeakReveal memory r = _leak(0, 1, host2); // fingerprint 0 is in host's copy, not host2's
        _commitLeak(r);
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(Claims.NotInHostSubset.selector, modelId, host2));
        vm.prank(prover);
        claims.revealLeak(r);
    }

    function test_leakClaim_emptyEndpointAndWrongCommitmentRevert() public {
        Claims.LeakReveal memory r = _leak(2, 3, host2);
        r.endpoint = "";
        vm.expectRevert(Claims.EmptyEndpoint.selector);
        claims.revealLeak(r);
        r = _leak(2, 3, host2);
        bytes32 c = claims.leakCommitment(r.key, r.response, r.host, "http://elsewhere", r.salt);
        vm.prank(prover);
        claims.commitSealed(c, SEALED);
        vm.roll(block.number + 1);
        bytes32 expected = claims.leakCommitment(r.key, r.response, r.host, r.endpoint, r.salt);
        vm.expectRevert(abi.encodeWithSelector(Claims.UnknownCommitment.selector, expected));
        vm.prank(prover);
        claims.revealLeak(r); // the endpoint is bound by the commitment
    }

    function test_leakClaim_hostWhoServedItselfDefendsWithPermission() public {
        // The "leaked endpoint" was a proxy in front of host2's licensed service: host2 holds σ(key).
        (string memory key,,) = FingerprintFixture.pair(3);
        UsageLedger.Permission memory p = _permission(key, host2, 7);
        bytes memory sig = _platformSig(p);
        uint256 claimId = _fileLeak(_leak(3, 2, host2));
        vm.prank(host2);
        claims.defendWithPermission(claimId, p, sig);
        assertTrue(claims.claim(claimId).status == Claims.Status.Defended, "defended");
        assertEq(staking.stakeOf(host2), STAKE, "not slashed");
    }

    function test_leakAndOrdinaryClaimShareSpentKeys() public {
        _fileLeak(_leak(2, 3, host2));
        Claims.SignedReveal memory r = _signedReveal(2, host2, bytes32("x"));
        _commitFor(r);
        vm.roll(block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(Claims.KeySpent.selector, modelId, keccak256(bytes(r.key))));
        vm.prank(prover);
        claims.reveal(r);
    }

    // ------------------------------------------------------------------ verifier settlement

    function test_settle_confirmed_majorityPaid_dissenterAndAbsentSlashed() public {
        uint256 claimId = _claimFingerprint(0, host2);
        vm.prank(verifiers[0]);
        claims.vote(claimId, true);
        vm.prank(verifiers[1]);
        claims.vote(claimId, true);
        vm.prank(verifiers[2]);
        claims.vote(claimId, false);
        vm.warp(block.timestamp + CHALLENGE + 1);
        claims.finalize(claimId);
        uint256 per = STAKE * VSHARE_BPS / 10_000 / 2;
        assertEq(claims.claim(claimId).verifierReward, per, "pool split between the two confirmers");
        uint256 v0 = token.balanceOf(verifiers[0]);
        vm.expectEmit(true, true, false, true, address(claims));
        emit Claims.VerifierSettled(claimId, verifiers[0], per, 0);
        claims.settleVerifier(claimId, verifiers[0]);
        assertEq(token.balanceOf(verifiers[0]), v0 + per, "reward paid");
        uint256 communityBefore = token.balanceOf(community);
        claims.settleVerifier(claimId, verifiers[2]);
        assertEq(staking.stakeOf(verifiers[2]), VSTAKE - PENALTY, "dissenter slashed");
        assertEq(token.balanceOf(community), communityBefore + PENALTY, "penalty to the community");
        vm.expectRevert(abi.encodeWithSelector(Claims.AlreadySettled.selector, verifiers[0], claimId));
        claims.settleVerifier(claimId, verifiers[0]);
        claims.settleVerifier(claimId, verifiers[1]);
        assertEq(staking.slashedBalance(address(claims)), 0, "every share paid");
    }

    function test_settle_nonVoterSlashed_lateRegistrantAndStrangerNot() public {
        uint256 claimId = _claimFingerprint(1, host2);
        address late = address(0xE4);
        vm.prank(admin);
        token.mint(late, VSTAKE);
        _approveAndStake(late, VSTAKE);
        vm.prank(late);
        claims.registerVerifier();
        vm.prank(verifiers[0]);
        claims.vote(claimId, true);
        vm.prank(verifiers[1]);
        claims.vote(claimId, true);
        vm.roll(block.number + 1);
        vm.prank(verifiers[2]);
        claims.leaveVerifiers(); // leaving after the reveal does not escape the duty to vote
        vm.warp(block.timestamp + CHALLENGE + 1);
        claims.finalize(claimId);
        claims.settleVerifier(claimId, verifiers[2]);
        assertEq(staking.stakeOf(verifiers[2]), VSTAKE - PENALTY, "absent verifier slashed");
        vm.expectRevert(abi.encodeWithSelector(Claims.NotClaimVerifier.selector, late, claimId));
        claims.settleVerifier(claimId, late);
        vm.expectRevert(abi.encodeWithSelector(Claims.NotClaimVerifier.selector, address(0xBAD), claimId));
        claims.settleVerifier(claimId, address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(Claims.AlreadyVerifier.selector, verifiers[2]));
        vm.prank(verifiers[2]);
        claims.registerVerifier(); // an address that left cannot rejoin
    }

    function test_verifierStakeLockedWhileRegistered() public {
        assertEq(staking.lockedOf(verifiers[0]), VSTAKE, "minimum stake locked on registration");
        vm.prank(verifiers[0]);
        claims.leaveVerifiers();
        assertEq(staking.lockedOf(verifiers[0]), 0, "released on leaving");
        assertTrue(!claims.isVerifier(verifiers[0]), "left");
    }

    function test_settle_rejected_rejectersShareTheBondCut() public {
        uint256 claimId = _claimFingerprint(4, host);
        vm.prank(verifiers[0]);
        claims.vote(claimId, false);
        vm.prank(verifiers[1]);
        claims.vote(claimId, false);
        vm.prank(verifiers[2]);
        claims.vote(claimId, true);
        vm.warp(block.timestamp + CHALLENGE + 1);
        claims.finalize(claimId);
        uint256 per = BOND * VSHARE_BPS / 10_000 / 2;
        assertEq(token.balanceOf(address(claims)), 2 * per, "rejecters' shares held");
        uint256 v1 = token.balanceOf(verifiers[1]);
        claims.settleVerifier(claimId, verifiers[1]);
        assertEq(token.balanceOf(verifiers[1]), v1 + per, "rejecter paid from the bond");
        claims.settleVerifier(claimId, verifiers[2]);
        assertEq(staking.stakeOf(verifiers[2]), VSTAKE - PENALTY, "confirmer of a rejected claim slashed");
        claims.settleVerifier(claimId, verifiers[0]);
        assertEq(token.balanceOf(address(claims)), 0, "nothing left behind");
    }

    function test_settle_onlyDecidedClaims_andPenaltyCappedAtStake() public {
        uint256 claimId = _claimFingerprint(0, host2);
        vm.expectRevert(abi.encodeWithSelector(Claims.ClaimNotDecided.selector, claimId, Claims.Status.Open));
        claims.settleVerifier(claimId, verifiers[0]);
        _voteAll(claimId, true);
        vm.warp(block.timestamp + CHALLENGE + VOTING + 1);
        claims.finalize(claimId);
        uint256 other = _claimFingerprint(1, host2); // revealed with all three registered; nobody votes
        vm.warp(block.timestamp + CHALLENGE + VOTING + 1);
        claims.finalize(other);
        assertTrue(claims.claim(other).status == Claims.Status.Rejected, "no votes: rejected");
        assertEq(claims.claim(other).verifierReward, 0, "no rejecters, no share");
        // verifier 0 cannot take its stake out while registered (locked) ...
        vm.expectRevert(abi.encodeWithSelector(Staking.StakeIsLocked.selector, verifiers[0], 1, 0));
        vm.prank(verifiers[0]);
        staking.requestUnstake(1);
        // ... it leaves (a block after the reveal), withdraws all but 1 wei after the delay; the
        // penalty takes what is left
        vm.roll(block.number + 1);
        vm.prank(verifiers[0]);
        claims.leaveVerifiers();
        vm.prank(verifiers[0]);
        staking.requestUnstake(VSTAKE - 1);
        vm.warp(block.timestamp + 7 days);
        vm.prank(verifiers[0]);
        staking.withdraw();
        vm.expectEmit(true, true, false, true, address(claims));
        emit Claims.VerifierSettled(other, verifiers[0], 0, 1);
        claims.settleVerifier(other, verifiers[0]);
        assertEq(staking.slashableOf(verifiers[0]), 0, "capped at stake");
    }

    function testFuzz_settlementConservesTokens(uint8 votes, bool defendNothing) public {
        uint256 supply = token.totalSupply();
        uint256 claimId = _claimFingerprint(3, defendNothing ? host2 : host);
        for (uint256 i; i < 3; ++i) {
            uint8 v = (votes >> (2 * i)) & 3; // 0: abstain, 1: confirm, 2/3: reject
            if (v == 0) continue;
            vm.prank(verifiers[i]);
            claims.vote(claimId, v == 1);
        }
        vm.warp(block.timestamp + CHALLENGE + VOTING + 1);
        claims.finalize(claimId);
        for (uint256 i; i < 3; ++i) {
            claims.settleVerifier(claimId, verifiers[i]);
        }
        assertEq(token.balanceOf(address(claims)), 0, "claims holds nothing once settled");
        assertEq(staking.slashedBalance(address(claims)), 0, "all slashed stake paid out");
        uint256 sum = token.balanceOf(address(staking)) + token.balanceOf(community) + token.balanceOf(prover)
            + token.balanceOf(host) + token.balanceOf(host2);
        for (uint256 i; i < 3; ++i) {
            sum += token.balanceOf(verifiers[i]);
        }
        assertEq(sum, supply, "conserved");
    }
}
