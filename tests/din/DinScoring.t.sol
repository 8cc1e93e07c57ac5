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
    /// @dev Round `round`: `who` commit and reveal updates, the seed is drawn, the owner reveals the
    /// slice unless `withhold`; the clock is left at the round's AggregateCommit stage.
    function playUpdates(uint256 id, uint256 round, uint256[] memory who, bool withhold) internal {
        warpTo(id, round, DinTasks.Stage.Submit);
        submitUpdates(id, round, who);
        warpTo(id, round, DinTasks.Stage.AggregateCommit);
        vm.prevrandao(bytes32(uint256(7 + round)));
        rounds.drawRoundSeed(id, round);
        if (!withhold) revealSlice(id, round);
    }

    function v3(uint32 a, uint32 b, uint32 c) internal pure returns (uint32[] memory xs) {
        xs = new uint32[](3);
        (xs[0], xs[1], xs[2]) = (a, b, c);
    }

    function vectors(uint32[] memory a, uint32[] memory b, uint32[] memory c)
        internal
        pure
        returns (uint32[][] memory xs)
    {
        xs = new uint32[][](3);
        (xs[0], xs[1], xs[2]) = (a, b, c);
    }

    /// @dev Settle `group` of `round` with the lower medians of the revealed vectors (0 for members
    /// without a revealed update), as an agent would.
    function settle(uint256 id, uint256 round, uint256 group) internal {
        uint32[] memory meds = mediansOf(id, round, group);
        scoring.settleSubgroup(id, round, group, meds);
    }

    function mediansOf(uint256 id, uint256 round, uint256 group) internal view returns (uint32[] memory meds) {
        (address[] memory members, bool[] memory revealed) = tasks.subgroupMembers(id, round, group);
        meds = new uint32[](members.length);
        if (tasks.testSlice(id, round) == bytes32(0)) return new uint32[](0);
        (, uint32[][] memory xs) = scoring.scoresFor(id, round, group);
        for (uint256 i = 0; i < members.length; i++) {
            if (!revealed[i] || xs.length == 0) continue;
            uint32[] memory col = new uint32[](xs.length);
            for (uint256 j = 0; j < xs.length; j++) {
                col[j] = xs[j][i];
            }
            meds[i] = SortedMedian.lowerMedian(col);
        }
    }
}

