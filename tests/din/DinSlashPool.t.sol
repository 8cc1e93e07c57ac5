// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Vm} from "../utils/Test.sol";
import {DinBase} from "./DinBase.sol";
import {DinTasks} from "../../contracts/din/DinTasks.sol";
import {DinRounds} from "../../contracts/din/DinRounds.sol";
import {LoyalToken} from "../../contracts/core/LoyalToken.sol";
import {Staking} from "../../contracts/core/Staking.sol";

/// @dev Shared set-up: a task where evaluator es[3] never shows up in round 0 (slashed for its
/// subgroup(s) and the global vote), everyone else honest.
abstract contract SlashPoolBase is DinBase {
    function globalVote(uint256 id, uint256 round, string memory cid, address lazy) internal {
        uint256 g = rounds.GLOBAL();
        warpTo(id, round, DinTasks.Stage.GlobalCommit);
        for (uint256 i = 0; i < es.length; i++) {
            if (es[i] == lazy) continue;
            vm.prank(es[i]);
            rounds.commitGlobal(id, round, aggCommitment(id, round, g, es[i], cid));
        }
        warpTo(id, round, DinTasks.Stage.GlobalReveal);
        for (uint256 i = 0; i < es.length; i++) {
            if (es[i] == lazy) continue;
            vm.prank(es[i]);
            rounds.revealGlobal(id, round, cid, salt(es[i]));
        }
    }

    /// @dev Round 0 played with `lazy` absent from every vote (address(0): nobody absent; use
    /// `globalLazyAll` to make every evaluator miss the global vote).
    function playRound0(uint256 id, address lazy, bool globalLazyAll) internal {
        submitRound0(id, 0, 6);
        vm.prevrandao(bytes32(uint256(7)));
        rounds.drawRoundSeed(id, 0);
        voteSubgroup(id, 0, 0, "bafkagg0", lazy, address(0));
        voteSubgroup(id, 0, 1, "bafkagg1", lazy, address(0));
        warpTo(id, 0, DinTasks.Stage.GlobalCommit);
        rounds.finalizeSubgroup(id, 0, 0);
        rounds.finalizeSubgroup(id, 0, 1);
        if (!globalLazyAll) globalVote(id, 0, "bafkglobal0", lazy);
        warpTo(id, 1, DinTasks.Stage.Submit);
        rounds.finalizeGlobal(id, 0);
        rounds.settleGlobalVotes(id, 0, 100);
    }

    function conserved() internal view returns (bool) {
        return token.balanceOf(address(staking))
            == staking.totalActive() + staking.totalUnbonding() + staking.slashedBalance(address(rounds));
    }
}

