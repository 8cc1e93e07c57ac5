// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test, Vm} from "../utils/Test.sol";
import {DinBase} from "./DinBase.sol";
import {DinTasks} from "../../contracts/din/DinTasks.sol";
import {DinRounds} from "../../contracts/din/DinRounds.sol";
import {DinScoring} from "../../contracts/din/DinScoring.sol";
import {MedianCheck} from "../../contracts/din/MedianCheck.sol";
import {LoyalToken} from "../../contracts/core/LoyalToken.sol";

/// @dev Reference: sort a copy (insertion sort) and take index (n - 1) / 2.
library SortedMedian {
    function lowerMedian(uint32[] memory xs) internal pure returns (uint32) {
        uint32[] memory a = new uint32[](xs.length);
        for (uint256 i = 0; i < xs.length; i++) {
            uint32 v = xs[i];
            uint256 j = i;
            while (j > 0 && a[j - 1] > v) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = v;
        }
        return a[(xs.length - 1) / 2];
    }
}

abstract contract ScoringBase is DinBase {
    function commitAndReveal(uint256 id, address e, uint32[] memory scores) internal {
        warpTo(id, 0, DinTasks.Stage.ScoreCommit);
        vm.prank(e);
        scoring.commitScores(id, scoreCommitment(id, e, scores));
        warpTo(id, 0, DinTasks.Stage.ScoreReveal);
        vm.prank(e);
        scoring.revealScores(id, scores, salt(e));
    }

    function fill(uint256 n, uint32 v) internal pure returns (uint32[] memory xs) {
        xs = new uint32[](n);
        for (uint256 i = 0; i < n; i++) {
            xs[i] = v;
        }
    }
}

