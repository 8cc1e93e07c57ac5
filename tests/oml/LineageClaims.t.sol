// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OmlBase} from "./OmlBase.sol";
import {Claims} from "../../contracts/oml/Claims.sol";
import {LineageClaims} from "../../contracts/oml/LineageClaims.sol";
import {UsageLedger} from "../../contracts/oml/UsageLedger.sol";
import {FingerprintFixture} from "./FingerprintFixture.sol";

/// @notice Lineage claims: m+ keys of a host's subset answered at another endpoint trace a derived
/// model to that host; below m, repeated or foreign keys, late reveals and a proxied host's own
/// service (permissions for every key) are refused or defended.
contract LineageClaimsTest is OmlBase {
    LineageClaims lineage;
    uint32 constant M = 3;
    string constant ENDPOINT = "http://derived.example:9000";

    function setUp() public override {
        super.setUp();
        lineage = new LineageClaims(claims, LineageClaims.Config(M, BOND, REVEAL, CHALLENGE, VOTING, SHARE_BPS));
        bytes32 moduleRole = staking.MODULE_ROLE();
        vm.prank(admin);
        staking.grantRole(moduleRole, address(lineage));
        claims.setLineageClaims(address(lineage));
        // host's copy carries every fixture fingerprint: its subset root is the fixture's root.
        vm.prank(community);
        registry.setHostSubsetRoot(modelId, host, FingerprintFixture.ROOT);
        vm.prank(prover);
        token.approve(address(lineage), type(uint256).max);
    }

    function assertEq(uint256 a, uint256 b) internal pure {
        assertEq(a, b, "values differ");
    }

    function _reveal(uint256[] memory idx, address target) internal view returns (LineageClaims.Reveal memory r) {
        uint256 n = idx.length;
        r.modelId = modelId;
        r.host = target;
        r.endpoint = ENDPOINT;
        r.keys = new string[](n);
        r.responses = new string[](n);
        r.subsetProofs = new bytes32[][](n);
        r.salt = bytes32("lineage");
        for (uint256 i; i < n; ++i) {
            (r.keys[i], r.responses[i], r.subsetProofs[i]) = FingerprintFixture.pair(idx[i]);
        }
    }

    function _idx(uint256 a, uint256 b, uint256 c) internal pure returns (uint256[] memory x) {
        x = new uint256[](3);
        (x[0], x[1], x[2]) = (a, b, c);
    }

    function _commit(LineageClaims.Reveal memory r) internal {
        bytes32 c = lineage.lineageCommitment(r.keys, r.responses, r.host, r.endpoint, r.salt);
        vm.prank(prover);
        lineage.commit(c);
        vm.roll(block.number + 1);
        vm.warp(block.timestamp + 12);
    }

    function _file(LineageClaims.Reveal memory r) internal returns (uint256 id) {
        _commit(r);
        vm.prank(prover);
        id = lineage.reveal(r);
    }

    function test_confirmedLineageSlashesHost_proverAndCommunityPaid() public {
        uint256 proverBefore = token.balanceOf(prover);
        uint256 communityBefore = token.balanceOf(community);
        uint256 id = _file(_reveal(_idx(0, 2, 4), host));
        assertEq(token.balanceOf(prover), proverBefore - BOND);
        vm.warp(block.timestamp + CHALLENGE + 1);
        for (uint256 v; v < 3; ++v) {
            vm.prank(verifiers[v]);
            lineage.vote(id, v < 2);
        }
        lineage.finalize(id);
        assertEq(uint8(lineage.claim(id).status), uint8(LineageClaims.Status.Confirmed));
        assertEq(staking.stakeOf(host), 0);
        assertEq(staking.stakeOf(host2), STAKE); // untouched
        assertEq(token.balanceOf(prover), proverBefore + 20 ether);
        assertEq(token.balanceOf(community), communityBefore + 80 ether);
    }

    function test_rejectedLineageLosesBondToHost() public {
        uint256 hostBefore = token.balanceOf(host);
        uint256 id = _file(_reveal(_idx(0, 1, 2), host));
        vm.warp(block.timestamp + CHALLENGE + 1);
        for (uint256 v; v < 2; ++v) {
            vm.prank(verifiers[v]);
            lineage.vote(id, false);
        }
        lineage.finalize(id);
        assertEq(token.balanceOf(host), hostBefore + BOND);
        assertEq(staking.stakeOf(host), STAKE);
    }

    function test_belowThresholdReverts() public {
        uint256[] memory two = new uint256[](2);
        (two[0], two[1]) = (0, 1);
        LineageClaims.Reveal memory r = _reveal(two, host);
        _commit(r);
        vm.prank(prover);
        vm.expectRevert(abi.encodeWithSelector(LineageClaims.BelowThreshold.selector, 2, M));
        lineage.reveal(r);
    }

    function test_repeatedKeyReverts() public {
        LineageClaims.Reveal memory r = _reveal(_idx(0, 1, 1), host);
        _commit(r);
        vm.prank(prover);
        vm.expectRevert(abi.encodeWithSelector(Claims.KeySpent.selector, modelId, keccak256(bytes(r.keys[1]))));
        lineage.reveal(r);
    }

    function test_keySpentInClaimsReverts() public {
        _claimFingerprint(2, host2);
        LineageClaims.Reveal memory r = _reveal(_idx(0, 1, 2), host);
        _commit(r);
        vm.prank(prover);
        vm.expectRevert(abi.encodeWithSelector(Claims.KeySpent.selector, modelId, keccak256(bytes(r.keys[2]))));
        lineage.reveal(r);
    }

    function test_keySpentInLineageRevertsInClaims() public {
        LineageClaims.Reveal memory r = _reveal(_idx(0, 1, 2), host);
        _commit(r);
        vm.prank(prover);
        lineage.reveal(r);
        assertTrue(claims.keySpent(modelId, keccak256(bytes(r.keys[1]))), "lineage key not spent in Claims");
        Claims.SignedReveal memory s = _signedReveal(1, host2, keccak256("salt"));
        vm.roll(block.number + 1);
        _commitFor(s);
        vm.roll(block.number + 1);
        vm.prank(prover);
        vm.expectRevert(abi.encodeWithSelector(Claims.KeySpent.selector, modelId, keccak256(bytes(r.keys[1]))));
        claims.reveal(s);
    }

    function test_onlyBoundLineageClaimsSpendsKeys_boundOnce() public {
        vm.prank(prover);
        vm.expectRevert(abi.encodeWithSelector(Claims.NotLineageClaims.selector, prover));
        claims.spendKey(modelId, keccak256("a key"));
        vm.expectRevert(Claims.LineageClaimsAlreadySet.selector);
        claims.setLineageClaims(address(0xBEEF));
        assertTrue(claims.lineageClaims() == address(lineage), "lineage contract rebound");
    }

    function test_keysOutsideHostSubsetRevert() public {
        LineageClaims.Reveal memory r = _reveal(_idx(0, 1, 2), host2); // host2 has no subset root
        _commit(r);
        vm.prank(prover);
        vm.expectRevert(abi.encodeWithSelector(LineageClaims.NotInHostSubset.selector, modelId, host2, 0));
        lineage.reveal(r);
    }

    function test_revealMustMatchCommitment_andBeTimely() public {
        LineageClaims.Reveal memory r = _reveal(_idx(0, 1, 2), host);
        bytes32 c = lineage.lineageCommitment(r.keys, r.responses, r.host, r.endpoint, r.salt);
        vm.prank(prover);
        lineage.commit(c);
        vm.prank(prover);
        vm.expectRevert(abi.encodeWithSelector(LineageClaims.RevealTooEarly.selector, uint64(block.number)));
        lineage.reveal(r);
        vm.roll(block.number + 1);
        r.endpoint = "http://elsewhere.example";
        bytes32 other = lineage.lineageCommitment(r.keys, r.responses, r.host, r.endpoint, r.salt);
        vm.prank(prover);
        vm.expectRevert(abi.encodeWithSelector(LineageClaims.UnknownCommitment.selector, other));
        lineage.reveal(r);
        r.endpoint = ENDPOINT;
        vm.warp(block.timestamp + REVEAL + 1);
        vm.prank(prover);
        vm.expectRevert();
        lineage.reveal(r);
        vm.prank(verifiers[0]); // another account cannot use the prover's commitment
        vm.expectRevert(abi.encodeWithSelector(LineageClaims.UnknownCommitment.selector, c));
        lineage.reveal(r);
    }

    function test_hostsOwnServiceDefendedByPermissionsForEveryKey() public {
        LineageClaims.Reveal memory r = _reveal(_idx(0, 1, 2), host);
        UsageLedger.Permission[] memory ps = new UsageLedger.Permission[](3);
        bytes[] memory sigs = new bytes[](3);
        for (uint256 i; i < 3; ++i) {
            ps[i] = _permission(r.keys[i], host, i);
            sigs[i] = _platformSig(ps[i]);
        }
        vm.roll(block.number + 1); // the host served these queries a block before the prover's commitment
        uint256 id = _file(r);
        // two permissions are not enough, nor a permission of another key in place of one
        UsageLedger.Permission[] memory two = new UsageLedger.Permission[](2);
        bytes[] memory twoSigs = new bytes[](2);
        (two[0], two[1], twoSigs[0], twoSigs[1]) = (ps[0], ps[1], sigs[0], sigs[1]);
        vm.expectRevert(LineageClaims.LengthMismatch.selector);
        lineage.defendWithPermissions(id, two, twoSigs);
        UsageLedger.Permission[] memory swapped = new UsageLedger.Permission[](3);
        bytes[] memory swappedSigs = new bytes[](3);
        (swapped[0], swapped[1], swapped[2]) = (ps[1], ps[0], ps[2]);
        (swappedSigs[0], swappedSigs[1], swappedSigs[2]) = (sigs[1], sigs[0], sigs[2]);
        vm.expectRevert(abi.encodeWithSelector(LineageClaims.PermissionMismatch.selector, id, 3));
        lineage.defendWithPermissions(id, swapped, swappedSigs);
        uint256 hostBefore = token.balanceOf(host);
        lineage.defendWithPermissions(id, ps, sigs);
        assertEq(uint8(lineage.claim(id).status), uint8(LineageClaims.Status.Defended));
        assertEq(token.balanceOf(host), hostBefore + BOND);
    }

    function test_permissionsObtainedAfterCommitDoNotDefend() public {
        LineageClaims.Reveal memory r = _reveal(_idx(0, 1, 2), host);
        uint256 id = _file(r); // the permissions below carry the reveal block: after the commit block
        UsageLedger.Permission[] memory ps = new UsageLedger.Permission[](3);
        bytes[] memory sigs = new bytes[](3);
        for (uint256 i; i < 3; ++i) {
            ps[i] = _permission(r.keys[i], host, i);
            sigs[i] = _platformSig(ps[i]);
        }
        vm.expectRevert(abi.encodeWithSelector(LineageClaims.PermissionIssuedAfterCommit.selector, id, 0));
        lineage.defendWithPermissions(id, ps, sigs);
    }

    function test_voteRules() public {
        uint256 id = _file(_reveal(_idx(0, 1, 2), host));
        vm.prank(prover);
        vm.expectRevert(abi.encodeWithSelector(LineageClaims.NotVerifier.selector, prover));
        lineage.vote(id, true);
        vm.prank(verifiers[0]);
        lineage.vote(id, true);
        vm.prank(verifiers[0]);
        vm.expectRevert(abi.encodeWithSelector(LineageClaims.AlreadyVoted.selector, verifiers[0], id));
        lineage.vote(id, true);
        uint64 challengeEnds = uint64(block.timestamp) + CHALLENGE;
        vm.expectRevert(abi.encodeWithSelector(LineageClaims.ChallengeWindowOpen.selector, challengeEnds));
        lineage.finalize(id);
        vm.warp(uint256(challengeEnds) + VOTING + 1);
        vm.prank(verifiers[1]);
        vm.expectRevert(abi.encodeWithSelector(LineageClaims.VotingClosed.selector, challengeEnds + VOTING));
        lineage.vote(id, true);
        lineage.finalize(id); // 1 of 3: no majority -> rejected
        assertEq(uint8(lineage.claim(id).status), uint8(LineageClaims.Status.Rejected));
    }

    function test_configNeedsAtLeastTwoMatches() public {
        vm.expectRevert(LineageClaims.BadConfig.selector);
        new LineageClaims(claims, LineageClaims.Config(1, BOND, REVEAL, CHALLENGE, VOTING, SHARE_BPS));
    }
}
