// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {DinBase} from "./DinBase.sol";
import {DinTasks} from "../../contracts/din/DinTasks.sol";
import {DinRounds} from "../../contracts/din/DinRounds.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/// @dev Cancelling a task that never got enough participants or evaluators; deposit and bonds
/// come back by pull payments, each once.
contract DinCancelTest is DinBase {

    uint256 constant DEPOSIT = REWARD + FEE * 4;

    /// @dev `np` participants and `ne` evaluators, registration closed.
    function staleTask(uint256 np, uint256 ne) internal returns (uint256 id) {
        id = createTask();
        for (uint256 i = 0; i < np; i++) {
            vm.prank(ps[i]);
            tasks.register(id);
        }
        for (uint256 i = 0; i < ne; i++) {
            vm.prank(es[i]);
            rounds.enrol(id, keccak256(abi.encode(id, es[i], seedOf(es[i]))));
        }
        warpTo(id, 0, DinTasks.Stage.Submit);
    }

    function test_noParticipants_ownerReclaimsDepositOnce() public {
        uint256 id = staleTask(0, 4);
        uint256 before = token.balanceOf(owner);
        vm.expectEmit(true, false, false, true, address(tasks));
        emit DinTasks.TaskCancelled(id, 0, 4);
        rounds.cancelTask(id); // anyone may trigger it
        assertTrue(tasks.cancelled(id), "cancelled");
        vm.expectRevert(abi.encodeWithSelector(DinTasks.NotOwner.selector, id, ps[0]));
        vm.prank(ps[0]);
        tasks.reclaimDeposit(id);
        vm.expectEmit(true, true, false, true, address(tasks));
        emit DinTasks.DepositReclaimed(id, owner, DEPOSIT);
        vm.prank(owner);
        tasks.reclaimDeposit(id);
        assertEq(token.balanceOf(owner), before + DEPOSIT, "deposit back");
        assertEq(token.balanceOf(address(tasks)), 0, "nothing left in custody");
        vm.expectRevert(abi.encodeWithSelector(DinTasks.DepositAlreadyReclaimed.selector, id));
        vm.prank(owner);
        tasks.reclaimDeposit(id);
        vm.expectRevert(abi.encodeWithSelector(DinTasks.TaskIsCancelled.selector, id));
        rounds.cancelTask(id);
    }

    function test_tooFewEvaluators_bondsAndDepositComeBack() public {
        uint256 id = staleTask(5, 2); // k = 3 but only 2 evaluators enrolled: no round can run
        vm.expectRevert(abi.encodeWithSelector(DinTasks.NotCancelled.selector, id));
        vm.prank(owner);
        tasks.reclaimDeposit(id);
        rounds.cancelTask(id);
        // no update accepted, nothing payable through the scoring path
        vm.expectRevert(abi.encodeWithSelector(DinTasks.TaskIsCancelled.selector, id));
        vm.prank(ps[0]);
        tasks.commitUpdate(id, 0, keccak256("c"));
        vm.expectRevert(abi.encodeWithSelector(DinTasks.TaskIsCancelled.selector, id));
        vm.prank(address(scoring));
        tasks.pay(id, es[0], 1);
        for (uint256 i = 0; i < 5; i++) {
            uint256 b = token.balanceOf(ps[i]);
            vm.prank(ps[i]);
            tasks.withdrawBond(id); // immediately, no need to wait for the Settle stage
            assertEq(token.balanceOf(ps[i]), b + BOND, "bond back");
        }
        vm.expectRevert(abi.encodeWithSelector(DinTasks.BondAlreadyReturned.selector, id, ps[0]));
        vm.prank(ps[0]);
        tasks.withdrawBond(id);
        vm.prank(owner);
        tasks.reclaimDeposit(id);
        assertEq(token.balanceOf(address(tasks)), 0, "conservation: every token went back");
    }

    function test_cancel_refusedForHealthyTask() public {
        uint256 id = staleTask(3, 3);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.TaskHealthy.selector, id, 3, 3));
        rounds.cancelTask(id);
        assertTrue(!tasks.cancelled(id), "still running");
        commitUpdate(id, 0, 0);
    }

    function test_cancel_refusedWhileRegistrationOpen() public {
        uint256 id = createTask();
        uint64 end = tasks.params(id).registrationEnd;
        vm.expectRevert(abi.encodeWithSelector(DinRounds.RegistrationOpen.selector, id, end));
        rounds.cancelTask(id);
    }

    function test_cancel_onlyThroughRounds() public {
        uint256 id = staleTask(0, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, owner, tasks.CANCELLER_ROLE()
            )
        );
        vm.prank(owner);
        tasks.cancel(id, 0, 0);
    }

    function testFuzz_cancelIffStale(uint8 np, uint8 ne) public {
        np = uint8(bound(np, 0, 6));
        ne = uint8(bound(ne, 0, 4));
        uint256 id = staleTask(np, ne);
        bool stale = np == 0 || ne < 3;
        if (!stale) vm.expectRevert(abi.encodeWithSelector(DinRounds.TaskHealthy.selector, id, np, ne));
        rounds.cancelTask(id);
        assertTrue(tasks.cancelled(id) == stale, "cancelled iff stale");
    }
}