contract DinScoringTest is ScoringBase {

    function test_reveal_pagedMatchesCommitment() public {
        uint256 id = setUpTask(20);
        uint32[] memory scores = new uint32[](20);
        for (uint256 i = 0; i < 20; i++) {
            scores[i] = uint32(i * 50_000);
        }
        warpTo(id, 0, DinTasks.Stage.ScoreCommit);
        vm.prank(es[0]);
        scoring.commitScores(id, scoreCommitment(id, es[0], scores));
        vm.expectRevert(abi.encodeWithSelector(DinScoring.AlreadyCommitted.selector, id, es[0]));
        vm.prank(es[0]);
        scoring.commitScores(id, keccak256("x"));
        warpTo(id, 0, DinTasks.Stage.ScoreReveal);
        uint32[] memory page = new uint32[](8);
        uint32[] memory bad = new uint32[](5);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.BadPage.selector, 0, 5, 20));
        vm.prank(es[0]);
        scoring.revealScores(id, bad, salt(es[0]));
        for (uint256 p = 0; p < 2; p++) {
            for (uint256 i = 0; i < 8; i++) {
                page[i] = scores[p * 8 + i];
            }
            vm.prank(es[0]);
            scoring.revealScores(id, page, bytes32(0)); // salt only matters on the last page
        }
        (bool committed, uint256 revealed, bool complete,,) = scoring.revealOf(id, es[0]);
        assertTrue(committed && !complete, "partial");
        assertEq(revealed, 16, "two pages");
        uint32[] memory tail = new uint32[](4);
        for (uint256 i = 0; i < 4; i++) {
            tail[i] = scores[16 + i];
        }
        vm.expectRevert(abi.encodeWithSelector(DinScoring.CommitmentMismatch.selector, id, es[0]));
        vm.prank(es[0]);
        scoring.revealScores(id, tail, bytes32(uint256(1)));
        vm.prank(es[0]);
        scoring.revealScores(id, tail, salt(es[0]));
        (,, complete,,) = scoring.revealOf(id, es[0]);
        assertTrue(complete, "complete");
        vm.expectRevert(abi.encodeWithSelector(DinScoring.RevealComplete.selector, id, es[0]));
        vm.prank(es[0]);
        scoring.revealScores(id, tail, salt(es[0]));
        // packed storage reads back every score
        warpTo(id, 0, DinTasks.Stage.Settle);
        for (uint256 i = 0; i < 20; i++) {
            (, uint32[] memory got) = scoring.scoresFor(id, i);
            assertEq(got.length, 1, "one complete reveal");
            assertEq(got[0], scores[i], "score read back");
        }
    }

    function test_commitAndReveal_refusals() public {
        uint256 id = setUpTask(3);
        (uint64 s, uint64 e) = tasks.window(id, 0, DinTasks.Stage.ScoreCommit);
        vm.expectRevert(
            abi.encodeWithSelector(DinScoring.OutsideWindow.selector, id, 0, DinTasks.Stage.ScoreCommit, s, e)
        );
        vm.prank(es[0]);
        scoring.commitScores(id, keccak256("x"));
        vm.warp(s);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NotEvaluator.selector, id, ps[0]));
        vm.prank(ps[0]);
        scoring.commitScores(id, keccak256("x"));
        vm.expectRevert(DinScoring.ZeroCommitment.selector);
        vm.prank(es[0]);
        scoring.commitScores(id, bytes32(0));
        uint32[] memory scores = fill(3, 2_000_000);
        vm.prank(es[0]);
        scoring.commitScores(id, scoreCommitment(id, es[0], scores));
        warpTo(id, 0, DinTasks.Stage.ScoreReveal);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NotCommitted.selector, id, es[1]));
        vm.prank(es[1]);
        scoring.revealScores(id, scores, salt(es[1]));
        vm.expectRevert(abi.encodeWithSelector(DinScoring.ScoreOutOfRange.selector, 0, 2_000_000));
        vm.prank(es[0]);
        scoring.revealScores(id, scores, salt(es[0]));
        vm.expectRevert(abi.encodeWithSelector(DinScoring.BadPage.selector, 0, 4, 3));
        vm.prank(es[0]);
        scoring.revealScores(id, fill(4, 1), salt(es[0]));
    }

    function threeScored(uint256 id) internal {
        // participants 0, 1, 2; evaluator 3 is an outlier on participant 0, evaluator 2 absent
        uint32[] memory a = new uint32[](3);
        a[0] = 800_000;
        a[1] = 400_000;
        a[2] = 0;
        commitAndReveal(id, es[0], a);
        a[0] = 700_000;
        a[1] = 400_000;
        commitAndReveal(id, es[1], a);
        a[0] = 100_000;
        a[1] = 600_000;
        commitAndReveal(id, es[3], a);
        warpTo(id, 0, DinTasks.Stage.Settle);
    }

    function test_settle_checksMedianByCounting() public {
        uint256 id = setUpTask(3);
        threeScored(id);
        // participant 0 scores {800k, 700k, 100k}: lower median 700k
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NotMedian.selector, 800_000, 2, 1, 0));
        scoring.settleParticipant(id, 0, 800_000);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NotMedian.selector, 650_000, 1, 0, 2));
        scoring.settleParticipant(id, 0, 650_000);
        vm.expectEmit(true, true, true, true, address(scoring));
        emit DinScoring.ParticipantSettled(id, 0, ps[0], 700_000, 2); // evaluator 3 is 600k away: gets 0
        scoring.settleParticipant(id, 0, 700_000);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.AlreadySettled.selector, id, 0));
        scoring.settleParticipant(id, 0, 700_000);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.ParticipantOutOfRange.selector, id, 3, 3));
        scoring.settleParticipant(id, 3, 0);
        (bool settled, uint32 m) = scoring.medianOf(id, 0);
        assertTrue(settled, "settled");
        assertEq(m, 700_000, "median stored");
    }

    function test_claims_proportionalOnceAndFeesByAgreement() public {
        uint256 id = setUpTask(3);
        threeScored(id);
        scoring.settleParticipant(id, 0, 700_000);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NotAllSettled.selector, id, 1, 3));
        vm.prank(ps[0]);
        scoring.claimReward(id);
        scoring.settleParticipant(id, 1, 400_000);
        scoring.settleParticipant(id, 2, 0);
        // sum of medians 1.1M: p0 gets 7/11, p1 4/11, p2 nothing
        uint256 before = token.balanceOf(ps[0]);
        vm.prank(ps[0]);
        scoring.claimReward(id);
        assertEq(token.balanceOf(ps[0]) - before, REWARD * 700_000 / 1_100_000, "p0 share");
        vm.expectRevert(abi.encodeWithSelector(DinScoring.AlreadyClaimed.selector, id, ps[0]));
        vm.prank(ps[0]);
        scoring.claimReward(id);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NothingToClaim.selector, id, ps[2]));
        vm.prank(ps[2]);
        scoring.claimReward(id);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NotParticipant.selector, id, ps[9]));
        vm.prank(ps[9]);
        scoring.claimReward(id);
        // fees: es[0], es[1] agreed on all 3; es[3] on 2 of 3 (outlier on p0); es[2] never revealed
        assertEq(scoring.feeOf(id, es[0]), FEE, "full fee");
        assertEq(scoring.feeOf(id, es[3]), FEE * 2 / 3, "0 for the outlier participant");
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NothingToClaim.selector, id, es[2]));
        vm.prank(es[2]);
        scoring.claimFee(id);
        before = token.balanceOf(es[3]);
        vm.prank(es[3]);
        scoring.claimFee(id);
        assertEq(token.balanceOf(es[3]) - before, FEE * 2 / 3, "fee paid");
        vm.expectRevert(abi.encodeWithSelector(DinScoring.AlreadyClaimed.selector, id, es[3]));
        vm.prank(es[3]);
        scoring.claimFee(id);
        // owner gets the 4 reserved fees minus 8 earned thirds
        before = token.balanceOf(owner);
        scoring.refundOwner(id);
        assertEq(token.balanceOf(owner) - before, FEE * 4 - FEE * 8 / 3, "owner refund");
        vm.expectRevert(abi.encodeWithSelector(DinScoring.AlreadyClaimed.selector, id, owner));
        scoring.refundOwner(id);
    }

    function test_noCompleteReveals_rewardBackToOwner() public {
        uint256 id = setUpTask(2);
        warpTo(id, 0, DinTasks.Stage.Settle);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NotMedian.selector, 5, 0, 0, 0));
        scoring.settleParticipant(id, 0, 5);
        scoring.settleParticipant(id, 0, 0);
        scoring.settleParticipant(id, 1, 0);
        uint256 before = token.balanceOf(owner);
        scoring.refundOwner(id);
        assertEq(token.balanceOf(owner) - before, REWARD + FEE * 4, "whole deposit back");
        (,, uint256 paid,,) = tasks.taskInfo(id);
        assertEq(paid, REWARD + FEE * 4, "paid out == deposit");
    }

    function testFuzz_medianCheck_matchesSortedReference(uint256 n, uint256 salt_, uint32 probe) public pure {
        n = bound(n, 1, 32);
        uint32[] memory xs = new uint32[](n);
        for (uint256 i = 0; i < n; i++) {
            // small range so ties are common
            xs[i] = uint32(uint256(keccak256(abi.encode(salt_, i))) % 7) * 250_000;
        }
        uint32 m = SortedMedian.lowerMedian(xs);
        assertTrue(MedianCheck.isLowerMedian(xs, m), "reference median accepted");
        probe = uint32(bound(probe, 0, 1_600_000));
        assertTrue(MedianCheck.isLowerMedian(xs, probe) == (probe == m), "only the median accepted");
        (uint256 below, uint256 equal, uint256 above) = MedianCheck.count(xs, probe);
        assertEq(below + equal + above, n, "counts partition");
    }

    function testFuzz_medianCheck_wideValues(uint32[] memory xs, uint32 probe) public pure {
        vm.assume(xs.length > 0 && xs.length <= 40);
        uint32 m = SortedMedian.lowerMedian(xs);
        assertTrue(MedianCheck.isLowerMedian(xs, m), "reference median accepted");
        assertTrue(MedianCheck.isLowerMedian(xs, probe) == (probe == m), "only the median accepted");
    }
}

