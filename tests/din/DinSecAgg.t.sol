// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {DinBase} from "./DinBase.sol";
import {DinTasks} from "../../contracts/din/DinTasks.sol";
import {DinRounds} from "../../contracts/din/DinRounds.sol";

/// @dev Secure-aggregation paths: mask keys, recovery seeds for dropouts, aggregatable subgroups.
contract DinSecAggTest is DinBase {

    function keyOf(address p) internal pure returns (bytes32) {
        return keccak256(abi.encode("x25519", p));
    }

    /// @dev A secure-aggregation task: 6 participants (2 subgroups of 3) with mask keys, 4
    /// evaluators with revealed seeds, at round 0's Submit stage.
    function secaggTask() internal returns (uint256 id) {
        DinTasks.TaskParams memory p = defaultParams();
        p.secureAggregation = true;
        vm.prank(owner);
        id = tasks.createTask(p, "bafkgenesis");
        for (uint256 i = 0; i < 6; i++) {
            vm.startPrank(ps[i]);
            tasks.register(id);
            tasks.setMaskKey(id, keyOf(ps[i]));
            vm.stopPrank();
        }
        enrolAndRevealSeeds(id);
    }

    /// @dev ps[i] for each i in `who` commit in round 0's Submit stage and reveal in UpdateReveal.
    function submit(uint256 id, uint256[] memory who) internal {
        submitUpdates(id, 0, who);
    }

    function list(uint256 a, uint256 b, uint256 c, uint256 d) internal pure returns (uint256[] memory xs) {
        xs = new uint256[](4);
        (xs[0], xs[1], xs[2], xs[3]) = (a, b, c, d);
    }

    function one(address a) internal pure returns (address[] memory xs) {
        xs = new address[](1);
        xs[0] = a;
    }

    function oneSeed(bytes32 s) internal pure returns (bytes32[] memory xs) {
        xs = new bytes32[](1);
        xs[0] = s;
    }

    // ------------------------------------------------------------------ mask keys

    function test_setMaskKey_recordsAndEmits() public {
        DinTasks.TaskParams memory p = defaultParams();
        p.secureAggregation = true;
        vm.prank(owner);
        uint256 id = tasks.createTask(p, "bafkgenesis");
        for (uint256 i = 0; i < 4; i++) {
            vm.prank(ps[i]);
            tasks.register(id);
        }
        vm.expectEmit(true, true, false, true, address(tasks));
        emit DinTasks.MaskKeySet(id, ps[3], 1, keyOf(ps[3]));
        vm.prank(ps[3]);
        tasks.setMaskKey(id, keyOf(ps[3]));
        assertEq(tasks.maskKeyOf(id, ps[3]), keyOf(ps[3]), "key stored");
        (uint256 members,,) = tasks.maskStatus(id, 0, 1);
        assertEq(members, 1, "one keyed member in subgroup 1");
    }

    function test_setMaskKey_refusals() public {
        uint256 clear = createTask();
        vm.prank(ps[0]);
        tasks.register(clear);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.NotSecureAggregation.selector, clear));
        vm.prank(ps[0]);
        tasks.setMaskKey(clear, keyOf(ps[0]));

        DinTasks.TaskParams memory p = defaultParams();
        p.secureAggregation = true;
        vm.prank(owner);
        uint256 id = tasks.createTask(p, "bafkgenesis");
        vm.expectRevert(abi.encodeWithSelector(DinTasks.NotParticipant.selector, id, ps[0]));
        vm.prank(ps[0]);
        tasks.setMaskKey(id, keyOf(ps[0]));
        vm.prank(ps[0]);
        tasks.register(id);
        vm.expectRevert(DinTasks.ZeroMaskKey.selector);
        vm.prank(ps[0]);
        tasks.setMaskKey(id, bytes32(0));
        vm.prank(ps[0]);
        tasks.setMaskKey(id, keyOf(ps[0]));
        vm.expectRevert(abi.encodeWithSelector(DinTasks.MaskKeyAlreadySet.selector, id, ps[0]));
        vm.prank(ps[0]);
        tasks.setMaskKey(id, keccak256("another key"));
        assertEq(tasks.maskKeyOf(id, ps[0]), keyOf(ps[0]), "first key kept");

        vm.prank(ps[1]);
        tasks.register(id);
        warpTo(id, 0, DinTasks.Stage.Submit);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.RegistrationClosed.selector, id, p.registrationEnd));
        vm.prank(ps[1]);
        tasks.setMaskKey(id, keyOf(ps[1]));
        // a registered participant without a key cannot upload in a secure-aggregation task
        vm.expectRevert(abi.encodeWithSelector(DinTasks.MaskKeyMissing.selector, id, ps[1]));
        vm.prank(ps[1]);
        tasks.commitUpdate(id, 0, keccak256("commitment"));
    }

    // ------------------------------------------------------------------ no dropouts

    function test_noDropouts_aggregatableWithoutRecovery() public {
        uint256 id = secaggTask();
        submit(id, range(0, 6));
        assertTrue(tasks.aggregatable(id, 0, 0) && tasks.aggregatable(id, 0, 1), "both subgroups");
        (uint256 members, uint256 submitted, uint256 posts) = tasks.maskStatus(id, 0, 0);
        assertEq(members, 3, "members");
        assertEq(submitted, 3, "submitted");
        assertEq(posts, 0, "no recovery needed");
        warpTo(id, 0, DinTasks.Stage.AggregateCommit);
        // nobody dropped: there is nothing to recover, naming anyone is refused
        vm.expectRevert(abi.encodeWithSelector(DinTasks.DroppedListMismatch.selector, id, 0, 0, 1, 0));
        vm.prank(ps[0]);
        tasks.postRecoverySeeds(id, 0, one(ps[1]), oneSeed(keccak256("s")));
        rounds.drawRoundSeed(id, 0);
        voteSubgroup(id, 0, 0, "bafkagg0", address(0), address(0));
        warpTo(id, 0, DinTasks.Stage.GlobalCommit);
        rounds.finalizeSubgroup(id, 0, 0);
        (,, bool fin, bool acc) = rounds.tally(id, 0, 0);
        assertTrue(fin && acc, "accepted");
    }

    // ------------------------------------------------------------------ one dropout

    function test_dropout_recoveryGatesAggregation() public {
        uint256 id = secaggTask();
        // ps[1] drops out of subgroup 0: it commits but never reveals, which counts as no submission
        commitUpdate(id, 0, 1);
        uint256[] memory who = new uint256[](5);
        (who[0], who[1], who[2], who[3], who[4]) = (0, 2, 3, 4, 5);
        submit(id, who);
        assertTrue(tasks.updateCommitment(id, 0, ps[1]) != bytes32(0), "ps[1] committed");
        assertTrue(!tasks.updateRevealed(id, 0, ps[1]), "but never revealed");
        assertTrue(!tasks.aggregatable(id, 0, 0), "recovery pending");
        assertTrue(tasks.aggregatable(id, 0, 1), "subgroup 1 complete");

        // not before the reveal deadline
        (uint64 s, uint64 e) = tasks.window(id, 0, DinTasks.Stage.AggregateCommit);
        vm.expectRevert(
            abi.encodeWithSelector(DinTasks.OutsideWindow.selector, id, 0, DinTasks.Stage.AggregateCommit, s, e)
        );
        vm.prank(ps[0]);
        tasks.postRecoverySeeds(id, 0, one(ps[1]), oneSeed(keccak256("s01")));

        warpTo(id, 0, DinTasks.Stage.AggregateCommit);
        rounds.drawRoundSeed(id, 0);
        address[] memory evs = rounds.subgroupEvaluators(id, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.SubgroupNotAggregatable.selector, id, 0, 0));
        vm.prank(evs[0]);
        rounds.commitAggregate(id, 0, 0, keccak256("early"));

        // the dropped member cannot post; nor can a member of another subgroup's list be named
        vm.expectRevert(abi.encodeWithSelector(DinTasks.NotSurvivor.selector, id, 0, ps[1]));
        vm.prank(ps[1]);
        tasks.postRecoverySeeds(id, 0, one(ps[0]), oneSeed(keccak256("s")));
        // the dropped list must be exactly the dropouts
        vm.expectRevert(abi.encodeWithSelector(DinTasks.DroppedListMismatch.selector, id, 0, 0, 0, 1));
        vm.prank(ps[0]);
        tasks.postRecoverySeeds(id, 0, new address[](0), new bytes32[](0));
        // naming a member that submitted is refused: its upload is public, its seed would unmask it
        vm.expectRevert(abi.encodeWithSelector(DinTasks.NotDropped.selector, id, 0, ps[2]));
        vm.prank(ps[0]);
        tasks.postRecoverySeeds(id, 0, one(ps[2]), oneSeed(keccak256("s")));
        // a member of another subgroup is not a dropout of this one
        vm.expectRevert(abi.encodeWithSelector(DinTasks.NotDropped.selector, id, 0, ps[4]));
        vm.prank(ps[0]);
        tasks.postRecoverySeeds(id, 0, one(ps[4]), oneSeed(keccak256("s")));

        vm.expectEmit(true, true, true, true, address(tasks));
        emit DinTasks.RecoverySeedsPosted(id, 0, ps[0], 0, one(ps[1]), oneSeed(keccak256("s01")));
        vm.prank(ps[0]);
        tasks.postRecoverySeeds(id, 0, one(ps[1]), oneSeed(keccak256("s01")));
        vm.expectRevert(abi.encodeWithSelector(DinTasks.RecoveryAlreadyPosted.selector, id, 0, ps[0]));
        vm.prank(ps[0]);
        tasks.postRecoverySeeds(id, 0, one(ps[1]), oneSeed(keccak256("s01")));
        assertTrue(!tasks.aggregatable(id, 0, 0), "one survivor still to post");
        vm.prank(ps[2]);
        tasks.postRecoverySeeds(id, 0, one(ps[1]), oneSeed(keccak256("s21")));
        assertTrue(tasks.aggregatable(id, 0, 0), "recovered");
        assertTrue(tasks.recoveryPosted(id, 0, ps[2]), "posted flag");
        (, uint256 submitted, uint256 posts) = tasks.maskStatus(id, 0, 0);
        assertEq(submitted, 2, "survivors");
        assertEq(posts, 2, "posts");

        voteSubgroup(id, 0, 0, "bafkagg0", address(0), address(0));
        warpTo(id, 0, DinTasks.Stage.GlobalCommit);
        rounds.finalizeSubgroup(id, 0, 0);
        (,, bool fin, bool acc) = rounds.tally(id, 0, 0);
        assertTrue(fin && acc, "accepted after recovery");
    }

    function test_tooFewSurvivors_refusedAndNobodySlashed() public {
        uint256 id = secaggTask();
        submit(id, list(0, 3, 4, 5)); // only one member of subgroup 0 submits
        warpTo(id, 0, DinTasks.Stage.AggregateCommit);
        address[] memory dropped = new address[](2);
        dropped[0] = ps[1];
        dropped[1] = ps[2];
        vm.expectRevert(abi.encodeWithSelector(DinTasks.TooFewSurvivors.selector, id, 0, 0, 1));
        vm.prank(ps[0]);
        tasks.postRecoverySeeds(id, 0, dropped, new bytes32[](2));
        assertTrue(!tasks.aggregatable(id, 0, 0), "never aggregatable");

        rounds.drawRoundSeed(id, 0);
        address[] memory evs = rounds.subgroupEvaluators(id, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.SubgroupNotAggregatable.selector, id, 0, 0));
        vm.prank(evs[0]);
        rounds.commitAggregate(id, 0, 0, keccak256("x"));
        uint256[] memory before = new uint256[](evs.length);
        for (uint256 i = 0; i < evs.length; i++) {
            before[i] = staking.stakeOf(evs[i]);
        }
        warpTo(id, 0, DinTasks.Stage.GlobalCommit);
        rounds.finalizeSubgroup(id, 0, 0);
        (,, bool fin, bool acc) = rounds.tally(id, 0, 0);
        assertTrue(fin && !acc, "closed, not accepted");
        for (uint256 i = 0; i < evs.length; i++) {
            assertEq(staking.stakeOf(evs[i]), before[i], "no-show excused: nothing to aggregate");
        }
    }

    function test_droppedListMustBeAscendingAndDistinct() public {
        DinTasks.TaskParams memory p = defaultParams();
        p.secureAggregation = true;
        p.subgroupSize = 4;
        vm.prank(owner);
        uint256 id = tasks.createTask(p, "bafkgenesis");
        for (uint256 i = 0; i < 4; i++) {
            vm.startPrank(ps[i]);
            tasks.register(id);
            tasks.setMaskKey(id, keyOf(ps[i]));
            vm.stopPrank();
        }
        warpTo(id, 0, DinTasks.Stage.Submit);
        submit(id, range(0, 2));
        warpTo(id, 0, DinTasks.Stage.AggregateCommit);
        address[] memory twice = new address[](2);
        twice[0] = ps[2];
        twice[1] = ps[2];
        vm.expectRevert(abi.encodeWithSelector(DinTasks.NotDropped.selector, id, 0, ps[2]));
        vm.prank(ps[0]);
        tasks.postRecoverySeeds(id, 0, twice, new bytes32[](2));
        address[] memory ok = new address[](2);
        ok[0] = ps[2];
        ok[1] = ps[3];
        vm.prank(ps[0]);
        tasks.postRecoverySeeds(id, 0, ok, new bytes32[](2));
        (,, uint256 posts) = tasks.maskStatus(id, 0, 0);
        assertEq(posts, 1, "complete post counted");
    }

    function test_recoveryRefusedInClearTasks() public {
        uint256 id = setUpTask(3);
        submitUpdates(id, 0, range(0, 1));
        warpTo(id, 0, DinTasks.Stage.AggregateCommit);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.NotSecureAggregation.selector, id));
        vm.prank(ps[0]);
        tasks.postRecoverySeeds(id, 0, one(ps[1]), oneSeed(keccak256("s")));
        assertTrue(tasks.aggregatable(id, 0, 0), "clear tasks are always aggregatable");
    }
}