contract DinScoringTest is ScoringBase {
    /// @dev Adversary: scores from an evaluator not assigned to the subgroup, before the slice,
    /// twice, out of range, of the wrong length, or not matching the commitment.
    function test_scores_onlyAssignedEvaluatorsOnTheRevealedSlice() public {
        uint256 id = setUpTask(6);
        playUpdates(id, 0, range(0, 6), false);
        address[] memory evs = rounds.subgroupEvaluators(id, 0, 0);
        address outsider;
        for (uint256 i = 0; i < es.length; i++) {
            if (!contains(evs, es[i])) outsider = es[i];
        }
        assertTrue(outsider != address(0), "4 evaluators, 3 per subgroup: one is not in subgroup 0");
        (uint64 s, uint64 e) = tasks.window(id, 0, DinTasks.Stage.GlobalCommit);
        vm.expectRevert(
            abi.encodeWithSelector(DinScoring.OutsideWindow.selector, id, 0, DinTasks.Stage.GlobalCommit, s, e)
        );
        vm.prank(evs[0]);
        scoring.commitScores(id, 0, 0, keccak256("x"));
        vm.warp(s);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NotAssigned.selector, id, 0, 0, outsider));
        vm.prank(outsider);
        scoring.commitScores(id, 0, 0, keccak256("x"));
        vm.expectRevert(abi.encodeWithSelector(DinScoring.InvalidCommitment.selector, bytes32(0)));
        vm.prank(evs[0]);
        scoring.commitScores(id, 0, 0, bytes32(0));
        // the "revealed" marker is no commitment: it would pass for a reveal that never happened
        bytes32 marker = scoring.REVEALED();
        vm.expectRevert(abi.encodeWithSelector(DinScoring.InvalidCommitment.selector, marker));
        vm.prank(evs[0]);
        scoring.commitScores(id, 0, 0, marker);
        uint32[] memory good = v3(900_000, 500_000, 0);
        uint32[] memory tooHigh = v3(2_000_000, 0, 0);
        vm.prank(evs[0]);
        scoring.commitScores(id, 0, 0, scoreCommitment(id, 0, 0, evs[0], good));
        vm.expectRevert(abi.encodeWithSelector(DinScoring.AlreadyCommitted.selector, id, 0, 0, evs[0]));
        vm.prank(evs[0]);
        scoring.commitScores(id, 0, 0, keccak256("again"));
        vm.prank(evs[1]);
        scoring.commitScores(id, 0, 0, scoreCommitment(id, 0, 0, evs[1], tooHigh));
        warpTo(id, 0, DinTasks.Stage.GlobalReveal);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NotCommitted.selector, id, 0, 0, evs[2]));
        vm.prank(evs[2]);
        scoring.revealScores(id, 0, 0, good, salt(evs[2]));
        vm.expectRevert(abi.encodeWithSelector(DinScoring.BadScoreCount.selector, 3, 2));
        vm.prank(evs[0]);
        scoring.revealScores(id, 0, 0, new uint32[](2), salt(evs[0]));
        vm.expectRevert(abi.encodeWithSelector(DinScoring.CommitmentMismatch.selector, id, 0, 0, evs[0]));
        vm.prank(evs[0]);
        scoring.revealScores(id, 0, 0, v3(900_000, 500_000, 1), salt(evs[0]));
        vm.expectRevert(abi.encodeWithSelector(DinScoring.ScoreOutOfRange.selector, 0, 2_000_000));
        vm.prank(evs[1]);
        scoring.revealScores(id, 0, 0, tooHigh, salt(evs[1]));
        vm.prank(evs[0]);
        scoring.revealScores(id, 0, 0, good, salt(evs[0]));
        vm.expectRevert(abi.encodeWithSelector(DinScoring.AlreadyRevealed.selector, id, 0, 0, evs[0]));
        vm.prank(evs[0]);
        scoring.revealScores(id, 0, 0, good, salt(evs[0]));
        (address[] memory who, uint32[][] memory xs) = scoring.scoresFor(id, 0, 0);
        assertEq(who.length, 1, "only the matching in-range reveal counts");
        assertEq(xs[0][0], 900_000, "scores read back");
        // round 1: the owner withholds its slice, so nobody can score it
        playUpdates(id, 1, range(0, 6), true);
        warpTo(id, 1, DinTasks.Stage.GlobalCommit);
        evs = rounds.subgroupEvaluators(id, 1, 0);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.SliceNotRevealed.selector, id, 1));
        vm.prank(evs[0]);
        scoring.commitScores(id, 1, 0, keccak256("x"));
    }

    function test_settle_checksEachMembersMedianByCounting() public {
        uint256 id = setUpTask(6);
        uint256[] memory who = range(0, 6);
        who[2] = 5; // ps[2] never submits (ps[5] listed twice would commit twice: drop the last)
        uint256[] memory five = new uint256[](5);
        for (uint256 i = 0; i < 5; i++) {
            five[i] = who[i];
        }
        playUpdates(id, 0, five, false);
        address[] memory evs = rounds.subgroupEvaluators(id, 0, 0);
        // member 0 gets {800k, 700k, 100k}; member 1 {400k, 400k, 600k}; member 2 has no update
        scoreSubgroup(
            id, 0, 0, vectors(v3(800_000, 400_000, 900_000), v3(700_000, 400_000, 0), v3(100_000, 600_000, 0))
        );
        (uint64 s, uint64 e) = tasks.window(id, 0, DinTasks.Stage.GlobalReveal);
        vm.expectRevert(
            abi.encodeWithSelector(DinScoring.OutsideWindow.selector, id, 0, DinTasks.Stage.GlobalReveal, s, e)
        );
        scoring.settleSubgroup(id, 0, 0, v3(700_000, 400_000, 0));
        vm.warp(e);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NotMedian.selector, 0, 800_000, 2, 1, 0));
        scoring.settleSubgroup(id, 0, 0, v3(800_000, 400_000, 0));
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NotMedian.selector, 1, 500_000, 2, 0, 1));
        scoring.settleSubgroup(id, 0, 0, v3(700_000, 500_000, 0));
        // an evaluator may score a member without an update; the contract pays it nothing anyway
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NotMedian.selector, 2, 900_000, 0, 0, 0));
        scoring.settleSubgroup(id, 0, 0, v3(700_000, 400_000, 900_000));
        vm.expectRevert(abi.encodeWithSelector(DinScoring.BadMedianCount.selector, 3, 2));
        scoring.settleSubgroup(id, 0, 0, new uint32[](2));
        vm.expectRevert(abi.encodeWithSelector(DinScoring.SubgroupOutOfRange.selector, id, 2, 2));
        scoring.settleSubgroup(id, 0, 2, v3(0, 0, 0));
        uint32[] memory meds = v3(700_000, 400_000, 0);
        vm.expectEmit(true, true, true, true, address(scoring));
        emit DinScoring.SubgroupSettled(id, 0, 0, false, meds);
        scoring.settleSubgroup(id, 0, 0, meds);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.AlreadySettled.selector, id, 0, 0));
        scoring.settleSubgroup(id, 0, 0, meds);
        (uint256 sum,,) = scoring.standingOf(id, ps[0]);
        assertEq(sum, 700_000, "member 0's median");
        // agreement within 0.5: evs[0] is 0.9 off on member 2, evs[2] 0.6 off on member 0
        (uint256 a0,) = scoring.accountOf(id, evs[0]);
        (uint256 a1,) = scoring.accountOf(id, evs[1]);
        (uint256 a2,) = scoring.accountOf(id, evs[2]);
        assertEq(a0 * 100 + a1 * 10 + a2, 232, "agreed slots 2, 3, 2");
        (,,,, uint256 slots, uint256 sumAgreed,) = scoring.totals(id);
        assertEq(slots, 9, "3 evaluators x 3 members");
        assertEq(sumAgreed, 7, "sum of agreed slots");
    }

    /// @dev Two rounds, both subgroups scored by their assigned evaluators; rewards by summed
    /// medians, fees by agreed slots, the owner gets back exactly the unearned fees.
    function test_claims_proportionalOnceAndFeesByAgreement() public {
        uint256 id = setUpTask(6);
        for (uint256 r = 0; r < 2; r++) {
            playUpdates(id, r, range(0, 6), false);
            scoreSubgroup(id, r, 0, vectors(v3(600_000, 300_000, 0), v3(600_000, 300_000, 0), v3(0, 0, 0)));
            scoreSubgroup(id, r, 1, vectors(v3(100_000, 100_000, 0), v3(100_000, 100_000, 0), new uint32[](0)));
            warpTo(id, r, DinTasks.Stage.GlobalReveal);
            (, uint64 end) = tasks.window(id, r, DinTasks.Stage.GlobalReveal);
            vm.warp(end);
            settle(id, r, 0);
            if (r == 0) {
                vm.expectRevert(abi.encodeWithSelector(DinScoring.NotAllSettled.selector, id, 1, 4));
                vm.prank(ps[0]);
                scoring.claimReward(id);
            }
            settle(id, r, 1);
        }
        // sums: ps0 1.2M, ps1 0.6M, ps2 0, ps3 0.2M, ps4 0.2M, ps5 0 -> total 2.2M
        uint256 before = token.balanceOf(ps[0]);
        vm.prank(ps[0]);
        scoring.claimReward(id);
        assertEq(token.balanceOf(ps[0]) - before, REWARD * 1_200_000 / 2_200_000, "ps0 share");
        vm.expectRevert(abi.encodeWithSelector(DinScoring.AlreadyClaimed.selector, id, ps[0]));
        vm.prank(ps[0]);
        scoring.claimReward(id);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NothingToClaim.selector, id, ps[2]));
        vm.prank(ps[2]);
        scoring.claimReward(id);
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NotParticipant.selector, id, ps[9]));
        vm.prank(ps[9]);
        scoring.claimReward(id);
        // slots: 2 rounds x 2 subgroups x 3 evaluators x 3 members = 36
        (,,,, uint256 slots, uint256 sumAgreed,) = scoring.totals(id);
        assertEq(slots, 36, "slots");
        uint256 earned = FEE * 4 * sumAgreed / slots;
        assertEq(scoring.ownerRefundOf(id), FEE * 4 - earned, "owner: unearned fees only");
        for (uint256 i = 0; i < es.length; i++) {
            (uint256 agreed,) = scoring.accountOf(id, es[i]);
            uint256 fee = scoring.feeOf(id, es[i]);
            assertEq(fee, FEE * 4 * agreed / slots, "fee by agreed slots");
            if (fee == 0) continue;
            before = token.balanceOf(es[i]);
            vm.prank(es[i]);
            scoring.claimFee(id);
            assertEq(token.balanceOf(es[i]) - before, fee, "fee paid");
            vm.expectRevert(abi.encodeWithSelector(DinScoring.AlreadyClaimed.selector, id, es[i]));
            vm.prank(es[i]);
            scoring.claimFee(id);
        }
        before = token.balanceOf(owner);
        scoring.refundOwner(id);
        assertEq(token.balanceOf(owner) - before, FEE * 4 - earned, "owner refund");
        vm.expectRevert(abi.encodeWithSelector(DinScoring.AlreadyClaimed.selector, id, owner));
        scoring.refundOwner(id);
    }

    /// @dev Adversary: the owner withholds round 1's slice. Round 1 is not scored; each participant
    /// that revealed an update in it is credited its mean over the scored rounds, the assigned
    /// evaluators all their slots. The reward goes out in full, the owner recovers nothing from
    /// the withheld round, and a free rider (0 in the scored round) stays at 0.
    function test_withheldSlice_ownerGainsNothing() public {
        uint256 id = setUpTask(6);
        playUpdates(id, 0, range(0, 6), false);
        // round 0: ps0 0.8, ps1 0.4, ps2 (a free rider) 0; ps3 0.6, ps4 0.2, ps5 0.6
        scoreSubgroup(id, 0, 0, vectors(v3(800_000, 400_000, 0), v3(800_000, 400_000, 0), v3(800_000, 400_000, 0)));
        scoreSubgroup(id, 0, 1, vectors(v3(600_000, 200_000, 600_000), v3(600_000, 200_000, 600_000), v3(600_000, 200_000, 600_000)));
        // round 1: ps5 does not take part; the owner withholds the slice
        playUpdates(id, 1, range(0, 5), true);
        warpTo(id, 1, DinTasks.Stage.GlobalReveal);
        (, uint64 end) = tasks.window(id, 1, DinTasks.Stage.GlobalReveal);
        vm.warp(end);
        assertTrue(tasks.sliceWithheld(id, 1), "withheld");
        for (uint256 g = 0; g < 2; g++) {
            settle(id, 0, g);
            vm.expectRevert(abi.encodeWithSelector(DinScoring.BadMedianCount.selector, 0, 3));
            scoring.settleSubgroup(id, 1, g, v3(0, 0, 0)); // nothing to propose for an unscored round
            uint32[] memory none = new uint32[](0);
            vm.expectEmit(true, true, true, true, address(scoring));
            emit DinScoring.SubgroupSettled(id, 1, g, true, none);
            scoring.settleSubgroup(id, 1, g, none);
        }
        // weights S_i * (s + w_i) with s = 1: ps0 0.8*2, ps1 0.4*2, ps2 0, ps3 0.6*2, ps4 0.2*2, ps5 0.6*1
        uint256 total = 1_600_000 + 800_000 + 1_200_000 + 400_000 + 600_000;
        uint256[6] memory w = [uint256(1_600_000), 800_000, 0, 1_200_000, 400_000, 600_000];
        uint256 paid;
        for (uint256 i = 0; i < 6; i++) {
            assertEq(scoring.rewardOf(id, ps[i]), REWARD * w[i] / total, "reward by weight");
            if (w[i] == 0) continue;
            uint256 before = token.balanceOf(ps[i]);
            vm.prank(ps[i]);
            scoring.claimReward(id);
            paid += token.balanceOf(ps[i]) - before;
        }
        assertLe(REWARD - paid, 6, "the whole reward reaches participants (dust aside)");
        assertEq(scoring.rewardOf(id, ps[2]), 0, "free rider still 0");
        // every evaluator agreed on every slot (round 0 unanimous, round 1 credited): no unearned fee
        (,,,, uint256 slots, uint256 sumAgreed,) = scoring.totals(id);
        assertEq(sumAgreed, slots, "all slots agreed");
        assertEq(scoring.ownerRefundOf(id), 0, "nothing for the owner");
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NothingToClaim.selector, id, owner));
        scoring.refundOwner(id);
    }

    /// @dev Adversary: the owner reveals round 0's slice hash but serves the bytes to one colluding
    /// evaluator only, which reveals 0 for everyone; the honest two cannot score. One of three is no
    /// quorum: the subgroup is unscored (credited like a withheld slice), the colluder sets nothing.
    function test_noQuorumOfScores_colluderSetsNoMedian() public {
        uint256 id = setUpTask(6);
        playUpdates(id, 0, range(0, 6), false);
        uint32[][] memory xs = new uint32[][](3);
        xs[0] = v3(0, 0, 0); // the colluder; the others never commit
        xs[1] = new uint32[](0);
        xs[2] = new uint32[](0);
        scoreSubgroup(id, 0, 0, xs);
        scoreSubgroup(id, 0, 1, vectors(v3(500_000, 500_000, 500_000), v3(500_000, 500_000, 500_000), v3(0, 0, 0)));
        (, uint64 end) = tasks.window(id, 0, DinTasks.Stage.GlobalReveal);
        vm.warp(end);
        (address[] memory voters,) = scoring.scoresFor(id, 0, 0);
        assertEq(voters.length, 1, "one reveal of three");
        vm.expectRevert(abi.encodeWithSelector(DinScoring.BadMedianCount.selector, 0, 3));
        scoring.settleSubgroup(id, 0, 0, v3(0, 0, 0));
        uint32[] memory none = new uint32[](0);
        vm.expectEmit(true, true, true, true, address(scoring));
        emit DinScoring.SubgroupSettled(id, 0, 0, true, none);
        scoring.settleSubgroup(id, 0, 0, none);
        settle(id, 0, 1); // 2 of 3 revealed: a quorum, scored
        (uint256 sum, uint256 unscored,) = scoring.standingOf(id, ps[0]);
        assertEq(sum * 10 + unscored, 1, "ps0: no median from the colluder, one unscored round");
        (sum, unscored,) = scoring.standingOf(id, ps[3]);
        assertEq(sum, 500_000, "ps3 scored by the quorum");
        assertEq(unscored, 0, "ps3 scored");
        address[] memory evs = rounds.subgroupEvaluators(id, 0, 0);
        for (uint256 j = 0; j < 3; j++) {
            (uint256 agreed,) = scoring.accountOf(id, evs[j]);
            assertTrue(agreed >= 3, "every assigned evaluator credited its slots of the unscored subgroup");
        }
    }

    /// @dev Every slice withheld: no round is scored, each revealed update counts one equal unit.
    function test_everySliceWithheld_equalUnitsPerRevealedRound() public {
        uint256 id = setUpTask(6);
        playUpdates(id, 0, range(0, 6), true);
        playUpdates(id, 1, range(0, 3), true);
        (, uint64 end) = tasks.window(id, 1, DinTasks.Stage.GlobalReveal);
        vm.warp(end);
        for (uint256 r = 0; r < 2; r++) {
            for (uint256 g = 0; g < 2; g++) {
                scoring.settleSubgroup(id, r, g, new uint32[](0));
            }
        }
        // ps0..2 revealed twice, ps3..5 once: 9 units
        assertEq(scoring.rewardOf(id, ps[0]), REWARD * 2 / 9, "two units");
        assertEq(scoring.rewardOf(id, ps[5]), REWARD * 1 / 9, "one unit");
        assertEq(scoring.ownerRefundOf(id), 0, "owner: neither reward nor fees");
    }

    /// @dev Adversary: an assigned evaluator reveals garbage scores (every member 1.0). The median
    /// follows the honest majority, the liar earns no slot where it is more than 0.5 off, and
    /// nobody is slashed for scores.
    function test_garbageScores_cannotMoveTheMedian() public {
        uint256 id = setUpTask(6);
        playUpdates(id, 0, range(0, 6), false);
        address[] memory evs = rounds.subgroupEvaluators(id, 0, 0);
        uint256[] memory stakes = new uint256[](3);
        for (uint256 j = 0; j < 3; j++) {
            stakes[j] = staking.stakeOf(evs[j]);
        }
        scoreSubgroup(id, 0, 0, vectors(v3(300_000, 0, 100_000), v3(1_000_000, 1_000_000, 1_000_000), v3(300_000, 0, 0)));
        (, uint64 end) = tasks.window(id, 0, DinTasks.Stage.GlobalReveal);
        vm.warp(end);
        uint32[] memory meds = mediansOf(id, 0, 0);
        assertEq(meds[0], 300_000, "honest median");
        assertEq(meds[1], 0, "honest median");
        assertEq(meds[2], 100_000, "honest median");
        scoring.settleSubgroup(id, 0, 0, meds);
        (uint256 liar,) = scoring.accountOf(id, evs[1]);
        (uint256 honest,) = scoring.accountOf(id, evs[0]);
        assertEq(liar, 0, "0.7, 1.0 and 0.9 off the medians: no slot earned");
        assertEq(honest, 3, "honest agrees everywhere");
        for (uint256 j = 0; j < 3; j++) {
            assertEq(staking.stakeOf(evs[j]), stakes[j], "scores are not slashed, only unpaid");
        }
    }

    /// @dev The owner ends the task after round 0: pay-outs cover the round held, in full.
    function test_earlyEnd_paysTheRoundsHeld() public {
        uint256 id = setUpTask(6);
        playUpdates(id, 0, range(0, 6), false);
        vm.prank(owner);
        tasks.endAfterRound(id, 0);
        scoreSubgroup(id, 0, 0, vectors(v3(600_000, 300_000, 0), v3(600_000, 300_000, 0), v3(600_000, 300_000, 0)));
        scoreSubgroup(id, 0, 1, vectors(v3(100_000, 0, 0), v3(100_000, 0, 0), v3(100_000, 0, 0)));
        (, uint64 end) = tasks.window(id, 0, DinTasks.Stage.GlobalReveal);
        vm.warp(end);
        settle(id, 0, 0);
        assertTrue(!scoring.allSettled(id), "one subgroup to go");
        settle(id, 0, 1);
        assertTrue(scoring.allSettled(id), "every subgroup of the round held");
        (, uint256 toSettle,,,,,) = scoring.totals(id);
        assertEq(toSettle, 2, "1 round x 2 subgroups");
        uint256 paid;
        for (uint256 i = 0; i < 6; i++) {
            uint256 r = scoring.rewardOf(id, ps[i]);
            if (r == 0) continue;
            vm.prank(ps[i]);
            scoring.claimReward(id);
            paid += r;
        }
        assertEq(paid, REWARD * 600_000 / 1_000_000 + REWARD * 300_000 / 1_000_000 + REWARD * 100_000 / 1_000_000,
            "the whole reward for round 0");
        assertEq(scoring.ownerRefundOf(id), 0, "every slot agreed: no unearned fee");
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

/// @dev Random settle / claim / refund sequences over a task with one scored and one withheld round.
contract ScoringHandler {
    Vm constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    DinScoring public scoring;
    DinTasks public tasks;
    LoyalToken public token;
    ScoringBase public base;
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
        base = ScoringBase(msg.sender);
    }

    /// @dev Settles the next unsettled (round, subgroup) pair from `k` on, with the right medians.
    function settle(uint256 k) external {
        uint256 groups = tasks.subgroupCount(id);
        for (uint256 j = 0; j < 2 * groups; j++) {
            uint256 p = (k + j) % (2 * groups);
            (uint256 r, uint256 g) = (p / groups, p % groups);
            if (scoring.subgroupSettled(id, r, g)) continue;
            scoring.settleSubgroup(id, r, g, DinScoringInvariantTest(address(base)).medians(r, g));
            return;
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
    uint256[] expected; // reward each participant is owed once everything is settled

    function setUp() public override {
        super.setUp();
        id = setUpTask(N);
        playUpdates(id, 0, range(0, N), false);
        for (uint256 g = 0; g < N / 3; g++) {
            address[] memory evs = rounds.subgroupEvaluators(id, 0, g);
            uint32[][] memory xs = new uint32[][](3);
            for (uint256 j = 0; j < 3; j++) {
                if (j == 2 && g % 2 == 0) continue; // an evaluator stays away from some subgroups
                xs[j] = new uint32[](3);
                for (uint256 i = 0; i < 3; i++) {
                    xs[j][i] = uint32(uint256(keccak256(abi.encode(evs[j], g, i))) % 1_000_001);
                }
            }
            scoreSubgroup(id, 0, g, xs);
        }
        playUpdates(id, 1, range(0, N - 2), true); // round 1 withheld, two participants absent
        (, uint64 end) = tasks.window(id, 1, DinTasks.Stage.GlobalReveal);
        vm.warp(end);
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

    function medians(uint256 r, uint256 g) external view returns (uint32[] memory) {
        return mediansOf(id, r, g);
    }

    /// @dev The handler really reaches the pay-outs (so the invariants are not vacuous), and the
    /// whole deposit minus rounding dust goes out once everyone has claimed.
    function test_handler_reachesClaims() public {
        for (uint256 i = 0; i < 2 * N / 3; i++) {
            handler.settle(i);
        }
        assertTrue(scoring.allSettled(id), "everything settled");
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
        (uint256 settled, uint256 toSettle,,,,,) = scoring.totals(id);
        if (settled < toSettle) {
            for (uint256 i = 0; i < N; i++) {
                assertEq(handler.received(ps[i]), 0, "nothing paid before everything is settled");
            }
        }
    }
}