/// @dev Random settle / claim / refund sequences over one fully revealed task.
contract ScoringHandler {
    Vm constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    DinScoring public scoring;
    DinTasks public tasks;
    LoyalToken public token;
    uint256 public id;
    address[] public actors; // participants then evaluators then owner
    mapping(address => mapping(uint256 => uint256)) public claims;
    mapping(address => uint256) public received;
    uint256 public maxClaims;

    constructor(DinScoring s, DinTasks t, LoyalToken tok, uint256 taskId, address[] memory actors_) {
        scoring = s;
        tasks = t;
        token = tok;
        id = taskId;
        actors = actors_;
    }

    /// @dev Settles up to 4 unsettled participants from `index` on, so runs reach the claims.
    function settle(uint256 index) external {
        uint256 n = tasks.participantCount(id);
        uint256 done_;
        for (uint256 j = 0; j < n && done_ < 4; j++) {
            uint256 i = (index + j) % n;
            (bool done,) = scoring.medianOf(id, i);
            if (done) continue;
            (, uint32[] memory xs) = scoring.scoresFor(id, i);
            scoring.settleParticipant(id, i, xs.length == 0 ? 0 : SortedMedian.lowerMedian(xs));
            done_++;
        }
    }

    function claimReward(uint256 who) external {
        _claim(actors[who % actors.length], 0);
    }

    function claimFee(uint256 who) external {
        _claim(actors[who % actors.length], 1);
    }

    function refund() external {
        (address owner,,,,) = tasks.taskInfo(id);
        _claim(owner, 2);
    }

    function _claim(address who, uint256 kind) private {
        uint256 before = token.balanceOf(who);
        vm.prank(who);
        bool ok;
        if (kind == 0) (ok,) = address(scoring).call(abi.encodeCall(DinScoring.claimReward, (id)));
        else if (kind == 1) (ok,) = address(scoring).call(abi.encodeCall(DinScoring.claimFee, (id)));
        else (ok,) = address(scoring).call(abi.encodeCall(DinScoring.refundOwner, (id)));
        if (!ok) return;
        uint256 c = ++claims[who][kind];
        if (c > maxClaims) maxClaims = c;
        received[who] += token.balanceOf(who) - before;
    }
}

