// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test, Vm} from "../utils/Test.sol";
import {LoyalToken} from "../../contracts/core/LoyalToken.sol";
import {Staking} from "../../contracts/core/Staking.sol";
import {DinTasks} from "../../contracts/din/DinTasks.sol";
import {DinRounds} from "../../contracts/din/DinRounds.sol";
import {DinScoring} from "../../contracts/din/DinScoring.sol";

/// @dev Deploys the DIN contracts on top of LoyalToken + Staking the way the deploy hook does,
/// funds an owner, participants and staked evaluators, and offers helpers to walk the schedule.
abstract contract DinBase is Test {
    LoyalToken token;
    Staking staking;
    DinTasks tasks;
    DinRounds rounds;
    DinScoring scoring;

    address admin = address(0xA11CE);
    address owner = address(0x0E);
    address[] ps; // participants
    address[] es; // evaluators

    uint256 constant REWARD = 1_000 ether;
    uint256 constant FEE = 10 ether;
    uint256 constant BOND = 1 ether;
    uint256 constant MIN_STAKE = 100 ether;
    uint256 constant SLASH = 30 ether;

    function setUp() public virtual {
        vm.warp(1_000_000);
        token = new LoyalToken(admin, 0);
        staking = new Staking(token, 7 days, admin);
        tasks = new DinTasks(token, admin);
        rounds = new DinRounds(tasks, staking);
        scoring = new DinScoring(tasks, rounds);
        vm.startPrank(admin);
        staking.grantRole(staking.MODULE_ROLE(), address(rounds));
        tasks.grantRole(tasks.PAYER_ROLE(), address(scoring));
        tasks.grantRole(tasks.CANCELLER_ROLE(), address(rounds));
        token.mint(owner, 1_000_000 ether);
        vm.stopPrank();
        vm.prank(owner);
        token.approve(address(tasks), type(uint256).max);
        for (uint256 i = 0; i < 20; i++) {
            address p = address(uint160(0x1000 + i));
            ps.push(p);
            vm.prank(admin);
            token.mint(p, 10 ether);
            vm.prank(p);
            token.approve(address(tasks), type(uint256).max);
        }
        for (uint256 i = 0; i < 4; i++) {
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

    function defaultParams() internal view returns (DinTasks.TaskParams memory p) {
        p.testSliceRoot = sliceRoot();
        p.reward = REWARD;
        p.evaluatorFee = FEE;
        p.participantBond = BOND;
        p.minEvaluatorStake = MIN_STAKE;
        p.slashAmount = SLASH;
        p.registrationEnd = uint64(block.timestamp + 100);
        p.submitDuration = 100;
        p.commitDuration = 50;
        p.revealDuration = 50;
        p.rounds = 2;
        p.subgroupSize = 3;
        p.evaluatorsPerSubgroup = 3;
        p.maxEvaluators = 4;
    }

    function createTask() internal returns (uint256 id) {
        vm.prank(owner);
        id = tasks.createTask(defaultParams(), "bafkgenesis");
    }

    function seedOf(address e) internal pure returns (bytes32) {
        return keccak256(abi.encode("seed", e));
    }

    /// @dev A task with `np` participants and all 4 evaluators enrolled, at round 0's Submit stage
    /// with every seed revealed.
    function setUpTask(uint256 np) internal returns (uint256 id) {
        id = createTask();
        for (uint256 i = 0; i < np; i++) {
            vm.prank(ps[i]);
            tasks.register(id);
        }
        enrolAndRevealSeeds(id);
    }

    /// @dev Every evaluator enrols with its seed commitment, then (at round 0's Submit stage) reveals it.
    function enrolAndRevealSeeds(uint256 id) internal {
        for (uint256 i = 0; i < es.length; i++) {
            vm.prank(es[i]);
            rounds.enrol(id, keccak256(abi.encode(id, es[i], seedOf(es[i]))));
        }
        warpTo(id, 0, DinTasks.Stage.Submit);
        for (uint256 i = 0; i < es.length; i++) {
            vm.prank(es[i]);
            rounds.revealSeed(id, seedOf(es[i]));
        }
    }

    /// @dev Participants ps[from..to) commit round-0 updates, reveal them in UpdateReveal; then the
    /// clock moves to AggregateCommit.
    function submitRound0(uint256 id, uint256 from, uint256 to) internal {
        submitUpdates(id, 0, range(from, to));
        warpTo(id, 0, DinTasks.Stage.AggregateCommit);
    }

    function range(uint256 from, uint256 to) internal pure returns (uint256[] memory xs) {
        xs = new uint256[](to - from);
        for (uint256 i = from; i < to; i++) {
            xs[i - from] = i;
        }
    }

    function updateSalt(address p) internal pure returns (bytes32) {
        return keccak256(abi.encode("update salt", p));
    }

    function updateCid(uint256 i) internal pure returns (string memory) {
        return string.concat("bafkupd", vm.toString(i));
    }

    function updateCommitment(uint256 id, uint256 round, address p, string memory cid)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(id, round, p, cid, updateSalt(p)));
    }

    function commitUpdate(uint256 id, uint256 round, uint256 i) internal {
        vm.prank(ps[i]);
        tasks.commitUpdate(id, round, updateCommitment(id, round, ps[i], updateCid(i)));
    }

    function revealUpdate(uint256 id, uint256 round, uint256 i) internal {
        vm.prank(ps[i]);
        tasks.revealUpdate(id, round, updateCid(i), updateSalt(ps[i]));
    }

    /// @dev In `round`'s Submit stage (the caller is there), ps[i] for each i in `who` commits to
    /// `updateCid(i)`; then the clock moves to UpdateReveal and they reveal.
    function submitUpdates(uint256 id, uint256 round, uint256[] memory who) internal {
        for (uint256 j = 0; j < who.length; j++) {
            commitUpdate(id, round, who[j]);
        }
        warpTo(id, round, DinTasks.Stage.UpdateReveal);
        for (uint256 j = 0; j < who.length; j++) {
            revealUpdate(id, round, who[j]);
        }
    }

    function warpTo(uint256 id, uint256 round, DinTasks.Stage stage) internal {
        (uint64 start,) = tasks.window(id, round, stage);
        vm.warp(start);
    }

    function aggCommitment(uint256 id, uint256 round, uint256 group, address e, string memory cid)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(id, round, group, e, cid, bytes32(uint256(uint160(e)))));
    }

    /// @dev Every assigned evaluator of `group` commits `cid` except those listed in `lazy`/`liars`.
    function voteSubgroup(uint256 id, uint256 round, uint256 group, string memory cid, address lazy, address liar)
        internal
    {
        address[] memory evs = rounds.subgroupEvaluators(id, round, group);
        warpTo(id, round, DinTasks.Stage.AggregateCommit);
        for (uint256 i = 0; i < evs.length; i++) {
            if (evs[i] == lazy) continue;
            string memory c = evs[i] == liar ? "bafkevil" : cid;
            vm.prank(evs[i]);
            rounds.commitAggregate(id, round, group, aggCommitment(id, round, group, evs[i], c));
        }
        warpTo(id, round, DinTasks.Stage.AggregateReveal);
        for (uint256 i = 0; i < evs.length; i++) {
            if (evs[i] == lazy) continue;
            string memory c = evs[i] == liar ? "bafkevil" : cid;
            vm.prank(evs[i]);
            rounds.revealAggregate(id, round, group, c, bytes32(uint256(uint160(evs[i]))));
        }
    }

    // ------------------------------------------------------------------ test slices (2 rounds)

    function sliceHash(uint256 round) internal pure returns (bytes32) {
        return keccak256(abi.encode("test slice", round));
    }

    function leafOf(uint256 round) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(round, sliceHash(round)))));
    }

    /// @dev OpenZeppelin StandardMerkleTree of the two leaves (round 0, round 1): the commutative
    /// hash of the pair; each leaf's proof is the other leaf.
    function sliceRoot() internal pure returns (bytes32) {
        (bytes32 a, bytes32 b) = (leafOf(0), leafOf(1));
        return a < b ? keccak256(abi.encode(a, b)) : keccak256(abi.encode(b, a));
    }

    function sliceProof(uint256 round) internal pure returns (bytes32[] memory proof) {
        proof = new bytes32[](1);
        proof[0] = leafOf(1 - round);
    }

    /// @dev The owner reveals round `round`'s slice (the caller is in its reveal window).
    function revealSlice(uint256 id, uint256 round) internal {
        vm.prank(owner);
        tasks.revealTestSlice(id, round, string.concat("bafkslice", vm.toString(round)), sliceHash(round), sliceProof(round));
    }

    // ------------------------------------------------------------------ scores

    function scoreCommitment(uint256 id, uint256 round, uint256 group, address e, uint32[] memory scores)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(id, round, group, e, scores, salt(e)));
    }

    /// @dev Each assigned evaluator of `group` in `round` commits (GlobalCommit) and reveals
    /// (GlobalReveal) `vectors[j]` (j = slot order of `subgroupEvaluators`); an empty vector = stays away.
    function scoreSubgroup(uint256 id, uint256 round, uint256 group, uint32[][] memory vectors) internal {
        address[] memory evs = rounds.subgroupEvaluators(id, round, group);
        warpTo(id, round, DinTasks.Stage.GlobalCommit);
        for (uint256 j = 0; j < evs.length; j++) {
            if (vectors[j].length == 0) continue;
            vm.prank(evs[j]);
            scoring.commitScores(id, round, group, scoreCommitment(id, round, group, evs[j], vectors[j]));
        }
        warpTo(id, round, DinTasks.Stage.GlobalReveal);
        for (uint256 j = 0; j < evs.length; j++) {
            if (vectors[j].length == 0) continue;
            vm.prank(evs[j]);
            scoring.revealScores(id, round, group, vectors[j], salt(evs[j]));
        }
    }

    function salt(address e) internal pure returns (bytes32) {
        return bytes32(uint256(uint160(e)));
    }

    function contains(address[] memory xs, address x) internal pure returns (bool) {
        for (uint256 i = 0; i < xs.length; i++) {
            if (xs[i] == x) return true;
        }
        return false;
    }
}