contract DinSlashPoolTest is SlashPoolBase {

    function test_pool_sharedAmongHonestEvaluatorsOnce() public {
        uint256 id = setUpTask(6);
        playRound0(id, es[3], false);
        uint256 pool = rounds.slashPool(id);
        assertTrue(pool >= 2 * SLASH, "lazy slashed for a subgroup and the global vote");
        assertEq(pool, MIN_STAKE - staking.stakeOf(es[3]), "pool = what es[3] lost");
        assertTrue(rounds.isOffender(id, es[3]) && rounds.offenders(id) == 1, "one offender");

        (uint64 settle,) = tasks.window(id, 0, DinTasks.Stage.Settle);
        vm.expectRevert(
            abi.encodeWithSelector(
                DinRounds.OutsideWindow.selector, id, 0, DinTasks.Stage.Settle, settle, type(uint64).max
            )
        );
        vm.prank(es[0]);
        rounds.claimSlashShare(id);

        warpTo(id, 0, DinTasks.Stage.Settle);
        uint256 share = pool / 3;
        for (uint256 i = 0; i < 3; i++) {
            assertEq(rounds.slashShareOf(id, es[i]), share, "share");
            uint256 b = token.balanceOf(es[i]);
            vm.expectEmit(true, true, false, true, address(rounds));
            emit DinRounds.SlashShareClaimed(id, es[i], share);
            vm.prank(es[i]);
            rounds.claimSlashShare(id);
            assertEq(token.balanceOf(es[i]), b + share, "paid");
        }
        vm.expectRevert(abi.encodeWithSelector(DinRounds.SlashShareAlreadyClaimed.selector, id, es[0]));
        vm.prank(es[0]);
        rounds.claimSlashShare(id);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.NotEligibleForSlashShare.selector, id, es[3]));
        vm.prank(es[3]);
        rounds.claimSlashShare(id);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.NotEligibleForSlashShare.selector, id, owner));
        vm.prank(owner);
        rounds.claimSlashShare(id);
        assertEq(staking.slashedBalance(address(rounds)), pool - 3 * share, "only dust stays");
        assertTrue(conserved(), "token conservation in Staking");
    }

    function test_slashingClosesWhenSettleOpens() public {
        uint256 id = setUpTask(6);
        playRound0(id, es[3], false);
        uint256 pool = rounds.slashPool(id);
        // round 1: seed drawn, nobody votes; the subgroups are only finalized once Settle is open
        warpTo(id, 1, DinTasks.Stage.AggregateCommit);
        rounds.drawRoundSeed(id, 1);
        warpTo(id, 0, DinTasks.Stage.Settle);
        uint256 stake0 = staking.stakeOf(es[0]);
        rounds.finalizeSubgroup(id, 1, 0);
        rounds.finalizeSubgroup(id, 1, 1);
        rounds.finalizeGlobal(id, 1);
        rounds.settleGlobalVotes(id, 1, 100);
        assertEq(rounds.slashPool(id), pool, "pool final at Settle");
        assertEq(staking.stakeOf(es[0]), stake0, "no late slash");
        assertEq(rounds.offenders(id), 1, "no late offender");
    }

    function test_everyEvaluatorAtFault_ownerGetsPool() public {
        uint256 id = setUpTask(6);
        playRound0(id, address(0), true); // every evaluator misses the global vote
        assertEq(rounds.offenders(id), 4, "all at fault");
        uint256 pool = rounds.slashPool(id);
        assertEq(pool, 4 * SLASH, "one slash each");
        warpTo(id, 0, DinTasks.Stage.Settle);
        vm.expectRevert(abi.encodeWithSelector(DinRounds.NotEligibleForSlashShare.selector, id, es[0]));
        vm.prank(es[0]);
        rounds.claimSlashShare(id);
        uint256 b = token.balanceOf(owner);
        vm.prank(owner);
        rounds.claimSlashShare(id);
        assertEq(token.balanceOf(owner), b + pool, "owner takes the pool");
        assertEq(staking.slashedBalance(address(rounds)), 0, "nothing left");
        assertTrue(conserved(), "conservation");
    }

    function test_pools_areKeptPerTask() public {
        uint256 a = setUpTask(6);
        playRound0(a, es[3], false);
        // a second task: nobody slashed; its evaluators cannot tap the first task's pool
        vm.prank(owner);
        uint256 b = tasks.createTask(defaultParams(), "bafkgenesis2");
        warpTo(a, 0, DinTasks.Stage.Settle);
        warpTo(b, 0, DinTasks.Stage.Settle);
        assertEq(rounds.slashPool(b), 0, "empty pool");
        vm.expectRevert(abi.encodeWithSelector(DinRounds.NotEligibleForSlashShare.selector, b, es[0]));
        vm.prank(es[0]);
        rounds.claimSlashShare(b);
    }
}

contract SlashPoolHandler {
    Vm constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    DinRounds public rounds;
    LoyalToken public token;
    uint256 public id;
    address[] public actors;
    mapping(address => uint256) public claims;
    mapping(address => uint256) public received;
    uint256 public maxClaims;
    uint256 public totalPaid;

    constructor(DinRounds r, LoyalToken t, uint256 taskId, address[] memory actors_) {
        rounds = r;
        token = t;
        id = taskId;
        actors = actors_;
    }

    function claim(uint256 who) external {
        address a = actors[who % actors.length];
        uint256 before = token.balanceOf(a);
        vm.prank(a);
        (bool ok,) = address(rounds).call(abi.encodeCall(DinRounds.claimSlashShare, (id)));
        if (!ok) return;
        uint256 c = ++claims[a];
        if (c > maxClaims) maxClaims = c;
        uint256 got = token.balanceOf(a) - before;
        received[a] += got;
        totalPaid += got;
    }
}

contract DinSlashPoolInvariantTest is SlashPoolBase {
    SlashPoolHandler handler;
    uint256 id;
    uint256 pool;

    function setUp() public override {
        super.setUp();
        id = setUpTask(6);
        playRound0(id, es[3], false);
        pool = rounds.slashPool(id);
        warpTo(id, 0, DinTasks.Stage.Settle);
        address[] memory actors = new address[](6);
        for (uint256 e = 0; e < 4; e++) {
            actors[e] = es[e];
        }
        actors[4] = owner;
        actors[5] = ps[0];
        handler = new SlashPoolHandler(rounds, token, id, actors);
        targetContract(address(handler));
    }

    function test_handler_reachesClaims() public {
        for (uint256 i = 0; i < 12; i++) {
            handler.claim(i);
        }
        assertEq(handler.maxClaims(), 1, "claims happened, once each");
        assertEq(handler.totalPaid(), (pool / 3) * 3, "the three honest evaluators paid");
    }

    function invariant_paidAtMostPoolOnceEach() public view {
        assertLe(handler.totalPaid(), pool, "paid <= pool");
        assertLe(handler.maxClaims(), 1, "nobody paid twice");
        assertEq(handler.received(es[3]), 0, "offender gets nothing");
        assertEq(staking.slashedBalance(address(rounds)), pool - handler.totalPaid(), "module balance");
        assertTrue(conserved(), "Staking holds exactly stake + unpaid slashes");
    }
}