contract DinScoringInvariantTest is ScoringBase {
    ScoringHandler handler;
    uint256 id;
    uint256 constant N = 12;

    function setUp() public override {
        super.setUp();
        id = setUpTask(N);
        warpTo(id, 0, DinTasks.Stage.ScoreCommit);
        for (uint256 e = 0; e < 4; e++) {
            uint32[] memory xs = new uint32[](N);
            for (uint256 i = 0; i < N; i++) {
                xs[i] = uint32(uint256(keccak256(abi.encode(e, i))) % 1_000_001);
            }
            if (e == 3) continue; // one evaluator never scores
            commitAndReveal(id, es[e], xs);
        }
        warpTo(id, 0, DinTasks.Stage.Settle);
        address[] memory actors = new address[](N + 5);
        for (uint256 i = 0; i < N; i++) {
            actors[i] = ps[i];
        }
        for (uint256 e = 0; e < 4; e++) {
            actors[N + e] = es[e];
        }
        actors[N + 4] = owner;
        handler = new ScoringHandler(scoring, tasks, token, id, actors);
        targetContract(address(handler));
    }

    /// @dev The handler really reaches the pay-outs (so the invariants are not vacuous), and the
    /// whole deposit minus rounding dust goes out once everyone has claimed.
    function test_handler_reachesClaims() public {
        for (uint256 i = 0; i < 3; i++) {
            handler.settle(i * 4);
        }
        for (uint256 i = 0; i < N + 5; i++) {
            handler.claimReward(i);
            handler.claimFee(i);
            handler.claimReward(i); // second attempt refused
        }
        handler.refund();
        handler.refund();
        assertEq(handler.maxClaims(), 1, "claims happened, once each");
        (, uint256 deposit, uint256 paid,,) = tasks.taskInfo(id);
        assertLe(deposit - paid, N + 4, "only rounding dust left");
        assertTrue(handler.received(ps[0]) > 0, "participant paid");
    }

    function invariant_paidOutAtMostDeposit() public view {
        (, uint256 deposit, uint256 paid,,) = tasks.taskInfo(id);
        assertLe(paid, deposit, "paid out <= deposit");
        assertEq(token.balanceOf(address(tasks)), deposit - paid + N * BOND, "custody");
    }

    function invariant_nobodyPaidTwice() public view {
        assertLe(handler.maxClaims(), 1, "each claim at most once per account and kind");
        for (uint256 i = 0; i < N; i++) {
            assertLe(handler.received(ps[i]), scoring.rewardOf(id, ps[i]), "participant got at most its share");
        }
        for (uint256 e = 0; e < 4; e++) {
            assertLe(handler.received(es[e]), scoring.feeOf(id, es[e]), "evaluator got at most its fee");
        }
    }
}
