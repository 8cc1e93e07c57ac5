// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {DinBase} from "./DinBase.sol";
import {DinTasks} from "../../contracts/din/DinTasks.sol";
import {DinRounds} from "../../contracts/din/DinRounds.sol";
import {Staking} from "../../contracts/core/Staking.sol";

/// @dev Exposes the shuffle for property tests.
contract ShuffleHarness is DinRounds {
    constructor() DinRounds(DinTasks(address(0)), Staking(address(0))) {}

    function shuffle(uint256 i, uint256 n, bytes32 seed) external pure returns (uint256) {
        return _shuffle(i, n, seed);
    }

    function unshuffle(uint256 i, uint256 n, bytes32 seed) external pure returns (uint256) {
        return _unshuffle(i, n, seed);
    }
}

contract DinRoundsTest is DinBase {

    function drawnTask() internal returns (uint256 id) {
        id = setUpTask(6); // 2 subgroups of 3, 4 evaluators, k = 3
        submitRound0(id, 0, 6);
        vm.prevrandao(bytes32(uint256(42)));
        rounds.drawRoundSeed(id, 0);
    }

    // ------------------------------------------------------------------ enrolment and seeds

    function test_enrol_refusals() public {
        uint256 id = createTask();
        bytes32 c = keccak256("c");
        vm.expectRevert(abi.encodeWithSelector(DinRounds.StakeTooLow.selector, ps[0], 0, MIN_STAKE));
        vm.prank(ps[0]);
        rounds.enrol(id, c);
        vm.expectRevert(DinRounds.ZeroCommitment.selector);
        vm.prank(es[0]);
        rounds.enrol(id, bytes32(0));
        for (uint256 i = 0; i < 4; i++) {
            vm.prank(es[i]);
            rounds.enrol(id, c);
        }
        vm.expectRevert(abi.encodeWithSelector(DinRounds.AlreadyEnrolled.selector, id, es[0]));
        vm.prank(es[0]);
        rounds.enrol(id, c);
        address fifth = address(0x2999);
        vm.prank(admin);
        token.mint(fifth, MIN_STAKE);
        vm.startPrank(fifth);
        token.approve(address(staking), MIN_STAKE);
        staking.stake(MIN_STAKE);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.TooManyEvaluators.selector, id, 4));
        rounds.enrol(id, c);
        vm.stopPrank();
        vm.warp(tasks.params(id).registrationEnd);
        uint256 id2 = createTask();
        vm.warp(tasks.params(id2).registrationEnd);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.EnrolmentClosed.selector, id2));
        vm.prank(es[0]);
        rounds.enrol(id2, c);
        assertEq(rounds.evaluatorCount(id), 4, "enrolled");
    }

    function test_seed_mismatchAndNoShowSlash() public {
        uint256 id = createTask();
        for (uint256 i = 0; i < 4; i++) {
            vm.prank(es[i]);
            rounds.enrol(id, keccak256(abi.encode(id, es[i], seedOf(es[i]))));
        }
        warpTo(id, 0, DinTasks.Stage.Submit);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.SeedMismatch.selector, id, es[0]));
        vm.prank(es[0]);
        rounds.revealSeed(id, bytes32(uint256(1)));
        for (uint256 i = 0; i < 3; i++) {
            vm.prank(es[i]);
            rounds.revealSeed(id, seedOf(es[i]));
        }
        vm.expectRevert(abi.encodeWithSelector(DinRounds.SeedAlreadyRevealed.selector, id, es[0]));
        vm.prank(es[0]);
        rounds.revealSeed(id, seedOf(es[0]));
        (, uint64 end) = tasks.window(id, 0, DinTasks.Stage.Submit);
        vm.expectRevert(
            abi.encodeWithSelector(DinRounds.OutsideWindow.selector, id, 0, DinTasks.Stage.Submit, end, type(uint64).max)
        );
        rounds.slashSeedNoShow(id, es[3]);
        vm.warp(end);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.SeedWasRevealed.selector, id, es[0]));
        rounds.slashSeedNoShow(id, es[0]);
        vm.expectEmit(true, true, true, true, address(rounds));
        emit DinRounds.EvaluatorSlashed(id, 0, es[3], SLASH, "din: seed no-show");
        rounds.slashSeedNoShow(id, es[3]);
        assertEq(staking.stakeOf(es[3]), MIN_STAKE - SLASH, "slashed");
        vm.expectRevert(abi.encodeWithSelector(DinRounds.SeedNoShowAlreadySettled.selector, id, es[3]));
        rounds.slashSeedNoShow(id, es[3]);
    }

    function test_drawRoundSeed_onceInWindow() public {
        uint256 id = setUpTask(6);
        (uint64 s, uint64 e) = tasks.window(id, 0, DinTasks.Stage.AggregateCommit);
        vm.expectRevert(
            abi.encodeWithSelector(DinRounds.OutsideWindow.selector, id, 0, DinTasks.Stage.AggregateCommit, s, e)
        );
        rounds.drawRoundSeed(id, 0);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.RoundSeedNotDrawn.selector, id, 0));
        rounds.subgroupEvaluators(id, 0, 0);
        vm.warp(s);
        rounds.drawRoundSeed(id, 0);
        assertTrue(rounds.roundSeed(id, 0) != bytes32(0), "drawn");
        vm.expectRevert(abi.encodeWithSelector(DinRounds.RoundSeedAlreadyDrawn.selector, id, 0));
        rounds.drawRoundSeed(id, 0);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.RoundOutOfRange.selector, id, 2, 2));
        rounds.drawRoundSeed(id, 2);
    }

    function test_drawRoundSeed_needsEnoughEvaluators() public {
        uint256 id = createTask();
        vm.prank(ps[0]);
        tasks.register(id);
        vm.prank(es[0]);
        rounds.enrol(id, keccak256("c"));
        warpTo(id, 0, DinTasks.Stage.AggregateCommit);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.NotEnoughEvaluators.selector, id, 1, 3));
        rounds.drawRoundSeed(id, 0);
    }

    function test_drawRoundSeed_dependsOnPrevrandao() public {
        uint256 id = setUpTask(6);
        warpTo(id, 0, DinTasks.Stage.AggregateCommit);
        vm.prevrandao(bytes32(uint256(1)));
        rounds.drawRoundSeed(id, 0);
        warpTo(id, 1, DinTasks.Stage.AggregateCommit);
        vm.prevrandao(bytes32(uint256(2)));
        rounds.drawRoundSeed(id, 1);
        assertTrue(rounds.roundSeed(id, 0) != rounds.roundSeed(id, 1), "per-round seeds differ");
    }

    // ------------------------------------------------------------------ assignment

    function test_assignment_consistentViews() public {
        uint256 id = drawnTask();
        uint256[4] memory perEvaluator;
        for (uint256 g = 0; g < 2; g++) {
            address[] memory evs = rounds.subgroupEvaluators(id, 0, g);
            assertEq(evs.length, 3, "k evaluators");
            assertTrue(evs[0] != evs[1] && evs[1] != evs[2] && evs[0] != evs[2], "distinct");
            for (uint256 i = 0; i < 4; i++) {
                bool inGroup = contains(evs, es[i]);
                assertTrue(rounds.isAssigned(id, 0, g, es[i]) == inGroup, "isAssigned matches");
                if (inGroup) perEvaluator[i]++;
            }
        }
        for (uint256 i = 0; i < 4; i++) {
            uint256[] memory gs = rounds.assignedSubgroups(id, 0, es[i]);
            assertEq(gs.length, perEvaluator[i], "assignedSubgroups length");
            for (uint256 j = 0; j < gs.length; j++) {
                assertTrue(rounds.isAssigned(id, 0, gs[j], es[i]), "listed group is assigned");
            }
        }
        assertEq(perEvaluator[0] + perEvaluator[1] + perEvaluator[2] + perEvaluator[3], 6, "G * k slots");
        assertTrue(!rounds.isAssigned(id, 0, 0, ps[0]), "participant not assigned");
        vm.expectRevert(abi.encodeWithSelector(DinRounds.SubgroupOutOfRange.selector, id, 2, 2));
        rounds.isAssigned(id, 0, 2, es[0]);
    }

    function testFuzz_shuffle_isPermutationWithInverse(uint256 n, bytes32 seed) public {
        ShuffleHarness h = new ShuffleHarness();
        n = bound(n, 1, 32);
        bool[] memory seen = new bool[](n);
        for (uint256 i = 0; i < n; i++) {
            uint256 p = h.shuffle(i, n, seed);
            assertTrue(p < n, "in range");
            assertTrue(!seen[p], "no collision");
            seen[p] = true;
            assertEq(h.unshuffle(p, n, seed), i, "inverse");
        }
    }

    // ------------------------------------------------------------------ aggregates

    function test_aggregate_refusals() public {
        uint256 id = drawnTask();
        address[] memory evs = rounds.subgroupEvaluators(id, 0, 0);
        address outsider;
        for (uint256 i = 0; i < 4; i++) {
            if (!contains(evs, es[i])) outsider = es[i];
        }
        vm.expectRevert(abi.encodeWithSelector(DinRounds.NotAssigned.selector, id, 0, 0, outsider));
        vm.prank(outsider);
        rounds.commitAggregate(id, 0, 0, keccak256("x"));
        vm.expectRevert(DinRounds.ZeroCommitment.selector);
        vm.prank(evs[0]);
        rounds.commitAggregate(id, 0, 0, bytes32(0));
        vm.prank(evs[0]);
        rounds.commitAggregate(id, 0, 0, aggCommitment(id, 0, 0, evs[0], "bafkagg"));
        vm.expectRevert(abi.encodeWithSelector(DinRounds.AlreadyCommitted.selector, id, 0, 0, evs[0]));
        vm.prank(evs[0]);
        rounds.commitAggregate(id, 0, 0, keccak256("again"));
        warpTo(id, 0, DinTasks.Stage.AggregateReveal);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.NotCommitted.selector, id, 0, 0, evs[1]));
        vm.prank(evs[1]);
        rounds.revealAggregate(id, 0, 0, "bafkagg", salt(evs[1]));
        vm.expectRevert(abi.encodeWithSelector(DinRounds.CommitmentMismatch.selector, id, 0, 0, evs[0]));
        vm.prank(evs[0]);
        rounds.revealAggregate(id, 0, 0, "bafkother", salt(evs[0]));
        vm.prank(evs[0]);
        rounds.revealAggregate(id, 0, 0, "bafkagg", salt(evs[0]));
        vm.expectRevert(abi.encodeWithSelector(DinRounds.AlreadyRevealed.selector, id, 0, 0, evs[0]));
        vm.prank(evs[0]);
        rounds.revealAggregate(id, 0, 0, "bafkagg", salt(evs[0]));
        (uint64 s, uint64 e) = tasks.window(id, 0, DinTasks.Stage.AggregateReveal);
        vm.expectRevert(
            abi.encodeWithSelector(DinRounds.OutsideWindow.selector, id, 0, DinTasks.Stage.AggregateReveal, s, e)
        );
        rounds.finalizeSubgroup(id, 0, 0);
    }

    function test_aggregate_allAgree_acceptedNobodySlashed() public {
        uint256 id = drawnTask();
        voteSubgroup(id, 0, 0, "bafkagg0", address(0), address(0));
        warpTo(id, 0, DinTasks.Stage.GlobalCommit);
        rounds.finalizeSubgroup(id, 0, 0);
        (bytes32 h, uint256 votes, bool fin, bool acc) = rounds.tally(id, 0, 0);
        assertEq(h, keccak256("bafkagg0"), "accepted hash");
        assertEq(votes, 3, "votes");
        assertTrue(fin && acc, "finalized and accepted");
        for (uint256 i = 0; i < 4; i++) {
            assertEq(staking.stakeOf(es[i]), MIN_STAKE, "no slash");
        }
        vm.expectRevert(abi.encodeWithSelector(DinRounds.AlreadyFinalized.selector, id, 0, 0));
        rounds.finalizeSubgroup(id, 0, 0);
    }

    function test_aggregate_lazySlashed() public {
        uint256 id = drawnTask();
        address lazy = rounds.subgroupEvaluators(id, 0, 0)[2];
        voteSubgroup(id, 0, 0, "bafkagg0", lazy, address(0));
        warpTo(id, 0, DinTasks.Stage.GlobalCommit);
        vm.expectEmit(true, true, true, true, address(rounds));
        emit DinRounds.EvaluatorSlashed(id, 0, lazy, SLASH, "din: aggregate no-show");
        rounds.finalizeSubgroup(id, 0, 0);
        (, uint256 votes,, bool acc) = rounds.tally(id, 0, 0);
        assertTrue(acc, "2 of 3 accept");
        assertEq(votes, 2, "votes");
        assertEq(staking.stakeOf(lazy), MIN_STAKE - SLASH, "lazy slashed");
        assertEq(staking.slashedBalance(address(rounds)), SLASH, "credited to DinRounds");
    }

    function test_aggregate_maliciousMinorityCannotChangeAggregate() public {
        uint256 id = drawnTask();
        address[] memory evs = rounds.subgroupEvaluators(id, 0, 0);
        address liar = evs[0]; // reveals first: its CID leads the tally until outvoted
        voteSubgroup(id, 0, 0, "bafkhonest", address(0), liar);
        warpTo(id, 0, DinTasks.Stage.GlobalCommit);
        rounds.finalizeSubgroup(id, 0, 0);
        (bytes32 h,,, bool acc) = rounds.tally(id, 0, 0);
        assertTrue(acc, "accepted");
        assertEq(h, keccak256("bafkhonest"), "honest majority wins");
        assertEq(staking.stakeOf(liar), MIN_STAKE - SLASH, "dissenter slashed");
        assertEq(staking.stakeOf(evs[1]), MIN_STAKE, "honest kept");
    }

    function test_aggregate_noMajority_notAcceptedOnlyNoShowSlashed() public {
        uint256 id = drawnTask();
        address[] memory evs = rounds.subgroupEvaluators(id, 0, 0);
        voteSubgroup(id, 0, 0, "bafkhonest", evs[2], evs[0]);
        warpTo(id, 0, DinTasks.Stage.GlobalCommit);
        rounds.finalizeSubgroup(id, 0, 0);
        (,, bool fin, bool acc) = rounds.tally(id, 0, 0);
        assertTrue(fin && !acc, "finalized, not accepted");
        assertEq(staking.stakeOf(evs[0]), MIN_STAKE, "no dissent without a majority");
        assertEq(staking.stakeOf(evs[2]), MIN_STAKE - SLASH, "no-show slashed");
        (uint256 finalized, uint256 accepted) = rounds.roundProgress(id, 0);
        assertEq(finalized, 1, "finalized groups");
        assertEq(accepted, 0, "accepted groups");
    }

    function test_aggregate_emptySubgroup_refusedAndNobodySlashed() public {
        uint256 id = setUpTask(6); // 2 subgroups of 3; only subgroup 1 submits
        submitRound0(id, 3, 6);
        rounds.drawRoundSeed(id, 0);
        assertTrue(!tasks.aggregatable(id, 0, 0) && tasks.aggregatable(id, 0, 1), "only subgroup 1");
        address[] memory evs = rounds.subgroupEvaluators(id, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.SubgroupNotAggregatable.selector, id, 0, 0));
        vm.prank(evs[0]);
        rounds.commitAggregate(id, 0, 0, keccak256("x"));
        warpTo(id, 0, DinTasks.Stage.GlobalCommit);
        rounds.finalizeSubgroup(id, 0, 0);
        (,, bool fin, bool acc) = rounds.tally(id, 0, 0);
        assertTrue(fin && !acc, "closed, not accepted");
        for (uint256 i = 0; i < 4; i++) {
            assertEq(staking.stakeOf(es[i]), MIN_STAKE, "nobody slashed: nothing to aggregate");
        }
    }

    // ------------------------------------------------------------------ global model

    /// @dev Pure on purpose: an external call between vm.prank and the call would consume the prank.
    function globalCommitment(uint256 id, uint256 round, address e, string memory cid) internal pure returns (bytes32) {
        return keccak256(abi.encode(id, round, type(uint256).max, e, cid, salt(e)));
    }

    function test_global_needsFinalizedSubgroupsThenMajority() public {
        uint256 id = drawnTask();
        voteSubgroup(id, 0, 0, "bafkagg0", address(0), address(0));
        voteSubgroup(id, 0, 1, "bafkagg1", address(0), address(0));
        warpTo(id, 0, DinTasks.Stage.GlobalCommit);
        rounds.finalizeSubgroup(id, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.SubgroupsNotFinalized.selector, id, 0, 1, 2));
        vm.prank(es[0]);
        rounds.commitGlobal(id, 0, globalCommitment(id, 0, es[0], "bafkglobal"));
        rounds.finalizeSubgroup(id, 0, 1);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.NotEnrolled.selector, id, ps[0]));
        vm.prank(ps[0]);
        rounds.commitGlobal(id, 0, keccak256("x"));
        // es[3] lazy, es[2] dissents, es[0], es[1] agree: 2 of 4 is not > half
        for (uint256 i = 0; i < 3; i++) {
            string memory cid = i == 2 ? "bafkforged" : "bafkglobal";
            vm.prank(es[i]);
            rounds.commitGlobal(id, 0, globalCommitment(id, 0, es[i], cid));
        }
        warpTo(id, 0, DinTasks.Stage.GlobalReveal);
        for (uint256 i = 0; i < 3; i++) {
            string memory cid = i == 2 ? "bafkforged" : "bafkglobal";
            vm.prank(es[i]);
            rounds.revealGlobal(id, 0, cid, salt(es[i]));
        }
        warpTo(id, 1, DinTasks.Stage.Submit);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.GlobalNotFinalized.selector, id, 0));
        rounds.settleGlobalVotes(id, 0, 10);
        rounds.finalizeGlobal(id, 0);
        (,, bool fin, bool acc) = rounds.tally(id, 0, rounds.GLOBAL());
        assertTrue(fin && !acc, "2 of 4 is no majority");
        assertEq(staking.stakeOf(es[3]), MIN_STAKE, "finalizing is O(1): nobody settled yet");
        // the votes are settled in pages: 3 positions, then the last one
        rounds.settleGlobalVotes(id, 0, 3);
        (uint256 settled, uint256 roster) = rounds.globalVotesProgress(id, 0);
        assertEq(settled * 10 + roster, 34, "3 of 4 settled");
        rounds.settleGlobalVotes(id, 0, 3);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.NoVotesToSettle.selector, id, 0));
        rounds.settleGlobalVotes(id, 0, 3);
        assertEq(staking.stakeOf(es[3]), MIN_STAKE - SLASH, "global no-show slashed");
        assertEq(staking.stakeOf(es[2]), MIN_STAKE, "no dissent without majority");
        vm.expectRevert(abi.encodeWithSelector(DinRounds.AlreadyFinalized.selector, id, 0, rounds.GLOBAL()));
        rounds.finalizeGlobal(id, 0);
    }

    function test_global_acceptedAndDissenterSlashed() public {
        uint256 id = drawnTask();
        voteSubgroup(id, 0, 0, "bafkagg0", address(0), address(0));
        voteSubgroup(id, 0, 1, "bafkagg1", address(0), address(0));
        warpTo(id, 0, DinTasks.Stage.GlobalCommit);
        rounds.finalizeSubgroup(id, 0, 0);
        rounds.finalizeSubgroup(id, 0, 1);
        for (uint256 i = 0; i < 4; i++) {
            string memory cid = i == 3 ? "bafkforged" : "bafkglobal";
            vm.prank(es[i]);
            rounds.commitGlobal(id, 0, globalCommitment(id, 0, es[i], cid));
        }
        warpTo(id, 0, DinTasks.Stage.GlobalReveal);
        for (uint256 i = 0; i < 4; i++) {
            string memory cid = i == 3 ? "bafkforged" : "bafkglobal";
            vm.prank(es[i]);
            rounds.revealGlobal(id, 0, cid, salt(es[i]));
        }
        warpTo(id, 1, DinTasks.Stage.Submit);
        rounds.finalizeGlobal(id, 0);
        rounds.settleGlobalVotes(id, 0, 100);
        (bytes32 h, uint256 votes,, bool acc) = rounds.tally(id, 0, rounds.GLOBAL());
        assertTrue(acc, "3 of 4 accept");
        assertEq(votes, 3, "votes");
        assertEq(h, keccak256("bafkglobal"), "global hash recorded");
        assertEq(staking.stakeOf(es[3]), MIN_STAKE - SLASH, "dissenter slashed");
    }

    function test_slash_cappedAtRemainingStake() public {
        uint256 id = drawnTask();
        address lazy = rounds.subgroupEvaluators(id, 0, 0)[2];
        vm.prank(lazy);
        staking.requestUnstake(MIN_STAKE - 10 ether); // still slashable while unbonding
        vm.prank(address(rounds));
        staking.slash(lazy, 95 ether, "drain to 5"); // leaves 5 ether slashable
        voteSubgroup(id, 0, 0, "bafkagg0", lazy, address(0));
        warpTo(id, 0, DinTasks.Stage.GlobalCommit);
        rounds.finalizeSubgroup(id, 0, 0);
        assertEq(staking.slashableOf(lazy), 0, "took what was left");
    }
}
