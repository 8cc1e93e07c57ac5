// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {DinTasks} from "./DinTasks.sol";
import {DinRounds} from "./DinRounds.sol";
import {MedianCheck} from "./MedianCheck.sol";

/// @title DinScoring
/// @notice Final scoring of DIN tasks (BlockFlow-style) and pull payments of the deposit.
/// @dev After the last round every enrolled evaluator commits to a vector of scores, one per
/// participant (fixed point, SCALE = 1.0), and reveals it in pages (gas per transaction bounded by
/// MAX_PAGE). Then anyone settles each participant by proposing the median of the complete
/// reveals; the contract checks it by counting below/equal/above (no sort). The participant's
/// score is that median; an evaluator earns its fee share for a participant only if its score is
/// within HALF (0.5) of the median, else 0 for that participant. Once every participant is
/// settled, participants claim `reward * median / sum(medians)`, evaluators claim
/// `evaluatorFee * agreed / N`, and the owner reclaims the unearned fees (and the reward if every
/// median is 0). Every claim is one transaction, once; DinTasks caps the total at the deposit.
///
/// Score commitment: keccak256(abi.encode(taskId, evaluator, h, salt)) where h folds the scores
/// in participant order: h_0 = 0, h_{i+1} = keccak256(abi.encode(h_i, score_i)).
contract DinScoring {
    uint32 public constant SCALE = 1_000_000;
    uint32 public constant HALF = 500_000;
    /// @notice Most scores per reveal transaction.
    uint256 public constant MAX_PAGE = 512;

    struct Reveal {
        bytes32 commitment;
        bytes32 running; // fold of the scores revealed so far
        uint32 revealed; // number of scores revealed so far
        uint32 agreed; // participants whose median this evaluator's score is within HALF of
        bool complete;
        bool feeClaimed;
    }

    struct Totals {
        uint32 settled;
        uint256 sumMedians;
        uint256 sumAgreed;
        bool ownerRefunded;
    }

    DinTasks public immutable tasks;
    DinRounds public immutable rounds;

    mapping(uint256 taskId => mapping(address evaluator => Reveal)) private _reveals;
    /// @dev 8 scores of 32 bits per word: word w holds participants 8w .. 8w + 7
    mapping(uint256 taskId => mapping(address evaluator => mapping(uint256 word => uint256))) private _packed;
    /// @dev participant index => median + 1 (0 = not settled)
    mapping(uint256 taskId => mapping(uint256 index => uint256)) private _median;
    mapping(uint256 taskId => Totals) private _totals;
    mapping(uint256 taskId => mapping(address participant => bool)) public rewardClaimed;

    event ScoresCommitted(uint256 indexed taskId, address indexed evaluator);
    event ScoresRevealed(uint256 indexed taskId, address indexed evaluator, uint256 offset, uint256 count, bool complete);
    event ParticipantSettled(
        uint256 indexed taskId, uint256 indexed index, address indexed participant, uint32 median, uint256 agreeing
    );
    event RewardClaimed(uint256 indexed taskId, address indexed participant, uint256 amount);
    event FeeClaimed(uint256 indexed taskId, address indexed evaluator, uint256 amount);
    event OwnerRefunded(uint256 indexed taskId, address indexed owner, uint256 amount);

    error OutsideWindow(uint256 taskId, uint256 round, DinTasks.Stage stage, uint64 start, uint64 end);
    error NotEvaluator(uint256 taskId, address account);
    error ZeroCommitment();
    error AlreadyCommitted(uint256 taskId, address evaluator);
    error NotCommitted(uint256 taskId, address evaluator);
    error RevealComplete(uint256 taskId, address evaluator);
    error BadPage(uint256 offset, uint256 count, uint256 participants);
    error ScoreOutOfRange(uint256 index, uint32 score);
    error CommitmentMismatch(uint256 taskId, address evaluator);
    error ParticipantOutOfRange(uint256 taskId, uint256 index, uint256 participants);
    error AlreadySettled(uint256 taskId, uint256 index);
    error NotMedian(uint32 proposed, uint256 below, uint256 equal, uint256 above);
    error NotAllSettled(uint256 taskId, uint256 settled, uint256 participants);
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

    /// @notice Commit to the caller's score vector during the ScoreCommit stage.
    /// @param commitment keccak256(abi.encode(taskId, evaluator, foldedScores, salt)).
    function commitScores(uint256 taskId, bytes32 commitment) external {
        _requireWindow(taskId, DinTasks.Stage.ScoreCommit);
        if (!rounds.isEvaluator(taskId, msg.sender)) revert NotEvaluator(taskId, msg.sender);
        if (commitment == bytes32(0)) revert ZeroCommitment();
        Reveal storage r = _reveals[taskId][msg.sender];
        if (r.commitment != bytes32(0)) revert AlreadyCommitted(taskId, msg.sender);
        r.commitment = commitment;
        emit ScoresCommitted(taskId, msg.sender);
    }

    /// @notice Reveal the next page of the caller's scores (participants `offset .. offset+n-1`,
    /// where `offset` is the number already revealed). Pages other than the last must hold a
    /// multiple of 8 scores. The last page checks the commitment with `salt`.
    function revealScores(uint256 taskId, uint32[] calldata scores, bytes32 salt) external {
        _requireWindow(taskId, DinTasks.Stage.ScoreReveal);
        Reveal storage r = _reveals[taskId][msg.sender];
        if (r.commitment == bytes32(0)) revert NotCommitted(taskId, msg.sender);
        if (r.complete) revert RevealComplete(taskId, msg.sender);
        uint256 n = tasks.participantCount(taskId);
        uint256 offset = r.revealed;
        uint256 count = scores.length;
        bool last = offset + count == n;
        if (count == 0 || count > MAX_PAGE || offset + count > n || (!last && count % 8 != 0)) {
            revert BadPage(offset, count, n);
        }
        bytes32 running = r.running;
        mapping(uint256 => uint256) storage packed = _packed[taskId][msg.sender];
        uint256 word;
        for (uint256 i = 0; i < count; i++) {
            uint32 s = scores[i];
            if (s > SCALE) revert ScoreOutOfRange(offset + i, s);
            running = keccak256(abi.encode(running, s));
            uint256 idx = offset + i;
            word |= uint256(s) << (32 * (idx % 8));
            if (idx % 8 == 7 || i == count - 1) {
                packed[idx / 8] = word;
                word = 0;
            }
        }
        r.running = running;
        r.revealed = uint32(offset + count);
        if (last) {
            if (keccak256(abi.encode(taskId, msg.sender, running, salt)) != r.commitment) {
                revert CommitmentMismatch(taskId, msg.sender);
            }
            r.complete = true;
        }
        emit ScoresRevealed(taskId, msg.sender, offset, count, last);
    }

    // ------------------------------------------------------------------ settlement

    /// @notice Settle participant `index` with `proposedMedian`, the lower median of the complete
    /// reveals' scores for it (0 if nobody revealed completely). Anyone may call, once per
    /// participant, from the Settle stage on. Loops over enrolled evaluators (<= MAX_EVALUATORS).
    function settleParticipant(uint256 taskId, uint256 index, uint32 proposedMedian) external {
        _requireWindow(taskId, DinTasks.Stage.Settle);
        uint256 n = tasks.participantCount(taskId);
        if (index >= n) revert ParticipantOutOfRange(taskId, index, n);
        if (_median[taskId][index] != 0) revert AlreadySettled(taskId, index);
        (address[] memory evs, uint32[] memory values) = _scoresFor(taskId, index);
        if (values.length == 0) {
            if (proposedMedian != 0) revert NotMedian(proposedMedian, 0, 0, 0);
        } else if (!MedianCheck.isLowerMedian(values, proposedMedian)) {
            (uint256 below, uint256 equal, uint256 above) = MedianCheck.count(values, proposedMedian);
            revert NotMedian(proposedMedian, below, equal, above);
        }
        uint256 agreeing;
        for (uint256 i = 0; i < values.length; i++) {
            uint32 v = values[i];
            uint32 d = v > proposedMedian ? v - proposedMedian : proposedMedian - v;
            if (d <= HALF) {
                _reveals[taskId][evs[i]].agreed += 1;
                agreeing++;
            }
        }
        _median[taskId][index] = uint256(proposedMedian) + 1;
        Totals storage t = _totals[taskId];
        t.settled += 1;
        t.sumMedians += proposedMedian;
        t.sumAgreed += agreeing;
        emit ParticipantSettled(taskId, index, tasks.participantAt(taskId, index), proposedMedian, agreeing);
    }

    // ------------------------------------------------------------------ pull payments

    /// @notice Claim the caller's share of the reward: reward * median / sum of medians.
    function claimReward(uint256 taskId) external {
        if (!tasks.isParticipant(taskId, msg.sender)) revert NotParticipant(taskId, msg.sender);
        _requireAllSettled(taskId);
        if (rewardClaimed[taskId][msg.sender]) revert AlreadyClaimed(taskId, msg.sender);
        uint256 amount = rewardOf(taskId, msg.sender);
        if (amount == 0) revert NothingToClaim(taskId, msg.sender);
        rewardClaimed[taskId][msg.sender] = true;
        emit RewardClaimed(taskId, msg.sender, amount);
        tasks.pay(taskId, msg.sender, amount);
    }

    /// @notice Claim the caller's evaluator fee: evaluatorFee * agreed / N.
    function claimFee(uint256 taskId) external {
        _requireAllSettled(taskId);
        Reveal storage r = _reveals[taskId][msg.sender];
        if (r.feeClaimed) revert AlreadyClaimed(taskId, msg.sender);
        uint256 amount = feeOf(taskId, msg.sender);
        if (amount == 0) revert NothingToClaim(taskId, msg.sender);
        r.feeClaimed = true;
        emit FeeClaimed(taskId, msg.sender, amount);
        tasks.pay(taskId, msg.sender, amount);
    }

    /// @notice Return to the task owner the fees no evaluator earned, plus the whole reward when
    /// every median is 0. Anyone may trigger it, once, after all participants are settled.
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

    /// @notice The reward `participant` can claim once all are settled (0 before).
    function rewardOf(uint256 taskId, address participant) public view returns (uint256) {
        Totals storage t = _totals[taskId];
        if (t.sumMedians == 0 || t.settled < tasks.participantCount(taskId)) return 0;
        uint256 m = _median[taskId][tasks.participantIndex(taskId, participant)] - 1;
        return tasks.params(taskId).reward * m / t.sumMedians;
    }

    /// @notice The fee `evaluator` can claim once all are settled (0 before or without a complete reveal).
    function feeOf(uint256 taskId, address evaluator) public view returns (uint256) {
        uint256 n = tasks.participantCount(taskId);
        Reveal storage r = _reveals[taskId][evaluator];
        if (n == 0 || !r.complete || _totals[taskId].settled < n) return 0;
        return tasks.params(taskId).evaluatorFee * r.agreed / n;
    }

    /// @notice What `refundOwner` pays (0 before all are settled).
    function ownerRefundOf(uint256 taskId) public view returns (uint256) {
        uint256 n = tasks.participantCount(taskId);
        Totals storage t = _totals[taskId];
        if (t.settled < n) return 0;
        DinTasks.TaskParams memory p = tasks.params(taskId);
        uint256 earnedFees = n == 0 ? 0 : p.evaluatorFee * t.sumAgreed / n;
        uint256 amount = p.evaluatorFee * p.maxEvaluators - earnedFees;
        if (t.sumMedians == 0) amount += p.reward;
        return amount;
    }

    /// @notice The scores the complete reveals gave participant `index`, with their evaluators.
    function scoresFor(uint256 taskId, uint256 index)
        external
        view
        returns (address[] memory evaluators, uint32[] memory scores)
    {
        return _scoresFor(taskId, index);
    }

    /// @notice Reveal progress of `evaluator`.
    function revealOf(uint256 taskId, address evaluator)
        external
        view
        returns (bool committed, uint256 revealed, bool complete, uint256 agreed, bool feeClaimed)
    {
        Reveal storage r = _reveals[taskId][evaluator];
        return (r.commitment != bytes32(0), r.revealed, r.complete, r.agreed, r.feeClaimed);
    }

    /// @notice Settled median of participant `index` (`settled` false before settlement).
    function medianOf(uint256 taskId, uint256 index) external view returns (bool settled, uint32 median) {
        uint256 v = _median[taskId][index];
        return (v != 0, v == 0 ? 0 : uint32(v - 1));
    }

    /// @notice Settlement totals of `taskId`.
    function totals(uint256 taskId)
        external
        view
        returns (uint256 settled, uint256 sumMedians, uint256 sumAgreed, bool ownerRefunded)
    {
        Totals storage t = _totals[taskId];
        return (t.settled, t.sumMedians, t.sumAgreed, t.ownerRefunded);
    }

    // ------------------------------------------------------------------ internals

    function _scoresFor(uint256 taskId, uint256 index)
        private
        view
        returns (address[] memory evs, uint32[] memory values)
    {
        uint256 e = rounds.evaluatorCount(taskId);
        evs = new address[](e);
        values = new uint32[](e);
        uint256 k;
        for (uint256 i = 0; i < e; i++) {
            address ev = rounds.evaluatorAt(taskId, i);
            if (!_reveals[taskId][ev].complete) continue;
            evs[k] = ev;
            values[k] = uint32(_packed[taskId][ev][index / 8] >> (32 * (index % 8)));
            k++;
        }
        assembly {
            mstore(evs, k)
            mstore(values, k)
        }
    }

    function _requireAllSettled(uint256 taskId) private view {
        uint256 n = tasks.participantCount(taskId);
        uint256 settled = _totals[taskId].settled;
        if (settled < n) revert NotAllSettled(taskId, settled, n);
    }

    function _requireWindow(uint256 taskId, DinTasks.Stage stage) private view {
        (uint64 start, uint64 end) = tasks.window(taskId, 0, stage);
        if (block.timestamp < start || block.timestamp >= end) revert OutsideWindow(taskId, 0, stage, start, end);
    }
}
