// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {DinTasks} from "./DinTasks.sol";
import {Staking} from "../core/Staking.sol";
import {Roster} from "./Roster.sol";

/// @title DinRounds
/// @notice Evaluators of DIN tasks: enrolment against stake, random assignment to subgroups each
/// round, commit-reveal of subgroup aggregate CIDs and of the round's global model CID, majority
/// acceptance, and slashing of dissenters and no-shows.
/// @dev Randomness: every evaluator commits to a secret seed when enrolling and reveals it during
/// round 0's Submit stage; the task seed folds the revealed seeds. Each round's seed is
/// keccak(taskSeed, block.prevrandao, taskId, round), fixed by the first `drawRoundSeed` call in
/// that round's AggregateCommit stage. Trust assumption: the last seed revealer sees the others'
/// seeds and may withhold its own (one bit of bias, paid for by the seed no-show slash), and the
/// proposer of the block that draws a round seed (or the caller, by choosing the block) can pick
/// among a few prevrandao values. So a coalition can bias which subgroup an evaluator lands in,
/// but cannot forge a majority in a subgroup without controlling most of that subgroup's
/// evaluators; the assignment is a shuffle, so each evaluator still lands in some subgroup.
///
/// Roster: the evaluators eligible in a round (`Roster`). An evaluator found at fault (slashed or
/// slashable: a no-show or a dissenter in any vote, a seed no-show) is barred from every round
/// whose seed is drawn after that (`barredFrom`): it is not assigned, cannot vote on the global
/// model and cannot score. The roster of a round is fixed when its seed is drawn (`rosterSize`).
///
/// Assignment: the evaluator at roster position q sits at position shuffle(q) of a swap-or-not
/// permutation (the Ethereum beacon chain's `compute_shuffled_index`, SHUFFLE_ROUNDS rounds) of
/// the round's E eligible evaluators. The round has G * k slots (G subgroups, k evaluators each);
/// slot s belongs to the evaluator at permutation position s % E, and to subgroup s / k. Needs
/// E >= k, so a subgroup's k evaluators are distinct. No loop ever runs over all evaluators to
/// assign: every lookup is O(1) shuffles.
///
/// Global model: every evaluator of the round's roster commits and reveals the CID of the round's
/// global model (the deterministic combination of the accepted subgroup aggregates, recomputable
/// off-chain), and it is accepted with more than half of them agreeing (`finalizeGlobal`, O(1));
/// no-shows and dissenters are then slashed page by page (`settleGlobalVotes`), so no transaction
/// loops over more than the caller's page. A round without an accepted global model leaves the
/// previous global model current. Any number of evaluators may enrol (up to the task's
/// `maxEvaluators`); per-subgroup loops are bounded by k <= DinTasks.MAX_EVALUATORS_PER_SUBGROUP.
///
/// Slashed stake: what this contract slashes for a task forms that task's slash pool (held in
/// Staking, credited to this module). Slashing closes when the task's Settle stage opens (a
/// finalization after that still closes the vote but slashes nobody), so the pool is final when
/// it is shared: from the Settle stage on, each enrolled evaluator never slashed in the task
/// (never found at fault: no no-show, no dissent) claims `pool / honest` once (pull payment through `Staking.payOutSlashed`); if every evaluator
/// was slashed, the task owner claims the pool. Rounding dust (< honest wei) stays in Staking.
contract DinRounds {
    using Roster for Roster.Data;

    /// @notice Subgroup key under which global-model votes are kept.
    uint256 public constant GLOBAL = type(uint256).max;
    /// @notice Rounds of the swap-or-not shuffle.
    uint256 public constant SHUFFLE_ROUNDS = 10;

    struct Vote {
        bytes32 commitment;
        bytes32 revealed; // keccak256 of the revealed CID
    }

    struct Tally {
        bytes32 bestHash;
        uint32 bestVotes;
        bool finalized;
        bool accepted;
    }

    struct RoundState {
        bytes32 seed;
        uint32 finalizedGroups;
        uint32 acceptedGroups;
        uint32 roster; // evaluators eligible in the round (fixed when its seed is drawn)
        uint32 globalSettled; // roster positions whose global vote has been settled
    }

    DinTasks public immutable tasks;
    Staking public immutable staking;

    mapping(uint256 taskId => address[]) private _evaluators;
    /// @dev evaluator => enrolment index + 1
    mapping(uint256 taskId => mapping(address => uint256)) private _evaluatorSlot;
    mapping(uint256 taskId => Roster.Data) private _rosters;
    /// @notice One more than the first round an evaluator is barred from (0 = not barred).
    mapping(uint256 taskId => mapping(address => uint256)) public barredFrom;
    mapping(uint256 taskId => mapping(address => bytes32)) public seedCommitment;
    mapping(uint256 taskId => mapping(address => bool)) public seedRevealed;
    mapping(uint256 taskId => mapping(address => bool)) public seedNoShowSettled;
    mapping(uint256 taskId => bytes32) public taskSeed;
    mapping(uint256 taskId => mapping(uint256 round => RoundState)) private _rounds;
    mapping(uint256 taskId => mapping(uint256 round => mapping(uint256 group => mapping(address => Vote)))) private
        _votes;
    mapping(uint256 taskId => mapping(uint256 round => mapping(uint256 group => mapping(bytes32 => uint256)))) private
        _counts;
    mapping(uint256 taskId => mapping(uint256 round => mapping(uint256 group => Tally))) private _tallies;
    /// @notice Stake slashed from the task's evaluators (its slash pool).
    mapping(uint256 taskId => uint256) public slashPool;
    /// @notice Number of distinct evaluators found at fault in the task (no-show or dissent).
    mapping(uint256 taskId => uint256) public offenders;
    /// @notice Whether `evaluator` was found at fault in the task (slashed, or would have been had
    /// it any stake left).
    mapping(uint256 taskId => mapping(address => bool)) public isOffender;
    /// @notice Whether `account` claimed its slash-pool share of the task.
    mapping(uint256 taskId => mapping(address => bool)) public slashShareClaimed;

    event EvaluatorEnrolled(uint256 indexed taskId, address indexed evaluator, uint256 index);
    event SeedRevealed(uint256 indexed taskId, address indexed evaluator, bytes32 taskSeed);
    event RoundSeedDrawn(uint256 indexed taskId, uint256 indexed round, bytes32 seed);
    event VoteCommitted(uint256 indexed taskId, uint256 indexed round, uint256 group, address indexed evaluator);
    event AggregateRevealed(
        uint256 indexed taskId, uint256 indexed round, uint256 group, address indexed evaluator, string cid
    );
    event GlobalRevealed(uint256 indexed taskId, uint256 indexed round, address indexed evaluator, string cid);
    event SubgroupFinalized(
        uint256 indexed taskId, uint256 indexed round, uint256 group, bytes32 cidHash, uint256 votes, bool accepted
    );
    event GlobalFinalized(uint256 indexed taskId, uint256 indexed round, bytes32 cidHash, uint256 votes, bool accepted);
    event EvaluatorSlashed(
        uint256 indexed taskId, uint256 indexed round, address indexed evaluator, uint256 amount, string reason
    );
    event SlashShareClaimed(uint256 indexed taskId, address indexed account, uint256 amount);
    event EvaluatorBarred(uint256 indexed taskId, address indexed evaluator, uint256 fromRound);
    event GlobalVotesSettled(uint256 indexed taskId, uint256 indexed round, uint256 from, uint256 to);

    error NotEnrolled(uint256 taskId, address account);
    error AlreadyEnrolled(uint256 taskId, address evaluator);
    error EnrolmentClosed(uint256 taskId);
    error TooManyEvaluators(uint256 taskId, uint16 maxEvaluators);
    error StakeTooLow(address evaluator, uint256 stake, uint256 required);
    error ZeroCommitment();
    error SeedAlreadyRevealed(uint256 taskId, address evaluator);
    error SeedMismatch(uint256 taskId, address evaluator);
    error SeedWasRevealed(uint256 taskId, address evaluator);
    error SeedNoShowAlreadySettled(uint256 taskId, address evaluator);
    error RoundOutOfRange(uint256 taskId, uint256 round, uint16 rounds);
    error OutsideWindow(uint256 taskId, uint256 round, DinTasks.Stage stage, uint64 start, uint64 end);
    error RoundSeedAlreadyDrawn(uint256 taskId, uint256 round);
    error RoundSeedNotDrawn(uint256 taskId, uint256 round);
    error NotEnoughEvaluators(uint256 taskId, uint256 enrolled, uint16 perSubgroup);
    error NoParticipants(uint256 taskId);
    error SubgroupOutOfRange(uint256 taskId, uint256 group, uint256 groups);
    error NotAssigned(uint256 taskId, uint256 round, uint256 group, address evaluator);
    error AlreadyCommitted(uint256 taskId, uint256 round, uint256 group, address evaluator);
    error NotCommitted(uint256 taskId, uint256 round, uint256 group, address evaluator);
    error AlreadyRevealed(uint256 taskId, uint256 round, uint256 group, address evaluator);
    error CommitmentMismatch(uint256 taskId, uint256 round, uint256 group, address evaluator);
    error EmptyCid();
    error AlreadyFinalized(uint256 taskId, uint256 round, uint256 group);
    error SubgroupsNotFinalized(uint256 taskId, uint256 round, uint256 finalized, uint256 groups);
    error SubgroupNotAggregatable(uint256 taskId, uint256 round, uint256 group);
    error RegistrationOpen(uint256 taskId, uint64 registrationEnd);
    error NotEligibleForSlashShare(uint256 taskId, address account);
    error SlashShareAlreadyClaimed(uint256 taskId, address account);
    error TaskHealthy(uint256 taskId, uint256 participants, uint256 evaluators);
    error Barred(uint256 taskId, uint256 round, address evaluator);
    error GlobalNotFinalized(uint256 taskId, uint256 round);
    error NoVotesToSettle(uint256 taskId, uint256 round);

    /// @param tasks_ the DinTasks registry.
    /// @param staking_ the shared Staking pool (this contract needs its MODULE_ROLE to slash).
    constructor(DinTasks tasks_, Staking staking_) {
        tasks = tasks_;
        staking = staking_;
    }

    // ------------------------------------------------------------------ enrolment and seeds

    /// @notice Enrol the caller as an evaluator of `taskId` during registration.
    /// @param seedCommitment_ keccak256(abi.encode(taskId, evaluator, seed)) of a secret seed.
    function enrol(uint256 taskId, bytes32 seedCommitment_) external {
        DinTasks.TaskParams memory p = tasks.params(taskId);
        if (block.timestamp >= p.registrationEnd) revert EnrolmentClosed(taskId);
        if (_evaluatorSlot[taskId][msg.sender] != 0) revert AlreadyEnrolled(taskId, msg.sender);
        if (_evaluators[taskId].length >= p.maxEvaluators) revert TooManyEvaluators(taskId, p.maxEvaluators);
        uint256 stake = staking.stakeOf(msg.sender);
        if (stake < p.minEvaluatorStake) revert StakeTooLow(msg.sender, stake, p.minEvaluatorStake);
        if (seedCommitment_ == bytes32(0)) revert ZeroCommitment();
        uint256 index = _rosters[taskId].add();
        _evaluators[taskId].push(msg.sender);
        _evaluatorSlot[taskId][msg.sender] = index + 1;
        seedCommitment[taskId][msg.sender] = seedCommitment_;
        emit EvaluatorEnrolled(taskId, msg.sender, index);
    }

    /// @notice Reveal the caller's enrolment seed during round 0's Submit stage.
    function revealSeed(uint256 taskId, bytes32 seed) external {
        _requireEnrolled(taskId, msg.sender);
        _requireWindow(taskId, 0, DinTasks.Stage.Submit);
        if (seedRevealed[taskId][msg.sender]) revert SeedAlreadyRevealed(taskId, msg.sender);
        if (keccak256(abi.encode(taskId, msg.sender, seed)) != seedCommitment[taskId][msg.sender]) {
            revert SeedMismatch(taskId, msg.sender);
        }
        seedRevealed[taskId][msg.sender] = true;
        bytes32 folded = keccak256(abi.encode(taskSeed[taskId], seed));
        taskSeed[taskId] = folded;
        emit SeedRevealed(taskId, msg.sender, folded);
    }

    /// @notice Slash an evaluator that did not reveal its seed by the end of round 0's Submit stage.
    /// @dev Anyone may call; at most once per evaluator and task.
    function slashSeedNoShow(uint256 taskId, address evaluator) external {
        _requireEnrolled(taskId, evaluator);
        (, uint64 end) = tasks.window(taskId, 0, DinTasks.Stage.Submit);
        if (block.timestamp < end) revert OutsideWindow(taskId, 0, DinTasks.Stage.Submit, end, type(uint64).max);
        if (seedRevealed[taskId][evaluator]) revert SeedWasRevealed(taskId, evaluator);
        if (seedNoShowSettled[taskId][evaluator]) revert SeedNoShowAlreadySettled(taskId, evaluator);
        seedNoShowSettled[taskId][evaluator] = true;
        _slash(taskId, 0, evaluator, "din: seed no-show");
    }

    /// @notice Fix the assignment seed of `round` (anyone, once, during its AggregateCommit stage).
    function drawRoundSeed(uint256 taskId, uint256 round) external {
        DinTasks.Shape memory sh = _requireRound(taskId, round);
        _requireWindow(taskId, round, DinTasks.Stage.AggregateCommit);
        RoundState storage rs = _rounds[taskId][round];
        if (rs.seed != bytes32(0)) revert RoundSeedAlreadyDrawn(taskId, round);
        uint256 eligible = _rosters[taskId].size;
        if (eligible < sh.evaluatorsPerSubgroup) revert NotEnoughEvaluators(taskId, eligible, sh.evaluatorsPerSubgroup);
        if (sh.participants == 0) revert NoParticipants(taskId);
        bytes32 seed = keccak256(abi.encode(taskSeed[taskId], block.prevrandao, taskId, round));
        rs.seed = seed;
        rs.roster = uint32(_rosters[taskId].draw(round));
        emit RoundSeedDrawn(taskId, round, seed);
    }

    /// @notice Cancel `taskId` (anyone, after registration closed) when it never got enough
    /// participants (none) or evaluators (fewer than `evaluatorsPerSubgroup`, so no round seed can
    /// ever be drawn). DinTasks then returns the deposit and the bonds by pull payments. A task
    /// that can run is refused with TaskHealthy. Needs DinTasks' CANCELLER_ROLE.
    function cancelTask(uint256 taskId) external {
        DinTasks.TaskParams memory p = tasks.params(taskId);
        if (block.timestamp < p.registrationEnd) revert RegistrationOpen(taskId, p.registrationEnd);
        uint256 participants = tasks.participantCount(taskId);
        uint256 evaluators = _evaluators[taskId].length;
        if (participants > 0 && evaluators >= p.evaluatorsPerSubgroup) {
            revert TaskHealthy(taskId, participants, evaluators);
        }
        tasks.cancel(taskId, participants, evaluators);
    }

    // ------------------------------------------------------------------ subgroup aggregates

    /// @notice Commit to a subgroup aggregate CID. In secure-aggregation tasks only once the
    /// subgroup is aggregatable (`DinTasks.aggregatable`: enough survivors, recovery seeds posted).
    /// @param commitment keccak256(abi.encode(taskId, round, group, evaluator, cid, salt)).
    function commitAggregate(uint256 taskId, uint256 round, uint256 group, bytes32 commitment) external {
        _requireRound(taskId, round);
        _requireWindow(taskId, round, DinTasks.Stage.AggregateCommit);
        if (!isAssigned(taskId, round, group, msg.sender)) revert NotAssigned(taskId, round, group, msg.sender);
        if (!tasks.aggregatable(taskId, round, group)) revert SubgroupNotAggregatable(taskId, round, group);
        _commit(taskId, round, group, commitment);
    }

    /// @notice Reveal the caller's committed subgroup aggregate CID.
    function revealAggregate(uint256 taskId, uint256 round, uint256 group, string calldata cid, bytes32 salt)
        external
    {
        _requireRound(taskId, round);
        _requireWindow(taskId, round, DinTasks.Stage.AggregateReveal);
        _reveal(taskId, round, group, cid, salt);
        emit AggregateRevealed(taskId, round, group, msg.sender, cid);
    }

    /// @notice Close subgroup `group` of `round` after its reveal stage (anyone, once): accept the
    /// most-revealed CID if more than half of the subgroup's k evaluators revealed it, then slash
    /// each assigned evaluator that revealed nothing or (if accepted) something else. A subgroup
    /// that was never aggregatable (no submissions; or, with secure aggregation, fewer than 2
    /// survivors or missing recovery seeds) is closed as not accepted and nobody is slashed:
    /// nobody could aggregate it.
    /// @dev Loops over the k assigned slots only (k <= DinTasks.MAX_EVALUATORS_PER_SUBGROUP).
    function finalizeSubgroup(uint256 taskId, uint256 round, uint256 group) external {
        DinTasks.Shape memory sh = _requireRound(taskId, round);
        _requireAfter(taskId, round, DinTasks.Stage.AggregateReveal);
        bytes32 seed = _requireSeed(taskId, round);
        if (group >= sh.groups) revert SubgroupOutOfRange(taskId, group, sh.groups);
        Tally storage tl = _tallies[taskId][round][group];
        if (tl.finalized) revert AlreadyFinalized(taskId, round, group);
        uint256 k = sh.evaluatorsPerSubgroup;
        bool possible = tasks.aggregatable(taskId, round, group);
        bool accepted = possible && uint256(tl.bestVotes) * 2 > k;
        tl.finalized = true;
        tl.accepted = accepted;
        RoundState storage rs = _rounds[taskId][round];
        rs.finalizedGroups += 1;
        if (accepted) rs.acceptedGroups += 1;
        emit SubgroupFinalized(taskId, round, group, accepted ? tl.bestHash : bytes32(0), tl.bestVotes, accepted);
        if (!possible) return;
        uint256 n = rs.roster;
        for (uint256 s = group * k; s < group * k + k; s++) {
            address e = _evaluatorAt(taskId, round, _unshuffle(s % n, n, seed));
            _settleVote(taskId, round, group, e, accepted, tl.bestHash, "din: aggregate no-show", "din: aggregate dissent");
        }
    }

    // ------------------------------------------------------------------ global model

    /// @notice Commit to the round's global model CID (every evaluator of the round's roster
    /// votes; a barred one is refused), once all subgroups of the round are finalized.
    /// @param commitment keccak256(abi.encode(taskId, round, GLOBAL, evaluator, cid, salt)).
    function commitGlobal(uint256 taskId, uint256 round, bytes32 commitment) external {
        uint256 groups = _requireRound(taskId, round).groups;
        _requireWindow(taskId, round, DinTasks.Stage.GlobalCommit);
        _requireEnrolled(taskId, msg.sender);
        if (!isEligible(taskId, round, msg.sender)) revert Barred(taskId, round, msg.sender);
        uint256 finalized = _rounds[taskId][round].finalizedGroups;
        if (finalized < groups) revert SubgroupsNotFinalized(taskId, round, finalized, groups);
        _commit(taskId, round, GLOBAL, commitment);
    }

    /// @notice Reveal the caller's committed global model CID.
    function revealGlobal(uint256 taskId, uint256 round, string calldata cid, bytes32 salt) external {
        _requireRound(taskId, round);
        _requireWindow(taskId, round, DinTasks.Stage.GlobalReveal);
        _reveal(taskId, round, GLOBAL, cid, salt);
        emit GlobalRevealed(taskId, round, msg.sender, cid);
    }

    /// @notice Close the global vote of `round` (anyone, once): accept the most-revealed CID with
    /// more than half of the round's roster. O(1); the voters are settled by `settleGlobalVotes`.
    function finalizeGlobal(uint256 taskId, uint256 round) external {
        _requireRound(taskId, round);
        _requireAfter(taskId, round, DinTasks.Stage.GlobalReveal);
        Tally storage tl = _tallies[taskId][round][GLOBAL];
        if (tl.finalized) revert AlreadyFinalized(taskId, round, GLOBAL);
        bool accepted = uint256(tl.bestVotes) * 2 > _rounds[taskId][round].roster;
        tl.finalized = true;
        tl.accepted = accepted;
        emit GlobalFinalized(taskId, round, accepted ? tl.bestHash : bytes32(0), tl.bestVotes, accepted);
    }

    /// @notice Settle the global votes of the next (at most) `limit` evaluators of `round`'s roster
    /// (anyone, after `finalizeGlobal`): slash and bar each no-show and, if a CID was accepted, each
    /// dissenter. Called until every roster position is settled (`globalVotesProgress`).
    /// @dev Loops over at most `limit` evaluators.
    function settleGlobalVotes(uint256 taskId, uint256 round, uint256 limit) external {
        Tally storage tl = _tallies[taskId][round][GLOBAL];
        if (!tl.finalized) revert GlobalNotFinalized(taskId, round);
        RoundState storage rs = _rounds[taskId][round];
        uint256 from = rs.globalSettled;
        uint256 to = from + limit < rs.roster ? from + limit : rs.roster;
        if (from >= to) revert NoVotesToSettle(taskId, round);
        rs.globalSettled = uint32(to);
        emit GlobalVotesSettled(taskId, round, from, to);
        for (uint256 q = from; q < to; q++) {
            address e = _evaluatorAt(taskId, round, q);
            _settleVote(taskId, round, GLOBAL, e, tl.accepted, tl.bestHash, "din: global no-show", "din: global dissent");
        }
    }

    // ------------------------------------------------------------------ slash pool

    /// @notice Claim the caller's share of the task's slash pool, once, from the Settle stage on:
    /// an enrolled evaluator never found at fault in the task gets `slashPool / honest`; when every
    /// enrolled evaluator was slashed, the task owner gets the whole pool.
    function claimSlashShare(uint256 taskId) external {
        (uint64 settle,) = tasks.window(taskId, 0, DinTasks.Stage.Settle);
        if (block.timestamp < settle) {
            revert OutsideWindow(taskId, 0, DinTasks.Stage.Settle, settle, type(uint64).max);
        }
        if (slashShareClaimed[taskId][msg.sender]) revert SlashShareAlreadyClaimed(taskId, msg.sender);
        uint256 amount = slashShareOf(taskId, msg.sender);
        if (amount == 0) revert NotEligibleForSlashShare(taskId, msg.sender);
        slashShareClaimed[taskId][msg.sender] = true;
        emit SlashShareClaimed(taskId, msg.sender, amount);
        staking.payOutSlashed(msg.sender, amount);
    }

    /// @notice What `account` can claim from the task's slash pool (0 if nothing, or if claimed).
    /// @dev Meaningful from the Settle stage on, when the pool is final.
    function slashShareOf(uint256 taskId, address account) public view returns (uint256) {
        if (slashShareClaimed[taskId][account]) return 0;
        uint256 pool = slashPool[taskId];
        uint256 honest = _evaluators[taskId].length - offenders[taskId];
        if (honest == 0) {
            (address owner,,,,) = tasks.taskInfo(taskId);
            return account == owner ? pool : 0;
        }
        if (_evaluatorSlot[taskId][account] == 0 || isOffender[taskId][account]) return 0;
        return pool / honest;
    }

    // ------------------------------------------------------------------ views

    /// @notice Roster positions of `round` whose global vote is settled, and the roster's size.
    function globalVotesProgress(uint256 taskId, uint256 round) external view returns (uint256 settled, uint256 roster) {
        RoundState storage rs = _rounds[taskId][round];
        return (rs.globalSettled, rs.roster);
    }

    /// @notice Evaluators eligible in `round` (0 until its seed is drawn).
    function rosterSize(uint256 taskId, uint256 round) external view returns (uint256) {
        return _rounds[taskId][round].roster;
    }

    /// @notice One more than the last round whose seed was drawn (0 before the first draw).
    function roundsDrawn(uint256 taskId) external view returns (uint256) {
        return _rosters[taskId].drawn;
    }

    /// @notice Evaluators eligible in the next round to be drawn (enrolled minus barred).
    function activeEvaluators(uint256 taskId) external view returns (uint256) {
        return _rosters[taskId].size;
    }

    /// @notice Whether `evaluator` is in `round`'s roster (enrolled and not barred from it). For a
    /// round not drawn yet: whether it is now.
    function isEligible(uint256 taskId, uint256 round, address evaluator) public view returns (bool) {
        uint256 slot = _evaluatorSlot[taskId][evaluator];
        if (slot == 0) return false;
        (bool active,) = _rosters[taskId].placeAt(round, slot - 1);
        return active;
    }

    /// @notice Number of evaluators enrolled in `taskId`.
    function evaluatorCount(uint256 taskId) external view returns (uint256) {
        return _evaluators[taskId].length;
    }

    /// @notice Evaluator at enrolment `index` of `taskId`.
    function evaluatorAt(uint256 taskId, uint256 index) external view returns (address) {
        return _evaluators[taskId][index];
    }

    /// @notice Whether `account` is an enrolled evaluator of `taskId`.
    function isEvaluator(uint256 taskId, address account) external view returns (bool) {
        return _evaluatorSlot[taskId][account] != 0;
    }

    /// @notice The seed of `round` (0 until drawn).
    function roundSeed(uint256 taskId, uint256 round) external view returns (bytes32) {
        return _rounds[taskId][round].seed;
    }

    /// @notice Subgroups finalized and accepted so far in `round`.
    function roundProgress(uint256 taskId, uint256 round) external view returns (uint256 finalized, uint256 accepted) {
        RoundState storage rs = _rounds[taskId][round];
        return (rs.finalizedGroups, rs.acceptedGroups);
    }

    /// @notice Outcome of the vote on `group` of `round` (`group == GLOBAL` for the global model).
    function tally(uint256 taskId, uint256 round, uint256 group)
        external
        view
        returns (bytes32 bestHash, uint256 bestVotes, bool finalized, bool accepted)
    {
        Tally storage t = _tallies[taskId][round][group];
        return (t.bestHash, t.bestVotes, t.finalized, t.accepted);
    }

    /// @notice `evaluator`'s commitment and revealed CID hash for `group` of `round`.
    function voteOf(uint256 taskId, uint256 round, uint256 group, address evaluator)
        external
        view
        returns (bytes32 commitment, bytes32 revealed)
    {
        Vote storage v = _votes[taskId][round][group][evaluator];
        return (v.commitment, v.revealed);
    }

    /// @notice Whether `evaluator` is one of the k evaluators of subgroup `group` in `round`.
    function isAssigned(uint256 taskId, uint256 round, uint256 group, address evaluator) public view returns (bool) {
        bytes32 seed = _requireSeed(taskId, round);
        DinTasks.Shape memory sh = tasks.shape(taskId);
        if (group >= sh.groups) revert SubgroupOutOfRange(taskId, group, sh.groups);
        uint256 slot = _evaluatorSlot[taskId][evaluator];
        if (slot == 0) return false;
        (bool active, uint256 q) = _rosters[taskId].placeAt(round, slot - 1);
        if (!active) return false;
        uint256 n = _rounds[taskId][round].roster;
        uint256 k = sh.evaluatorsPerSubgroup;
        uint256 pos = _shuffle(q, n, seed);
        uint256 lo = group * k;
        uint256 first = pos >= lo ? pos : pos + ((lo - pos + n - 1) / n) * n;
        return first < lo + k;
    }

    /// @notice The k evaluators of subgroup `group` in `round`, in slot order.
    function subgroupEvaluators(uint256 taskId, uint256 round, uint256 group)
        external
        view
        returns (address[] memory evs)
    {
        bytes32 seed = _requireSeed(taskId, round);
        DinTasks.Shape memory sh = tasks.shape(taskId);
        if (group >= sh.groups) revert SubgroupOutOfRange(taskId, group, sh.groups);
        uint256 k = sh.evaluatorsPerSubgroup;
        uint256 n = _rounds[taskId][round].roster;
        evs = new address[](k);
        for (uint256 i = 0; i < k; i++) {
            evs[i] = _evaluatorAt(taskId, round, _unshuffle((group * k + i) % n, n, seed));
        }
    }

    /// @notice The subgroups `evaluator` must aggregate in `round` (view for agents; its length is
    /// about G * k / E).
    function assignedSubgroups(uint256 taskId, uint256 round, address evaluator)
        external
        view
        returns (uint256[] memory groups)
    {
        bytes32 seed = _requireSeed(taskId, round);
        uint256 slot = _evaluatorSlot[taskId][evaluator];
        if (slot == 0) return new uint256[](0);
        (bool active, uint256 q) = _rosters[taskId].placeAt(round, slot - 1);
        if (!active) return new uint256[](0);
        uint256 n = _rounds[taskId][round].roster;
        DinTasks.Shape memory sh = tasks.shape(taskId);
        uint256 k = sh.evaluatorsPerSubgroup;
        uint256 total = uint256(sh.groups) * k;
        uint256 pos = _shuffle(q, n, seed);
        uint256 count = pos < total ? (total - pos + n - 1) / n : 0;
        groups = new uint256[](count);
        for (uint256 i = 0; i < count; i++) {
            groups[i] = (pos + i * n) / k;
        }
    }

    // ------------------------------------------------------------------ internals

    function _commit(uint256 taskId, uint256 round, uint256 group, bytes32 commitment) private {
        if (commitment == bytes32(0)) revert ZeroCommitment();
        Vote storage v = _votes[taskId][round][group][msg.sender];
        if (v.commitment != bytes32(0)) revert AlreadyCommitted(taskId, round, group, msg.sender);
        v.commitment = commitment;
        emit VoteCommitted(taskId, round, group, msg.sender);
    }

    function _reveal(uint256 taskId, uint256 round, uint256 group, string calldata cid, bytes32 salt) private {
        Vote storage v = _votes[taskId][round][group][msg.sender];
        if (v.commitment == bytes32(0)) revert NotCommitted(taskId, round, group, msg.sender);
        if (v.revealed != bytes32(0)) revert AlreadyRevealed(taskId, round, group, msg.sender);
        if (bytes(cid).length == 0) revert EmptyCid();
        if (keccak256(abi.encode(taskId, round, group, msg.sender, cid, salt)) != v.commitment) {
            revert CommitmentMismatch(taskId, round, group, msg.sender);
        }
        bytes32 h = keccak256(bytes(cid));
        v.revealed = h;
        uint256 c = ++_counts[taskId][round][group][h];
        Tally storage t = _tallies[taskId][round][group];
        if (c > t.bestVotes) {
            t.bestVotes = uint32(c);
            t.bestHash = h;
        }
    }

    function _settleVote(
        uint256 taskId,
        uint256 round,
        uint256 group,
        address e,
        bool accepted,
        bytes32 acceptedHash,
        string memory noShow,
        string memory dissent
    ) private {
        bytes32 revealed = _votes[taskId][round][group][e].revealed;
        if (revealed == bytes32(0)) _slash(taskId, round, e, noShow);
        else if (accepted && revealed != acceptedHash) _slash(taskId, round, e, dissent);
    }

    function _slash(uint256 taskId, uint256 round, address e, string memory reason) private {
        (uint64 settle,) = tasks.window(taskId, 0, DinTasks.Stage.Settle);
        if (block.timestamp >= settle) return; // the slash pool is final once Settle opens
        if (!isOffender[taskId][e]) {
            isOffender[taskId][e] = true;
            offenders[taskId] += 1;
            _bar(taskId, e);
        }
        uint256 amount = tasks.params(taskId).slashAmount;
        uint256 slashable = staking.slashableOf(e);
        if (amount > slashable) amount = slashable;
        if (amount == 0) return;
        slashPool[taskId] += amount;
        emit EvaluatorSlashed(taskId, round, e, amount, reason);
        staking.slash(e, amount, reason);
    }

    /// @dev Bar `e` from every round whose seed is not drawn yet (its first offence).
    function _bar(uint256 taskId, address e) private {
        uint256 fromRound = _rosters[taskId].remove(_evaluatorSlot[taskId][e] - 1);
        barredFrom[taskId][e] = fromRound + 1;
        emit EvaluatorBarred(taskId, e, fromRound);
    }

    /// @dev The evaluator at roster position `q` of `round`.
    function _evaluatorAt(uint256 taskId, uint256 round, uint256 q) private view returns (address) {
        return _evaluators[taskId][_rosters[taskId].seatAt(round, q)];
    }

    function _requireRound(uint256 taskId, uint256 round) private view returns (DinTasks.Shape memory sh) {
        sh = tasks.shape(taskId);
        if (round >= sh.roundsHeld) revert RoundOutOfRange(taskId, round, sh.roundsHeld);
    }

    function _requireEnrolled(uint256 taskId, address account) private view {
        if (_evaluatorSlot[taskId][account] == 0) revert NotEnrolled(taskId, account);
    }

    function _requireSeed(uint256 taskId, uint256 round) private view returns (bytes32 seed) {
        seed = _rounds[taskId][round].seed;
        if (seed == bytes32(0)) revert RoundSeedNotDrawn(taskId, round);
    }

    function _requireWindow(uint256 taskId, uint256 round, DinTasks.Stage stage) private view {
        (uint64 start, uint64 end) = tasks.window(taskId, round, stage);
        if (block.timestamp < start || block.timestamp >= end) revert OutsideWindow(taskId, round, stage, start, end);
    }

    function _requireAfter(uint256 taskId, uint256 round, DinTasks.Stage stage) private view {
        (uint64 start, uint64 end) = tasks.window(taskId, round, stage);
        if (block.timestamp < end) revert OutsideWindow(taskId, round, stage, start, end);
    }

    /// @dev Swap-or-not shuffle (beacon chain compute_shuffled_index): position of `index` in [0, n).
    function _shuffle(uint256 index, uint256 n, bytes32 seed) internal pure returns (uint256) {
        for (uint256 r = 0; r < SHUFFLE_ROUNDS; r++) {
            index = _swapOrNot(index, n, seed, r);
        }
        return index;
    }

    /// @dev Inverse of `_shuffle`: each round is an involution, so apply them in reverse order.
    function _unshuffle(uint256 position, uint256 n, bytes32 seed) internal pure returns (uint256) {
        for (uint256 r = SHUFFLE_ROUNDS; r > 0; r--) {
            position = _swapOrNot(position, n, seed, r - 1);
        }
        return position;
    }

    function _swapOrNot(uint256 index, uint256 n, bytes32 seed, uint256 r) private pure returns (uint256) {
        uint256 pivot = uint256(keccak256(abi.encode(seed, r))) % n;
        uint256 flip = (pivot + n - index) % n;
        uint256 pos = index > flip ? index : flip;
        uint256 source = uint256(keccak256(abi.encode(seed, r, pos / 256)));
        return (source >> (pos % 256)) & 1 == 1 ? flip : index;
    }
}
