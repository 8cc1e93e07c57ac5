// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {DinBase} from "./DinBase.sol";
import {DinTasks} from "../../contracts/din/DinTasks.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract DinTasksTest is DinBase {

    function test_create_pullsDepositAndRecords() public {
        uint256 before = token.balanceOf(owner);
        uint256 id = createTask();
        uint256 deposit = REWARD + FEE * 4;
        assertEq(token.balanceOf(owner), before - deposit, "owner paid");
        assertEq(token.balanceOf(address(tasks)), deposit, "held");
        (address o, uint256 d, uint256 paid, uint32 n, bytes32 g) = tasks.taskInfo(id);
        assertEq(o, owner, "owner");
        assertEq(d, deposit, "deposit");
        assertEq(paid, 0, "paid");
        assertEq(n, 0, "participants");
        assertEq(g, keccak256("bafkgenesis"), "genesis");
        assertEq(tasks.params(id).testSliceRoot, sliceRoot(), "test slice root");
        assertEq(tasks.taskCount(), 1, "count");
    }

    function test_create_invalidParamsRevert() public {
        DinTasks.TaskParams memory p = defaultParams();
        p.rounds = 0;
        vm.expectRevert(abi.encodeWithSelector(DinTasks.InvalidParams.selector, "rounds"));
        vm.prank(owner);
        tasks.createTask(p, "c");

        p = defaultParams();
        p.evaluatorsPerSubgroup = 5; // > maxEvaluators
        vm.expectRevert(abi.encodeWithSelector(DinTasks.InvalidParams.selector, "evaluatorsPerSubgroup"));
        vm.prank(owner);
        tasks.createTask(p, "c");

        p = defaultParams();
        p.maxEvaluators = 0;
        vm.expectRevert(abi.encodeWithSelector(DinTasks.InvalidParams.selector, "maxEvaluators"));
        vm.prank(owner);
        tasks.createTask(p, "c");

        // any number of evaluators per task, but at most 32 per subgroup (per-subgroup loops)
        p = defaultParams();
        p.maxEvaluators = 1000;
        p.evaluatorsPerSubgroup = 33;
        vm.expectRevert(abi.encodeWithSelector(DinTasks.InvalidParams.selector, "evaluatorsPerSubgroup"));
        vm.prank(owner);
        tasks.createTask(p, "c");

        p = defaultParams();
        p.subgroupSize = 129;
        vm.expectRevert(abi.encodeWithSelector(DinTasks.InvalidParams.selector, "subgroupSize"));
        vm.prank(owner);
        tasks.createTask(p, "c");

        p = defaultParams();
        p.registrationEnd = uint64(block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.InvalidParams.selector, "registrationEnd"));
        vm.prank(owner);
        tasks.createTask(p, "c");

        p = defaultParams();
        p.subgroupSize = 0;
        vm.expectRevert(abi.encodeWithSelector(DinTasks.InvalidParams.selector, "subgroupSize"));
        vm.prank(owner);
        tasks.createTask(p, "c");

        p = defaultParams();
        vm.expectRevert(DinTasks.EmptyCid.selector);
        vm.prank(owner);
        tasks.createTask(p, "");
        assertEq(tasks.taskCount(), 0, "nothing created");
    }

    function test_unknownTaskReverts() public {
        vm.expectRevert(abi.encodeWithSelector(DinTasks.UnknownTask.selector, 7));
        tasks.params(7);
    }

    function test_register_pullsBondAndAssignsSubgroup() public {
        uint256 id = createTask();
        for (uint256 i = 0; i < 3; i++) {
            vm.prank(ps[i]);
            tasks.register(id);
        }
        vm.expectEmit(true, true, false, true, address(tasks));
        emit DinTasks.ParticipantRegistered(id, ps[3], 3, 1);
        vm.prank(ps[3]);
        tasks.register(id);
        assertEq(tasks.participantCount(id), 4, "count");
        assertEq(tasks.subgroupCount(id), 2, "groups of 3");
        assertEq(tasks.participantIndex(id, ps[3]), 3, "index");
        assertEq(token.balanceOf(ps[0]), 9 ether, "bond pulled");
    }

    function test_register_twiceReverts() public {
        uint256 id = createTask();
        vm.startPrank(ps[0]);
        tasks.register(id);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.AlreadyRegistered.selector, id, ps[0]));
        tasks.register(id);
        vm.stopPrank();
    }

    function test_register_afterCloseReverts() public {
        uint256 id = createTask();
        uint64 end = tasks.params(id).registrationEnd;
        vm.warp(end);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.RegistrationClosed.selector, id, end));
        vm.prank(ps[0]);
        tasks.register(id);
    }

    function test_window_schedule() public {
        uint256 id = createTask();
        uint64 r0 = tasks.params(id).registrationEnd;
        (uint64 s, uint64 e) = tasks.window(id, 0, DinTasks.Stage.Submit);
        assertEq(s, r0, "round 0 submit start");
        assertEq(e, r0 + 100, "submit end");
        (s, e) = tasks.window(id, 0, DinTasks.Stage.UpdateReveal);
        assertEq(s, r0 + 100, "update reveal right after submit");
        assertEq(e, r0 + 150, "update reveal end");
        (s, e) = tasks.window(id, 1, DinTasks.Stage.GlobalReveal);
        // round length = 100 + 2 * 50 + 3 * 50 = 350; global reveal starts 100 + 50 * 4 in
        assertEq(s, r0 + 350 + 300, "round 1 global reveal start");
        assertEq(e, r0 + 700, "round 1 end");
        (s, e) = tasks.window(id, 0, DinTasks.Stage.Close);
        assertEq(s, r0 + 700, "close right after the last round");
        assertEq(e, r0 + 750, "close lasts a commit stage");
        (s, e) = tasks.window(id, 0, DinTasks.Stage.Settle);
        assertEq(s, r0 + 750, "settle start");
        assertEq(e, type(uint64).max, "settle open-ended");
    }

    function test_commitReveal_recordsOncePerRoundInOrder() public {
        uint256 id = setUpTask(4);
        vm.expectEmit(true, true, true, true, address(tasks));
        emit DinTasks.UpdateCommitted(id, 0, ps[3], 1);
        commitUpdate(id, 0, 3);
        vm.expectEmit(true, true, true, true, address(tasks));
        emit DinTasks.UpdateCommitted(id, 0, ps[0], 0);
        commitUpdate(id, 0, 0);
        assertEq(tasks.updateCommitment(id, 0, ps[3]), updateCommitment(id, 0, ps[3], updateCid(3)), "stored");
        assertTrue(!tasks.updateRevealed(id, 0, ps[3]), "nothing public before the reveal");
        vm.expectRevert(abi.encodeWithSelector(DinTasks.UpdateAlreadyCommitted.selector, id, 0, ps[3]));
        vm.prank(ps[3]);
        tasks.commitUpdate(id, 0, keccak256("second thoughts"));
        warpTo(id, 0, DinTasks.Stage.UpdateReveal);
        vm.expectEmit(true, true, true, true, address(tasks));
        emit DinTasks.UpdateRevealed(id, 0, ps[3], 1, updateCid(3));
        revealUpdate(id, 0, 3);
        assertTrue(tasks.updateRevealed(id, 0, ps[3]), "revealed (the CID is in the event)");
        assertEq(tasks.updateCommitment(id, 0, ps[3]), tasks.REVEALED(), "one storage word: now the marker");
        (, uint256 submitted,) = tasks.maskStatus(id, 0, 1);
        assertEq(submitted, 1, "counted at the reveal");
        vm.expectRevert(abi.encodeWithSelector(DinTasks.UpdateAlreadyRevealed.selector, id, 0, ps[3]));
        revealUpdate(id, 0, 3);
    }

    function test_commit_refusals() public {
        uint256 id = setUpTask(2);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.NotParticipant.selector, id, ps[5]));
        vm.prank(ps[5]);
        tasks.commitUpdate(id, 0, keccak256("c"));
        vm.expectRevert(abi.encodeWithSelector(DinTasks.RoundOutOfRange.selector, id, 2, 2));
        vm.prank(ps[0]);
        tasks.commitUpdate(id, 2, keccak256("c"));
        vm.expectRevert(abi.encodeWithSelector(DinTasks.InvalidCommitment.selector, bytes32(0)));
        vm.prank(ps[0]);
        tasks.commitUpdate(id, 0, bytes32(0));
        // committing the "revealed" marker would pass for a reveal that never happened (and, with
        // secure aggregation, block the recovery of a dropout)
        bytes32 marker = tasks.REVEALED();
        vm.expectRevert(abi.encodeWithSelector(DinTasks.InvalidCommitment.selector, marker));
        vm.prank(ps[0]);
        tasks.commitUpdate(id, 0, marker);
        (uint64 s, uint64 e) = tasks.window(id, 1, DinTasks.Stage.Submit);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.OutsideWindow.selector, id, 1, DinTasks.Stage.Submit, s, e));
        vm.prank(ps[0]);
        tasks.commitUpdate(id, 1, keccak256("c"));
        // a commitment after the Submit stage (e.g. one made after seeing revealed CIDs) is refused
        warpTo(id, 0, DinTasks.Stage.UpdateReveal);
        (s, e) = tasks.window(id, 0, DinTasks.Stage.Submit);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.OutsideWindow.selector, id, 0, DinTasks.Stage.Submit, s, e));
        vm.prank(ps[0]);
        tasks.commitUpdate(id, 0, keccak256("c"));
    }

    /// @dev Adversary: a participant that reveals what it did not commit to (another CID, another
    /// salt, or another participant's CID and salt replayed), reveals early, late, or not at all.
    function test_reveal_refusals() public {
        uint256 id = setUpTask(3);
        commitUpdate(id, 0, 0);
        commitUpdate(id, 0, 1);
        // before the Submit stage closes nothing can be revealed, so nothing can be copied
        (uint64 s, uint64 e) = tasks.window(id, 0, DinTasks.Stage.UpdateReveal);
        vm.expectRevert(
            abi.encodeWithSelector(DinTasks.OutsideWindow.selector, id, 0, DinTasks.Stage.UpdateReveal, s, e)
        );
        revealUpdate(id, 0, 0);
        vm.warp(s);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.UpdateNotCommitted.selector, id, 0, ps[2]));
        revealUpdate(id, 0, 2);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.UpdateCommitmentMismatch.selector, id, 0, ps[0]));
        vm.prank(ps[0]);
        tasks.revealUpdate(id, 0, "bafkanother", updateSalt(ps[0]));
        vm.expectRevert(abi.encodeWithSelector(DinTasks.UpdateCommitmentMismatch.selector, id, 0, ps[0]));
        vm.prank(ps[0]);
        tasks.revealUpdate(id, 0, updateCid(0), keccak256("wrong salt"));
        // ps[1] replays ps[0]'s reveal (its CID and salt): the commitment binds the participant
        revealUpdate(id, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.UpdateCommitmentMismatch.selector, id, 0, ps[1]));
        vm.prank(ps[1]);
        tasks.revealUpdate(id, 0, updateCid(0), updateSalt(ps[0]));
        vm.expectRevert(DinTasks.EmptyCid.selector);
        vm.prank(ps[1]);
        tasks.revealUpdate(id, 0, "", updateSalt(ps[1]));
        // a late reveal is refused: ps[1]'s commitment counts as no submission
        vm.warp(e);
        vm.expectRevert(
            abi.encodeWithSelector(DinTasks.OutsideWindow.selector, id, 0, DinTasks.Stage.UpdateReveal, s, e)
        );
        revealUpdate(id, 0, 1);
        assertTrue(!tasks.updateRevealed(id, 0, ps[1]), "no submission");
        (, uint256 submitted,) = tasks.maskStatus(id, 0, 0);
        assertEq(submitted, 1, "only the matching, timely reveal counts");
        assertTrue(tasks.aggregatable(id, 0, 0), "subgroup aggregatable with ps[0]'s update");
    }

    function test_pay_onlyPayerAndCappedAtDeposit() public {
        uint256 id = createTask();
        bytes32 role = tasks.PAYER_ROLE();
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, owner, role));
        vm.prank(owner);
        tasks.pay(id, owner, 1);
        uint256 deposit = REWARD + FEE * 4;
        vm.startPrank(address(scoring));
        tasks.pay(id, ps[0], deposit - 1);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.PayoutExceedsDeposit.selector, id, 2, 1));
        tasks.pay(id, ps[0], 2);
        vm.stopPrank();
        assertEq(token.balanceOf(ps[0]), 10 ether + deposit - 1, "paid");
    }

    function test_withdrawBond_onceAfterScoring() public {
        uint256 id = setUpTask(2);
        (uint64 s, uint64 e) = tasks.window(id, 0, DinTasks.Stage.Settle);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.OutsideWindow.selector, id, 0, DinTasks.Stage.Settle, s, e));
        vm.prank(ps[0]);
        tasks.withdrawBond(id);
        vm.warp(s);
        vm.prank(ps[0]);
        tasks.withdrawBond(id);
        assertEq(token.balanceOf(ps[0]), 10 ether, "bond back");
        vm.expectRevert(abi.encodeWithSelector(DinTasks.BondAlreadyReturned.selector, id, ps[0]));
        vm.prank(ps[0]);
        tasks.withdrawBond(id);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.NotParticipant.selector, id, ps[6]));
        vm.prank(ps[6]);
        tasks.withdrawBond(id);
    }

    /// @dev Adversary: an owner (or anyone) revealing a slice early, for the wrong round, with a
    /// forged hash or proof, twice, or late.
    function test_revealTestSlice_onlyOwnerInWindowAgainstTheRoot() public {
        uint256 id = setUpTask(2);
        (uint64 s, uint64 e) = tasks.sliceWindow(id, 0);
        (uint64 ac,) = tasks.window(id, 0, DinTasks.Stage.AggregateCommit);
        (, uint64 ar) = tasks.window(id, 0, DinTasks.Stage.AggregateReveal);
        assertEq(s, ac, "opens after the round's update reveals");
        assertEq(e, ar, "closes before scoring");
        bytes32[] memory proof = sliceProof(0);
        // during Submit / UpdateReveal the slice stays hidden: participants cannot fit it
        vm.expectRevert(
            abi.encodeWithSelector(DinTasks.OutsideWindow.selector, id, 0, DinTasks.Stage.AggregateCommit, s, e)
        );
        revealSlice(id, 0);
        vm.warp(s);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.NotOwner.selector, id, ps[0]));
        vm.prank(ps[0]);
        tasks.revealTestSlice(id, 0, "bafkslice0", sliceHash(0), proof);
        // a different slice, round 1's slice as round 0's, a wrong proof: all refused by the root
        vm.expectRevert(abi.encodeWithSelector(DinTasks.InvalidSliceProof.selector, id, 0, keccak256("easy")));
        vm.prank(owner);
        tasks.revealTestSlice(id, 0, "bafkeasy", keccak256("easy"), proof);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.InvalidSliceProof.selector, id, 0, sliceHash(1)));
        vm.prank(owner);
        tasks.revealTestSlice(id, 0, "bafkslice1", sliceHash(1), sliceProof(1));
        vm.expectRevert(abi.encodeWithSelector(DinTasks.InvalidSliceProof.selector, id, 0, sliceHash(0)));
        vm.prank(owner);
        tasks.revealTestSlice(id, 0, "bafkslice0", sliceHash(0), new bytes32[](0));
        vm.expectRevert(abi.encodeWithSelector(DinTasks.InvalidSliceProof.selector, id, 0, bytes32(0)));
        vm.prank(owner);
        tasks.revealTestSlice(id, 0, "bafkslice0", bytes32(0), proof);
        vm.expectRevert(DinTasks.EmptyCid.selector);
        vm.prank(owner);
        tasks.revealTestSlice(id, 0, "", sliceHash(0), proof);
        vm.expectEmit(true, true, false, true, address(tasks));
        emit DinTasks.TestSliceRevealed(id, 0, sliceHash(0), "bafkslice0");
        revealSlice(id, 0);
        assertEq(tasks.testSlice(id, 0), sliceHash(0), "recorded");
        vm.expectRevert(abi.encodeWithSelector(DinTasks.SliceAlreadyRevealed.selector, id, 0));
        revealSlice(id, 0);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.RoundOutOfRange.selector, id, 2, 2));
        vm.prank(owner);
        tasks.revealTestSlice(id, 2, "bafkslice2", sliceHash(0), proof);
        // round 1's slice not revealed by the end of its window: withheld (a late reveal is refused)
        assertTrue(!tasks.sliceWithheld(id, 0) && !tasks.sliceWithheld(id, 1), "nothing withheld yet");
        (s, e) = tasks.sliceWindow(id, 1);
        vm.warp(e);
        assertTrue(tasks.sliceWithheld(id, 1) && !tasks.sliceWithheld(id, 0), "round 1 withheld");
        vm.expectRevert(
            abi.encodeWithSelector(DinTasks.OutsideWindow.selector, id, 1, DinTasks.Stage.AggregateCommit, s, e)
        );
        revealSlice(id, 1);
    }

    function test_endAfterRound_ownerBeforeTheNextRound_shiftsCloseAndSettle() public {
        uint256 id = setUpTask(3);
        uint64 r0 = tasks.params(id).registrationEnd;
        vm.expectRevert(abi.encodeWithSelector(DinTasks.NotOwner.selector, id, ps[0]));
        vm.prank(ps[0]);
        tasks.endAfterRound(id, 0);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.RoundOutOfRange.selector, id, 2, 2));
        vm.prank(owner);
        tasks.endAfterRound(id, 1); // round 1 is already the last
        vm.expectEmit(true, false, false, true, address(tasks));
        emit DinTasks.TaskEndedEarly(id, 1);
        vm.prank(owner);
        tasks.endAfterRound(id, 0);
        assertEq(tasks.roundsHeld(id), 1, "one round held");
        assertEq(tasks.params(id).rounds, 2, "the plan stays on record");
        (uint64 s, uint64 e) = tasks.window(id, 0, DinTasks.Stage.Close);
        assertEq(s, r0 + 350, "close right after round 0");
        assertEq(e, r0 + 400, "close end");
        (s,) = tasks.window(id, 0, DinTasks.Stage.Settle);
        assertEq(s, r0 + 400, "settle after close");
        vm.expectRevert(abi.encodeWithSelector(DinTasks.RoundOutOfRange.selector, id, 1, 1));
        vm.prank(owner);
        tasks.endAfterRound(id, 0);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.RoundOutOfRange.selector, id, 1, 1));
        vm.prank(ps[0]);
        tasks.commitUpdate(id, 1, keccak256("c"));
    }

    function test_endAfterRound_refusedOnceTheNextRoundStarted() public {
        uint256 id = setUpTask(3);
        (uint64 start,) = tasks.window(id, 1, DinTasks.Stage.Submit);
        vm.warp(start);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.RoundAlreadyStarted.selector, id, 1, start));
        vm.prank(owner);
        tasks.endAfterRound(id, 0);
        assertEq(tasks.roundsHeld(id), 2, "unchanged");
    }
}
