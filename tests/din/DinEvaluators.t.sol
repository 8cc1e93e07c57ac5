// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {DinBase} from "./DinBase.sol";
import {DinTasks} from "../../contracts/din/DinTasks.sol";
import {DinRounds} from "../../contracts/din/DinRounds.sol";
import {DinScoring} from "../../contracts/din/DinScoring.sol";

/// @dev 120 evaluators on one task (no protocol cap), 3 per subgroup: assignment, the global vote
/// settled in pages, and evaluators found at fault barred from every later round.
contract DinEvaluatorsTest is DinBase {
    uint256 constant E = 120;
    uint256 constant LAZY = 10; // es[E - LAZY ..] never vote on round 0's global model

    function setUp() public override {
        super.setUp();
        for (uint256 i = es.length; i < E; i++) {
            address e = address(uint160(0x2000 + i));
            es.push(e);
            vm.prank(admin);
            token.mint(e, 1_000 ether);
            vm.startPrank(e);
            token.approve(address(staking), type(uint256).max);
            staking.stake(MIN_STAKE);
            vm.stopPrank();
        }
    }

    function bigTask() internal returns (uint256 id) {
        DinTasks.TaskParams memory p = defaultParams();
        p.maxEvaluators = uint16(E);
        vm.prank(owner);
        id = tasks.createTask(p, "bafkgenesis");
        for (uint256 i = 0; i < 12; i++) {
            vm.prank(ps[i]);
            tasks.register(id);
        }
        enrolAndRevealSeeds(id);
    }

    function globalCommitment(uint256 id, uint256 round, address e, string memory cid) internal pure returns (bytes32) {
        return keccak256(abi.encode(id, round, type(uint256).max, e, cid, salt(e)));
    }

    /// @dev Round `round`: updates, seed, slice, every subgroup aggregated by its evaluators and
    /// finalized, then the global vote by the roster minus `skip`.
    function playRound(uint256 id, uint256 round, bool[] memory skip) internal {
        warpTo(id, round, DinTasks.Stage.Submit);
        submitUpdates(id, round, range(0, 12));
        warpTo(id, round, DinTasks.Stage.AggregateCommit);
        vm.prevrandao(bytes32(uint256(round + 3)));
        rounds.drawRoundSeed(id, round);
        revealSlice(id, round);
        for (uint256 g = 0; g < 4; g++) {
            voteSubgroup(id, round, g, "bafkagg", address(0), address(0));
        }
        warpTo(id, round, DinTasks.Stage.GlobalCommit);
        for (uint256 g = 0; g < 4; g++) {
            rounds.finalizeSubgroup(id, round, g);
        }
        for (uint256 i = 0; i < E; i++) {
            if (skip[i] || !rounds.isEligible(id, round, es[i])) continue;
            vm.prank(es[i]);
            rounds.commitGlobal(id, round, globalCommitment(id, round, es[i], "bafkglobal"));
        }
        warpTo(id, round, DinTasks.Stage.GlobalReveal);
        for (uint256 i = 0; i < E; i++) {
            if (skip[i] || !rounds.isEligible(id, round, es[i])) continue;
            vm.prank(es[i]);
            rounds.revealGlobal(id, round, "bafkglobal", salt(es[i]));
        }
        (, uint64 end) = tasks.window(id, round, DinTasks.Stage.GlobalReveal);
        vm.warp(end);
        rounds.finalizeGlobal(id, round);
    }

    function test_120Evaluators_globalVoteInPages_offendersBarredFromLaterRounds() public {
        uint256 id = bigTask();
        assertEq(rounds.evaluatorCount(id), E, "120 enrolled");
        bool[] memory skip = new bool[](E);
        for (uint256 i = E - LAZY; i < E; i++) {
            skip[i] = true;
        }
        playRound(id, 0, skip);
        assertEq(rounds.rosterSize(id, 0), E, "round 0: everyone eligible");
        (,, bool fin, bool acc) = rounds.tally(id, 0, rounds.GLOBAL());
        assertTrue(fin && acc, "110 of 120 accept");
        address[][] memory before = new address[][](4);
        for (uint256 g = 0; g < 4; g++) {
            before[g] = rounds.subgroupEvaluators(id, 0, g);
        }
        // 120 voters settled in pages of 50: no transaction loops over all of them
        rounds.settleGlobalVotes(id, 0, 50);
        rounds.settleGlobalVotes(id, 0, 50);
        assertEq(rounds.offenders(id), 0, "the lazy ten sit at the last roster positions");
        rounds.settleGlobalVotes(id, 0, 50);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.NoVotesToSettle.selector, id, 0));
        rounds.settleGlobalVotes(id, 0, 50);
        assertEq(rounds.offenders(id), LAZY, "every no-show found");
        assertEq(rounds.activeEvaluators(id), E - LAZY, "barred from the next round");
        for (uint256 i = E - LAZY; i < E; i++) {
            assertEq(staking.stakeOf(es[i]), MIN_STAKE - SLASH, "no-show slashed");
            assertEq(rounds.barredFrom(id, es[i]), 2, "barred from round 1 on");
            assertTrue(rounds.isEligible(id, 0, es[i]), "still part of round 0's roster");
        }
        // round 0's assignment is unchanged by the bars
        for (uint256 g = 0; g < 4; g++) {
            address[] memory now_ = rounds.subgroupEvaluators(id, 0, g);
            for (uint256 j = 0; j < 3; j++) {
                assertEq(now_[j], before[g][j], "a drawn round never changes");
            }
        }

        // round 1: 110 eligible; the barred ten are assigned nowhere and cannot vote or score
        playRound(id, 1, new bool[](E));
        assertEq(rounds.rosterSize(id, 1), E - LAZY, "round 1 roster");
        for (uint256 g = 0; g < 4; g++) {
            address[] memory evs = rounds.subgroupEvaluators(id, 1, g);
            for (uint256 j = 0; j < 3; j++) {
                assertEq(rounds.barredFrom(id, evs[j]), 0, "only unbarred evaluators assigned");
                for (uint256 j2 = 0; j2 < j; j2++) {
                    assertTrue(evs[j] != evs[j2], "distinct within a subgroup");
                }
            }
        }
        for (uint256 i = E - LAZY; i < E; i++) {
            assertTrue(!rounds.isEligible(id, 1, es[i]), "not in round 1's roster");
            assertEq(rounds.assignedSubgroups(id, 1, es[i]).length, 0, "no assignment");
            for (uint256 g = 0; g < 4; g++) {
                assertTrue(!rounds.isAssigned(id, 1, g, es[i]), "not assigned");
            }
        }
        // the global vote of round 1 had 110 voters, all honest: accepted, nobody new at fault
        (,, fin, acc) = rounds.tally(id, 1, rounds.GLOBAL());
        assertTrue(fin && acc, "round 1 accepted");
        rounds.settleGlobalVotes(id, 1, 200);
        assertEq(rounds.offenders(id), LAZY, "no new offender");
    }

    function test_barredEvaluatorCannotCommitGlobalOrScores() public {
        uint256 id = bigTask();
        bool[] memory skip = new bool[](E);
        address lazy = es[E - 1];
        skip[E - 1] = true;
        playRound(id, 0, skip);
        rounds.settleGlobalVotes(id, 0, E);
        assertEq(rounds.barredFrom(id, lazy), 2, "barred from round 1");
        // round 1 up to GlobalCommit
        warpTo(id, 1, DinTasks.Stage.Submit);
        submitUpdates(id, 1, range(0, 12));
        warpTo(id, 1, DinTasks.Stage.AggregateCommit);
        rounds.drawRoundSeed(id, 1);
        revealSlice(id, 1);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.NotAssigned.selector, id, 1, 0, lazy));
        vm.prank(lazy);
        rounds.commitAggregate(id, 1, 0, keccak256("x"));
        for (uint256 g = 0; g < 4; g++) {
            voteSubgroup(id, 1, g, "bafkagg", address(0), address(0));
        }
        warpTo(id, 1, DinTasks.Stage.GlobalCommit);
        for (uint256 g = 0; g < 4; g++) {
            rounds.finalizeSubgroup(id, 1, g);
        }
        vm.expectRevert(abi.encodeWithSelector(DinRounds.Barred.selector, id, 1, lazy));
        vm.prank(lazy);
        rounds.commitGlobal(id, 1, globalCommitment(id, 1, lazy, "bafkglobal"));
        vm.expectRevert(abi.encodeWithSelector(DinScoring.NotAssigned.selector, id, 1, 0, lazy));
        vm.prank(lazy);
        scoring.commitScores(id, 1, 0, keccak256("x"));
    }
}
