// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {DinTasks} from "./DinTasks.sol";
import {DinRounds} from "./DinRounds.sol";
import {MedianCheck} from "./MedianCheck.sol";

/// @title DinScoring
/// @notice Per-round, per-subgroup scoring of DIN tasks (BlockFlow-style medians) and pull payments
/// of the deposit.
/// @dev Each round, the evaluators assigned to a subgroup (DinRounds) score that subgroup's members
/// on the round's test slice: they commit to the vector of member scores (fixed point, SCALE = 1.0)
/// in the round's GlobalCommit stage and reveal it in GlobalReveal. An evaluator therefore scores
/// only the members of the subgroups it is assigned to (O(subgroup size) per assignment), never
/// all N participants. Then anyone settles the subgroup (`settleSubgroup`) by proposing each
/// member's lower median over the revealed vectors; the contract checks it by counting
/// below/equal/above (no sort). A member without a revealed update scores 0 whatever the
/// evaluators say. An evaluator's score within HALF (0.5) of the median earns it one `agreed`
/// score slot; a subgroup offers `evaluatorsPerSubgroup * members` slots.
///
/// Unscored subgroups: a (round, subgroup) is not scored when the owner did not reveal round r's
/// slice in time (DinTasks.sliceWithheld), or when no more than half of the subgroup's k assigned
/// evaluators revealed scores (a quorum like the aggregate vote's: a minority, e.g. an evaluator the
/// owner alone handed the slice bytes to, cannot set the medians; and an owner that reveals a
/// slice's hash but serves no bytes, so that honest evaluators cannot score, gains nothing). Each
/// member with a revealed update in that round then gets one "unscored round" that counts as its
/// mean median over the task's scored rounds (or, when no scored round earned anything, as one
/// equal unit), and every assigned evaluator gets all its slots as agreed. The reward is then paid in
/// full to participants and the fees to evaluators, so the owner recovers nothing by withholding and
/// cannot lift a free rider above its own scored record.
///
/// Pay-out (once every subgroup of every round is settled; pull payments, one transaction each,
/// once; DinTasks caps the total at the deposit). With S_i = participant i's sum of medians over
/// scored rounds, w_i its unscored rounds, s the number of scored rounds:
/// weight_i = S_i * (s + w_i) (equals s * (S_i + w_i * S_i / s)) when some scored median is > 0,
/// else w_i; participant i claims `reward * weight_i / sum(weights)`. Evaluator e claims
/// `evaluatorFee * E * agreed_e / slots` (E enrolled evaluators; all agree on every slot: each earns
/// its share of `evaluatorFee * E`). The owner claims the unearned fees,
/// `evaluatorFee * maxEvaluators - evaluatorFee * E * sum(agreed) / slots`, plus the reward when
/// every weight is 0. Floor rounding leaves at most a few wei in DinTasks.
///
/// Score commitment: keccak256(abi.encode(taskId, round, group, evaluator, scores, salt)) with
/// `scores` the uint32[] of the subgroup's members in registration order.
contract DinScoring {
    uint32 public constant SCALE = 1_000_000;
    uint32 public constant HALF = 500_000;
    /// @notice What a score vote's storage word holds once revealed (never accepted as a commitment).
    bytes32 public constant REVEALED = bytes32(uint256(1));

    /// @dev What a participant accumulates over the rounds it is settled in.
    struct Standing {
        uint64 scoreSum; // sum of its medians over scored rounds
        uint32 unscoredRounds; // rounds in which it revealed an update and its subgroup went unscored
        bool rewardClaimed;
    }

    struct EvaluatorAccount {
        uint64 agreed; // score slots within HALF of the median (all slots of unscored subgroups)
        bool feeClaimed;
    }

    /// @dev Two storage words. The scored rounds are the task's revealed slices (DinTasks.shape).
    /// @dev One (round, subgroup)'s participants and score votes, read once at settlement.
    struct Votes {
        bool[] revealed; // per member: revealed an update in the round
        address[] evaluators; // the k assigned (none without a round seed)
        address[] voters; // those of them that revealed scores
        uint32[][] vectors; // their scores, per member
    }

    struct Totals {
        uint32 settledGroups; // (round, subgroup) pairs settled
        uint64 sumAgreed;
        uint64 slots;
        uint64 sumUnscored; // sum of all w_i
        bool ownerRefunded;
        uint128 sumScores; // sum of all S_i
        uint128 cross; // sum of S_i * w_i
    }

    DinTasks public immutable tasks;
    DinRounds public immutable rounds;

    /// @dev An evaluator's score commitment for (round, subgroup); REVEALED once revealed; 0 = none.
    mapping(uint256 taskId => mapping(uint256 round => mapping(uint256 group => mapping(address => bytes32)))) private
        _votes;
    /// @dev 8 scores of 32 bits per word: word w holds members 8w .. 8w + 7 of the subgroup
    mapping(
        uint256 taskId
            => mapping(uint256 round => mapping(uint256 group => mapping(address => mapping(uint256 word => uint256))))
    ) private _packed;
    /// @dev Bit g % 256 of word g / 256: subgroup g of the round is settled.
    mapping(uint256 taskId => mapping(uint256 round => mapping(uint256 word => uint256))) private _settled;
    mapping(uint256 taskId => mapping(uint256 index => Standing)) private _standing;
    mapping(uint256 taskId => mapping(address => EvaluatorAccount)) private _accounts;
    mapping(uint256 taskId => Totals) private _totals;

    event ScoresCommitted(uint256 indexed taskId, uint256 indexed round, uint256 group, address indexed evaluator);
    event ScoresRevealed(
        uint256 indexed taskId, uint256 indexed round, uint256 group, address indexed evaluator, uint32[] scores
    );
    event SubgroupSettled(
        uint256 indexed taskId, uint256 indexed round, uint256 indexed group, bool unscored, uint32[] medians
    );
    event RewardClaimed(uint256 indexed taskId, address indexed participant, uint256 amount);
    event FeeClaimed(uint256 indexed taskId, address indexed evaluator, uint256 amount);
    event OwnerRefunded(uint256 indexed taskId, address indexed owner, uint256 amount);

    error OutsideWindow(uint256 taskId, uint256 round, DinTasks.Stage stage, uint64 start, uint64 end);
    error RoundOutOfRange(uint256 taskId, uint256 round, uint16 rounds);
    error SubgroupOutOfRange(uint256 taskId, uint256 group, uint256 groups);
    error NotAssigned(uint256 taskId, uint256 round, uint256 group, address account);
    error SliceNotRevealed(uint256 taskId, uint256 round);
    error InvalidCommitment(bytes32 commitment);
    error AlreadyCommitted(uint256 taskId, uint256 round, uint256 group, address evaluator);
    error NotCommitted(uint256 taskId, uint256 round, uint256 group, address evaluator);
    error AlreadyRevealed(uint256 taskId, uint256 round, uint256 group, address evaluator);
    error BadScoreCount(uint256 expected, uint256 given);
    error ScoreOutOfRange(uint256 member, uint32 score);
    error CommitmentMismatch(uint256 taskId, uint256 round, uint256 group, address evaluator);
    error AlreadySettled(uint256 taskId, uint256 round, uint256 group);
    error BadMedianCount(uint256 expected, uint256 given);
    error NotMedian(uint256 member, uint32 proposed, uint256 below, uint256 equal, uint256 above);
    error NotAllSettled(uint256 taskId, uint256 settled, uint256 expected);
    error AlreadyClaimed(uint256 taskId, address account);
    error NothingToClaim(uint256 taskId, address account);
    error NotParticipant(uint256 taskId, address account);

    /// @param tasks_ the DinTasks registry (this contract needs its PAYER_ROLE).
    /// @param rounds_ the DinRounds evaluator registry.
    constructor(DinTasks tasks_, DinRounds rounds_) {
        tasks = tasks_;
        rounds = rounds_;
    }

    // ------------------------------------------------------------------ evaluators

    /// @notice Commit to the scores of subgroup `group`'s members for `round`, during the round's
    /// GlobalCommit stage. Only an evaluator assigned to the subgroup in that round, and only once
    /// the round's test slice is revealed.
    /// @param commitment keccak256(abi.encode(taskId, round, group, evaluator, scores, salt)).
    function commitScores(uint256 taskId, uint256 round, uint256 group, bytes32 commitment) external {
        _requireRound(taskId, round);
        _requireWindow(taskId, round, DinTasks.Stage.GlobalCommit);
        if (!rounds.isAssigned(taskId, round, group, msg.sender)) revert NotAssigned(taskId, round, group, msg.sender);
        if (tasks.testSlice(taskId, round) == bytes32(0)) revert SliceNotRevealed(taskId, round);
        if (commitment == bytes32(0) || commitment == REVEALED) revert InvalidCommitment(commitment);
        mapping(address => bytes32) storage votes = _votes[taskId][round][group];
        if (votes[msg.sender] != bytes32(0)) revert AlreadyCommitted(taskId, round, group, msg.sender);
        votes[msg.sender] = commitment;
        emit ScoresCommitted(taskId, round, group, msg.sender);
    }

    /// @notice Reveal the committed scores (one per member of the subgroup, registration order,
    /// each at most SCALE) during the round's GlobalReveal stage.
    function revealScores(uint256 taskId, uint256 round, uint256 group, uint32[] calldata scores, bytes32 salt)
        external
    {
        _requireWindow(taskId, round, DinTasks.Stage.GlobalReveal);
        mapping(address => bytes32) storage votes = _votes[taskId][round][group];
        bytes32 commitment = votes[msg.sender];
        if (commitment == bytes32(0)) revert NotCommitted(taskId, round, group, msg.sender);
        if (commitment == REVEALED) revert AlreadyRevealed(taskId, round, group, msg.sender);
        uint256 m = _memberCount(tasks.shape(taskId), group);
        if (scores.length != m) revert BadScoreCount(m, scores.length);
        if (keccak256(abi.encode(taskId, round, group, msg.sender, scores, salt)) != commitment) {
            revert CommitmentMismatch(taskId, round, group, msg.sender);
        }
        votes[msg.sender] = REVEALED;
        mapping(uint256 => uint256) storage packed = _packed[taskId][round][group][msg.sender];
        uint256 word;
        for (uint256 i = 0; i < m; i++) {
            uint32 s = scores[i];
            if (s > SCALE) revert ScoreOutOfRange(i, s);
            word |= uint256(s) << (32 * (i % 8));
            if (i % 8 == 7 || i == m - 1) {
                packed[i / 8] = word;
                word = 0;
            }
        }
        emit ScoresRevealed(taskId, round, group, msg.sender, scores);
    }

    // ------------------------------------------------------------------ settlement

    /// @notice Settle subgroup `group` of `round` (anyone, once, after the round's GlobalReveal).
    /// Scored: `medians[i]` must be member i's lower median over the revealed score vectors (0 for a
    /// member that revealed no update). Unscored (slice withheld, or no majority of the k assigned
    /// evaluators revealed scores): `medians` must be empty and the round counts as described in the
    /// contract NatSpec.
    /// @dev Loops over the subgroup's members (<= MAX_SUBGROUP_SIZE) times its k assigned
    /// evaluators, never over all participants or all evaluators.
    function settleSubgroup(uint256 taskId, uint256 round, uint256 group, uint32[] calldata medians) external {
        (bool withheld, uint256 first) = _markSettled(taskId, round, group);
        Votes memory v = _votesOf(taskId, round, group);
        bool unscored = withheld || v.voters.length * 2 <= v.evaluators.length;
        Totals storage t = _totals[taskId];
        uint256 m = v.revealed.length;
        t.slots += uint64(v.evaluators.length * m);
        if (unscored) {
            if (medians.length != 0) revert BadMedianCount(0, medians.length);
            _creditUnscored(taskId, first, v, t);
        } else {
            if (medians.length != m) revert BadMedianCount(m, medians.length);
            uint256[] memory agreed = _checkMedians(v.revealed, v.vectors, medians);
            _addMedians(taskId, first, medians, t);
            t.sumAgreed += uint64(_credit(taskId, v.voters, agreed));
        }
        emit SubgroupSettled(taskId, round, group, unscored, medians);
    }

    /// @dev The subgroup's members' reveal flags, its assigned evaluators (none without a round
    /// seed) and those of them that revealed scores, with their vectors.
    function _votesOf(uint256 taskId, uint256 round, uint256 group) private view returns (Votes memory v) {
        (, v.revealed) = tasks.subgroupMembers(taskId, round, group);
        v.evaluators = rounds.roundSeed(taskId, round) == bytes32(0)
            ? new address[](0)
            : rounds.subgroupEvaluators(taskId, round, group);
        (v.voters, v.vectors) = _revealedVectors(taskId, round, group, v.evaluators, v.revealed.length);
    }

    /// @dev An unscored (round, subgroup): each member with a revealed update gets an unscored round
    /// (counted as its mean over scored rounds) and every assigned evaluator all its slots.
    function _creditUnscored(uint256 taskId, uint256 first, Votes memory v, Totals storage t) private {
        uint256 m = v.revealed.length;
        for (uint256 i = 0; i < m; i++) {
            if (!v.revealed[i]) continue;
            Standing storage st = _standing[taskId][first + i];
            st.unscoredRounds += 1;
            t.cross += st.scoreSum;
            t.sumUnscored += 1;
        }
        for (uint256 j = 0; j < v.evaluators.length; j++) {
            _accounts[taskId][v.evaluators[j]].agreed += uint64(m);
        }
        t.sumAgreed += uint64(v.evaluators.length * m);
    }

    /// @dev Checks that `group` of `round` can be settled now and marks it settled; returns whether
    /// the round's slice was withheld and the index of the subgroup's first member.
    function _markSettled(uint256 taskId, uint256 round, uint256 group) private returns (bool withheld, uint256 first) {
        DinTasks.Shape memory sh = _requireRound(taskId, round);
        (uint64 start, uint64 end) = tasks.window(taskId, round, DinTasks.Stage.GlobalReveal);
        if (block.timestamp < end) revert OutsideWindow(taskId, round, DinTasks.Stage.GlobalReveal, start, end);
        if (group >= sh.groups) revert SubgroupOutOfRange(taskId, group, sh.groups);
        mapping(uint256 => uint256) storage bits = _settled[taskId][round];
        uint256 bit = 1 << (group % 256);
        if (bits[group / 256] & bit != 0) revert AlreadySettled(taskId, round, group);
        bits[group / 256] |= bit;
        _totals[taskId].settledGroups += 1;
        withheld = tasks.testSlice(taskId, round) == bytes32(0);
        first = group * sh.subgroupSize;
    }

    /// @dev The assigned evaluators of `group` in `round` that revealed, and their score vectors.
    function _revealedVectors(uint256 taskId, uint256 round, uint256 group, address[] memory evs, uint256 m)
        private
        view
        returns (address[] memory voters, uint32[][] memory vectors)
    {
        voters = new address[](evs.length);
        vectors = new uint32[][](evs.length);
        uint256 nv;
        for (uint256 j = 0; j < evs.length; j++) {
            if (_votes[taskId][round][group][evs[j]] != REVEALED) continue;
            voters[nv] = evs[j];
            vectors[nv] = _unpack(_packed[taskId][round][group][evs[j]], m);
            nv++;
        }
        assembly {
            mstore(voters, nv)
            mstore(vectors, nv)
        }
    }

    /// @dev Adds `agreed[j]` slots to `voters[j]`; returns the sum.
    function _credit(uint256 taskId, address[] memory voters, uint256[] memory agreed) private returns (uint256 sum) {
        for (uint256 j = 0; j < voters.length; j++) {
            _accounts[taskId][voters[j]].agreed += uint64(agreed[j]);
            sum += agreed[j];
        }
    }

    /// @dev Checks every member's proposed median (counting, no sort) and returns each voter's
    /// agreed slots (within HALF of the median).
    function _checkMedians(bool[] memory revealed, uint32[][] memory vectors, uint32[] calldata medians)
        private
        pure
        returns (uint256[] memory agreed)
    {
        uint256 nv = vectors.length;
        agreed = new uint256[](nv);
        uint32[] memory values = new uint32[](nv);
        for (uint256 i = 0; i < revealed.length; i++) {
            uint32 med = medians[i];
            for (uint256 j = 0; j < nv; j++) {
                values[j] = vectors[j][i];
            }
            if (!revealed[i] || nv == 0) {
                if (med != 0) revert NotMedian(i, med, 0, 0, 0);
            } else if (!MedianCheck.isLowerMedian(values, med)) {
                (uint256 below, uint256 equal, uint256 above) = MedianCheck.count(values, med);
                revert NotMedian(i, med, below, equal, above);
            }
            for (uint256 j = 0; j < nv; j++) {
                uint32 v = values[j];
                if ((v > med ? v - med : med - v) <= HALF) agreed[j] += 1;
            }
        }
    }

    /// @dev Adds the (checked) medians to the members' standings and the totals.
    function _addMedians(uint256 taskId, uint256 first, uint32[] calldata medians, Totals storage t) private {
        uint256 added;
        uint256 cross;
        for (uint256 i = 0; i < medians.length; i++) {
            uint32 med = medians[i];
            if (med == 0) continue;
            Standing storage st = _standing[taskId][first + i];
            st.scoreSum += med;
            added += med;
            cross += uint256(med) * st.unscoredRounds;
        }
        t.sumScores += uint128(added);
        t.cross += uint128(cross);
    }

    function _unpack(mapping(uint256 => uint256) storage packed, uint256 m) private view returns (uint32[] memory xs) {
        xs = new uint32[](m);
        uint256 word;
        for (uint256 i = 0; i < m; i++) {
            if (i % 8 == 0) word = packed[i / 8];
            xs[i] = uint32(word >> (32 * (i % 8)));
        }
    }

    // ------------------------------------------------------------------ pull payments

    /// @notice Claim the caller's share of the reward: reward * weight / sum of weights.
    function claimReward(uint256 taskId) external {
        if (!tasks.isParticipant(taskId, msg.sender)) revert NotParticipant(taskId, msg.sender);
        _requireAllSettled(taskId);
        Standing storage st = _standing[taskId][tasks.participantIndex(taskId, msg.sender)];
        if (st.rewardClaimed) revert AlreadyClaimed(taskId, msg.sender);
        uint256 amount = rewardOf(taskId, msg.sender);
        if (amount == 0) revert NothingToClaim(taskId, msg.sender);
        st.rewardClaimed = true;
        emit RewardClaimed(taskId, msg.sender, amount);
        tasks.pay(taskId, msg.sender, amount);
    }

    /// @notice Claim the caller's evaluator fee: evaluatorFee * E * agreed / slots.
    function claimFee(uint256 taskId) external {
        _requireAllSettled(taskId);
        EvaluatorAccount storage a = _accounts[taskId][msg.sender];
        if (a.feeClaimed) revert AlreadyClaimed(taskId, msg.sender);
        uint256 amount = feeOf(taskId, msg.sender);
        if (amount == 0) revert NothingToClaim(taskId, msg.sender);
        a.feeClaimed = true;
        emit FeeClaimed(taskId, msg.sender, amount);
        tasks.pay(taskId, msg.sender, amount);
    }

    /// @notice Return to the task owner the fees no evaluator earned, plus the whole reward when
    /// every weight is 0. Anyone may trigger it, once, after everything is settled.
    function refundOwner(uint256 taskId) external {
        _requireAllSettled(taskId);
        Totals storage t = _totals[taskId];
        (address owner,,,,) = tasks.taskInfo(taskId);
        if (t.ownerRefunded) revert AlreadyClaimed(taskId, owner);
        uint256 amount = ownerRefundOf(taskId);
        if (amount == 0) revert NothingToClaim(taskId, owner);
        t.ownerRefunded = true;
        emit OwnerRefunded(taskId, owner, amount);
        tasks.pay(taskId, owner, amount);
    }

    // ------------------------------------------------------------------ views

    /// @notice The reward `participant` can claim once everything is settled (0 before, and 0 once claimed).
    function rewardOf(uint256 taskId, address participant) public view returns (uint256) {
        if (!allSettled(taskId)) return 0;
        Standing storage st = _standing[taskId][tasks.participantIndex(taskId, participant)];
        if (st.rewardClaimed) return 0;
        Totals storage t = _totals[taskId];
        uint256 scored = _scoredRounds(taskId);
        uint256 total = _totalWeight(t, scored);
        if (total == 0) return 0;
        return tasks.params(taskId).reward * _weightOf(t, scored, st) / total;
    }

    /// @notice The fee `evaluator` can claim once everything is settled (0 before, and 0 once claimed).
    function feeOf(uint256 taskId, address evaluator) public view returns (uint256) {
        Totals storage t = _totals[taskId];
        EvaluatorAccount storage a = _accounts[taskId][evaluator];
        if (!allSettled(taskId) || t.slots == 0 || a.feeClaimed) return 0;
        return tasks.params(taskId).evaluatorFee * rounds.evaluatorCount(taskId) * a.agreed / t.slots;
    }

    /// @notice What `refundOwner` pays (0 before everything is settled, and 0 once refunded).
    function ownerRefundOf(uint256 taskId) public view returns (uint256) {
        Totals storage t = _totals[taskId];
        if (!allSettled(taskId) || t.ownerRefunded) return 0;
        DinTasks.TaskParams memory p = tasks.params(taskId);
        uint256 earned = t.slots == 0 ? 0 : p.evaluatorFee * rounds.evaluatorCount(taskId) * t.sumAgreed / t.slots;
        uint256 amount = p.evaluatorFee * p.maxEvaluators - earned;
        if (_totalWeight(t, _scoredRounds(taskId)) == 0) amount += p.reward;
        return amount;
    }

    /// @notice Whether every subgroup of every round is settled (claims are open).
    function allSettled(uint256 taskId) public view returns (bool) {
        return _totals[taskId].settledGroups >= _groupsToSettle(taskId);
    }

    /// @notice The revealed score vectors of subgroup `group` in `round`: its assigned evaluators
    /// that revealed, and their scores (one per member, registration order).
    function scoresFor(uint256 taskId, uint256 round, uint256 group)
        external
        view
        returns (address[] memory evaluators, uint32[][] memory scores)
    {
        address[] memory evs = rounds.subgroupEvaluators(taskId, round, group);
        uint256 m = _memberCount(tasks.shape(taskId), group);
        evaluators = new address[](evs.length);
        scores = new uint32[][](evs.length);
        uint256 n;
        for (uint256 j = 0; j < evs.length; j++) {
            if (_votes[taskId][round][group][evs[j]] != REVEALED) continue;
            evaluators[n] = evs[j];
            scores[n] = _unpack(_packed[taskId][round][group][evs[j]], m);
            n++;
        }
        assembly {
            mstore(evaluators, n)
            mstore(scores, n)
        }
    }

    /// @notice `evaluator`'s score commitment for `group` of `round` (0 once revealed) and whether it was revealed.
    function scoreVoteOf(uint256 taskId, uint256 round, uint256 group, address evaluator)
        external
        view
        returns (bytes32 commitment, bool revealed)
    {
        bytes32 v = _votes[taskId][round][group][evaluator];
        return (v == REVEALED ? bytes32(0) : v, v == REVEALED);
    }

    /// @notice Whether subgroup `group` of `round` is settled.
    function subgroupSettled(uint256 taskId, uint256 round, uint256 group) external view returns (bool) {
        return _settled[taskId][round][group / 256] & (1 << (group % 256)) != 0;
    }

    /// @notice What `participant` accumulated: sum of medians over scored rounds, unscored rounds
    /// it took part in, whether it claimed.
    function standingOf(uint256 taskId, address participant)
        external
        view
        returns (uint256 scoreSum, uint256 unscoredRounds, bool rewardClaimed)
    {
        Standing storage st = _standing[taskId][tasks.participantIndex(taskId, participant)];
        return (st.scoreSum, st.unscoredRounds, st.rewardClaimed);
    }

    /// @notice `evaluator`'s agreed score slots and whether it claimed its fee.
    function accountOf(uint256 taskId, address evaluator) external view returns (uint256 agreed, bool feeClaimed) {
        EvaluatorAccount storage a = _accounts[taskId][evaluator];
        return (a.agreed, a.feeClaimed);
    }

    /// @notice Settlement totals of `taskId`.
    function totals(uint256 taskId)
        external
        view
        returns (
            uint256 settledGroups,
            uint256 groupsToSettle,
            uint256 scoredRounds,
            uint256 sumScores,
            uint256 slots,
            uint256 sumAgreed,
            bool ownerRefunded
        )
    {
        Totals storage t = _totals[taskId];
        DinTasks.Shape memory sh = tasks.shape(taskId);
        return (
            t.settledGroups,
            uint256(sh.roundsHeld) * sh.groups,
            sh.slicesRevealed,
            t.sumScores,
            t.slots,
            t.sumAgreed,
            t.ownerRefunded
        );
    }

    // ------------------------------------------------------------------ internals

    /// @dev A participant's weight: S_i * (s + w_i) with s the scored rounds, or w_i when no scored
    /// median is > 0 (see the contract NatSpec).
    function _weightOf(Totals storage t, uint256 scored, Standing storage st) private view returns (uint256) {
        if (t.sumScores > 0) return uint256(st.scoreSum) * (scored + st.unscoredRounds);
        return st.unscoredRounds;
    }

    /// @dev The sum of all weights: s * sum(S_i) + sum(S_i * w_i), or sum(w_i).
    function _totalWeight(Totals storage t, uint256 scored) private view returns (uint256) {
        if (t.sumScores > 0) return scored * t.sumScores + t.cross;
        return t.sumUnscored;
    }

    /// @dev The rounds scored: the test slices revealed (final once everything is settled).
    function _scoredRounds(uint256 taskId) private view returns (uint256) {
        return tasks.shape(taskId).slicesRevealed;
    }

    function _groupsToSettle(uint256 taskId) private view returns (uint256) {
        DinTasks.Shape memory sh = tasks.shape(taskId);
        return uint256(sh.roundsHeld) * sh.groups;
    }

    function _memberCount(DinTasks.Shape memory sh, uint256 group) private pure returns (uint256) {
        uint256 from = group * sh.subgroupSize;
        if (from >= sh.participants) return 0;
        return sh.participants - from < sh.subgroupSize ? sh.participants - from : sh.subgroupSize;
    }

    function _requireRound(uint256 taskId, uint256 round) private view returns (DinTasks.Shape memory sh) {
        sh = tasks.shape(taskId);
        if (round >= sh.roundsHeld) revert RoundOutOfRange(taskId, round, sh.roundsHeld);
    }

    function _requireAllSettled(uint256 taskId) private view {
        uint256 settled = _totals[taskId].settledGroups;
        uint256 expected = _groupsToSettle(taskId);
        if (settled < expected) revert NotAllSettled(taskId, settled, expected);
    }

    function _requireWindow(uint256 taskId, uint256 round, DinTasks.Stage stage) private view {
        (uint64 start, uint64 end) = tasks.window(taskId, round, stage);
        if (block.timestamp < start || block.timestamp >= end) revert OutsideWindow(taskId, round, stage, start, end);
    }
}
