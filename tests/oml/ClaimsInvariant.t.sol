// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "../utils/Test.sol";
import {OmlBase} from "./OmlBase.sol";
import {LoyalToken} from "../../contracts/core/LoyalToken.sol";
import {Staking} from "../../contracts/core/Staking.sol";
import {Claims} from "../../contracts/oml/Claims.sol";
import {UsageLedger} from "../../contracts/oml/UsageLedger.sol";
import {HostAgreements} from "../../contracts/oml/HostAgreements.sol";
import {HostAnswers} from "../../contracts/oml/HostAnswers.sol";
import {FingerprintFixture} from "./FingerprintFixture.sol";

/// @notice Random sequences of commit/reveal, defence, votes, time and finalize over the five fixture keys.
contract ClaimsHandler is Test {
    Claims claims;
    UsageLedger usage;
    uint256 modelId;
    address prover;
    address[2] hosts;
    address[3] verifiers;
    uint256 platformKey;
    uint256[2] hostKeys;
    HostAgreements agreements;

    constructor(
        Claims claims_,
        UsageLedger usage_,
        uint256 modelId_,
        address prover_,
        address[2] memory hosts_,
        address[3] memory verifiers_,
        uint256 platformKey_,
        uint256[2] memory hostKeys_,
        HostAgreements agreements_
    ) {
        hostKeys = hostKeys_;
        agreements = agreements_;
        claims = claims_;
        usage = usage_;
        modelId = modelId_;
        prover = prover_;
        hosts = hosts_;
        verifiers = verifiers_;
        platformKey = platformKey_;
    }

    function file(uint256 i, uint256 h) external {
        i = bound(i, 0, FingerprintFixture.COUNT - 1);
        (string memory key, string memory response, bytes32[] memory proof) = FingerprintFixture.pair(i);
        if (claims.keySpent(modelId, keccak256(bytes(key)))) return;
        address host = hosts[h % 2];
        bytes32 c = claims.claimCommitment(key, response, host, bytes32(i));
        vm.prank(prover);
        claims.commit(c);
        vm.roll(block.number + 1);
        HostAnswers.Answer memory a = HostAnswers.Answer(
            modelId,
            host,
            agreements.licenceOf(modelId, host).startsAt,
            keccak256(bytes(key)),
            keccak256(bytes(response)),
            bytes32(0),
            uint64(block.timestamp)
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(hostKeys[h % 2], claims.answers().answerDigest(a));
        vm.prank(prover);
        claims.reveal(
            Claims.SignedReveal(modelId, host, key, response, bytes32(i), proof, a, response, abi.encodePacked(r, s, v))
        );
    }

    function defend(uint256 id) external {
        if (claims.claimCount() == 0) return;
        id = bound(id, 1, claims.claimCount());
        Claims.Claim memory c = claims.claim(id);
        UsageLedger.Permission memory p =
            UsageLedger.Permission(c.keyHash, c.host, c.modelId, id, c.committedAt, c.commitBlock - 1);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(platformKey, usage.permissionDigest(p));
        try claims.defendWithPermission(id, p, abi.encodePacked(r, s, v)) {} catch {}
    }

    function vote(uint256 id, uint256 who, bool confirm) external {
        if (claims.claimCount() == 0) return;
        id = bound(id, 1, claims.claimCount());
        vm.prank(verifiers[who % 3]);
        try claims.vote(id, confirm) {} catch {}
    }

    function wait(uint256 dt) external {
        vm.warp(block.timestamp + bound(dt, 1, 2 days));
        vm.roll(block.number + 1);
    }

    function settle(uint256 id, uint256 who) external {
        if (claims.claimCount() == 0) return;
        id = bound(id, 1, claims.claimCount());
        try claims.settleVerifier(id, verifiers[who % 3]) {} catch {}
    }

    function finalize(uint256 id) external {
        if (claims.claimCount() == 0) return;
        id = bound(id, 1, claims.claimCount());
        try claims.finalize(id) {} catch {}
    }
}

contract ClaimsInvariantTest is OmlBase {
    ClaimsHandler handler;
    uint256 supply;

    function setUp() public override {
        super.setUp();
        handler = new ClaimsHandler(
            claims, usage, modelId, prover, [host, host2], verifiers, platformKey, [hostKey, host2Key], agreements
        );
        supply = token.totalSupply();
        targetContract(address(handler));
    }

    /// @dev Claims holds exactly one bond per open claim plus the unsettled shares of verifiers that
    /// rejected a claim; Staking holds for it exactly the unsettled shares of confirming verifiers.
    function invariant_bondsAndSlashesAccounted() public view {
        uint256 held;
        uint256 slashedOwed;
        for (uint256 id = 1; id <= claims.claimCount(); ++id) {
            Claims.Claim memory c = claims.claim(id);
            if (c.status == Claims.Status.Open) held += BOND;
            bool confirmed = c.status == Claims.Status.Confirmed;
            if (!confirmed && c.status != Claims.Status.Rejected) continue;
            for (uint256 i; i < 3; ++i) {
                address v = verifiers[i];
                if (claims.settled(id, v) || !claims.hasVoted(id, v) || claims.votedConfirm(id, v) != confirmed) {
                    continue;
                }
                if (confirmed) slashedOwed += c.verifierReward;
                else held += c.verifierReward;
            }
        }
        assertEq(token.balanceOf(address(claims)), held, "bonds of open claims + unsettled rejecter shares");
        assertEq(staking.slashedBalance(address(claims)), slashedOwed, "unsettled confirmer shares");
    }

    /// @dev A verifier only loses stake through settlement penalties, at most PENALTY per decided claim.
    function invariant_verifierLossesBounded() public view {
        for (uint256 i; i < 3; ++i) {
            uint256 penalised;
            for (uint256 id = 1; id <= claims.claimCount(); ++id) {
                if (claims.settled(id, verifiers[i])) penalised += 1;
            }
            assertLe(VSTAKE - staking.slashableOf(verifiers[i]), penalised * PENALTY, "loss needs a settlement");
        }
    }

    /// @dev No token is created or lost: every holder the protocol touches adds up to the supply.
    function invariant_tokensConserved() public view {
        uint256 sum = token.balanceOf(address(claims)) + token.balanceOf(address(staking)) + token.balanceOf(community)
            + token.balanceOf(prover) + token.balanceOf(host) + token.balanceOf(host2);
        for (uint256 i; i < 3; ++i) {
            sum += token.balanceOf(verifiers[i]);
        }
        assertEq(sum, supply, "supply conserved");
        assertEq(token.totalSupply(), supply, "no mint");
    }

    /// @dev Stake only ever leaves a host through a confirmed claim, capped at stakeRequired each.
    function invariant_slashesOnlyByConfirmedClaims() public view {
        address[2] memory hs = [host, host2];
        for (uint256 k; k < 2; ++k) {
            uint256 confirmed;
            for (uint256 id = 1; id <= claims.claimCount(); ++id) {
                Claims.Claim memory c = claims.claim(id);
                if (c.host == hs[k] && c.status == Claims.Status.Confirmed) confirmed += 1;
            }
            uint256 lost = STAKE - staking.slashableOf(hs[k]);
            assertLe(lost, confirmed * STAKE, "slash needs a confirmed claim");
        }
    }
}
