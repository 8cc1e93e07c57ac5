// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title DinTasks
/// @notice Registry of DIN federated-learning tasks: a Model Owner's deposit and parameters, the
/// phase schedule, participant registration (with a Sybil bond) and per-round update commit-reveal.
/// @dev Holds every task's deposit and participant bonds. Rewards leave only through `pay`, called
/// by the scoring contract (PAYER_ROLE), and never more than the task's deposit in total.
///
/// Schedule (all times are block timestamps, seconds): registration runs until `registrationEnd`.
/// Round r (0-based) starts at `registrationEnd + r * roundLength` and has six stages:
/// Submit (`submitDuration`), UpdateReveal (`revealDuration`), AggregateCommit, AggregateReveal,
/// GlobalCommit, GlobalReveal (each `commitDuration` / `revealDuration`); the round's scores are
/// committed in GlobalCommit and revealed in GlobalReveal (DinScoring). After the last round:
/// Close (`commitDuration`: the last votes and scores are settled), then Settle, open-ended.
/// Windows are half-open: [start, end).
///
/// Concealed test set: the owner commits at creation to `testSliceRoot`, the root of an
/// OpenZeppelin StandardMerkleTree over one leaf per round, `(uint256 round, bytes32 sliceHash)`
/// with `sliceHash = keccak256(slice bytes)`. Round r's slice may only be revealed
/// (`revealTestSlice`: CID, hash, Merkle proof) after round r's updates are revealed, during its
/// AggregateCommit or AggregateReveal stage; evaluators score round r on slice r only, checking its
/// bytes against the hash. A slice not revealed by the end of AggregateReveal is withheld: DinScoring
/// then scores that round in the participants' favour (see its NatSpec), so withholding gains the
/// owner nothing.
///
/// Updates are committed, then revealed: in Submit a participant commits
/// keccak256(abi.encode(taskId, round, participant, cid, salt)) (`commitUpdate`); in UpdateReveal
/// it reveals the CID and salt (`revealUpdate`). No update CID is public before the Submit stage
/// has closed, so nobody can copy an update into its own commitment. The commitments are ordered
/// by their `UpdateCommitted` events (block, log index), and when two revealed updates are copies
/// of each other the evaluators score the one committed later 0 (copy rule, see docs/din.md). A
/// commitment that is not revealed in UpdateReveal counts as no submission. One storage word per
/// participant and round: the commitment, then the REVEALED marker (the CID lives in the event).
///
/// Secure aggregation (tasks with `secureAggregation`): each participant publishes a 32-byte
/// X25519 public key during registration (`setMaskKey`, authenticated by its account, fixed for the
/// task); the members of a subgroup are its participants with a key. Members upload pairwise-masked
/// updates (Bonawitz et al. 2017, see ml/din/secagg.py) so evaluators learn only subgroup sums.
/// After a round's UpdateReveal stage the dropouts (keyed members with no revealed update, whether
/// they committed or not) are a public fact;
/// during AggregateCommit each survivor posts its pairwise seeds with exactly those members
/// (`postRecoverySeeds`, refused for anyone who did submit, and refused when fewer than
/// MIN_SURVIVORS survived, because the sum would then expose an update). A subgroup is
/// aggregatable once every survivor has posted (or nobody dropped); DinRounds refuses aggregate
/// commitments before that and closes a never-aggregatable subgroup without slashing anyone.
contract DinTasks is AccessControl {
    using SafeERC20 for IERC20;

    /// @notice Role of the scoring contract, the only one allowed to pay rewards out.
    bytes32 public constant PAYER_ROLE = keccak256("PAYER_ROLE");
    /// @notice Role of the evaluator registry, the only one allowed to cancel a task (it knows
    /// whether enough evaluators enrolled).
    bytes32 public constant CANCELLER_ROLE = keccak256("CANCELLER_ROLE");
    /// @notice Upper bound on evaluators per subgroup: per-subgroup votes and medians loop over them.
    /// The number of evaluators per task is the owner's `maxEvaluators` (no protocol cap).
    uint16 public constant MAX_EVALUATORS_PER_SUBGROUP = 32;
    /// @notice Upper bound on participants per subgroup: per-subgroup score settlement loops over them.
    uint16 public constant MAX_SUBGROUP_SIZE = 128;
    /// @notice What an update's storage word holds once revealed (never accepted as a commitment).
    bytes32 public constant REVEALED = bytes32(uint256(1));
    /// @notice Fewest members that must submit in a subgroup before masks may be removed.
    uint32 public constant MIN_SURVIVORS = 2;

    enum Stage {
        Submit,
        UpdateReveal,
        AggregateCommit,
        AggregateReveal,
        GlobalCommit,
        GlobalReveal,
        Close,
        Settle
    }

    /// @notice What a Model Owner chooses when creating a task.
    struct TaskParams {
        bytes32 testSliceRoot; // Merkle root over the per-round test slices (round, keccak256(slice))
        uint256 reward; // paid to participants in proportion to their median score
        uint256 evaluatorFee; // most one evaluator can earn (all its scores near the median)
        uint256 participantBond; // Sybil bond per participant, returned after scoring
        uint256 minEvaluatorStake; // active stake in Staking needed to enrol as evaluator
        uint256 slashAmount; // slashed per evaluator offence (capped at its slashable stake)
        uint64 registrationEnd; // timestamp: registration closes, round 0 starts
        uint32 submitDuration; // seconds of each round's Submit stage
        uint32 commitDuration; // seconds of every commit stage
        uint32 revealDuration; // seconds of every reveal stage
        uint16 rounds; // number of training rounds
        uint16 subgroupSize; // participants per subgroup (default 10)
        uint16 evaluatorsPerSubgroup; // evaluators assigned to each subgroup per round
        uint16 maxEvaluators; // cap on enrolled evaluators (the deposit pays their fees)
        bool secureAggregation; // participants upload pairwise-masked updates (see the contract NatSpec)
    }

    /// @dev Secure-aggregation counters of one subgroup in one round.
    struct MaskRound {
        uint32 submitted; // members that revealed an update (counted in clear tasks too)
        uint32 recoveryPosts; // survivors that posted their recovery seeds
    }

    /// @notice What the other DIN contracts read on every call, from two storage words.
    struct Shape {
        uint32 participants;
        uint32 groups; // subgroups: ceil(participants / subgroupSize)
        uint16 subgroupSize;
        uint16 evaluatorsPerSubgroup;
        uint16 roundsHeld;
        uint16 slicesRevealed;
    }

    struct Task {
        address owner;
        uint32 participantCount;
        uint16 roundsHeld; // p.rounds, or fewer once the owner ended the task early
        uint16 slicesRevealed; // test slices revealed so far (the rounds that can be scored)
        uint64 createdAt;
        uint256 deposit;
        uint256 paidOut;
        bytes32 genesisHash; // keccak256 of the genesis model CID string
        TaskParams p;
    }

    IERC20 public immutable token;
    uint256 public taskCount;

    mapping(uint256 taskId => Task) private _tasks;
    /// @dev participant => index + 1 (0 = not registered)
    mapping(uint256 taskId => mapping(address => uint256)) private _participantSlot;
    mapping(uint256 taskId => address[]) private _participants;
    /// @dev The participant's update commitment for the round; REVEALED once revealed; 0 = none.
    mapping(uint256 taskId => mapping(uint256 round => mapping(address => bytes32))) private _updates;
    mapping(uint256 taskId => mapping(address => bool)) public bondReturned;
    /// @notice keccak256 of round `round`'s revealed test slice (0 = not revealed).
    mapping(uint256 taskId => mapping(uint256 round => bytes32)) public testSlice;
    /// @notice Whether the task was cancelled (it never got enough participants or evaluators).
    mapping(uint256 taskId => bool) public cancelled;
    /// @notice X25519 public mask key of a participant (secure-aggregation tasks; 0 = none).
    mapping(uint256 taskId => mapping(address => bytes32)) public maskKeyOf;
    mapping(uint256 taskId => mapping(uint256 group => uint32)) private _keyedMembers;
    mapping(uint256 taskId => mapping(uint256 round => mapping(uint256 group => MaskRound))) private _maskRounds;
    /// @notice Whether `participant` posted its recovery seeds for `round`.
    mapping(uint256 taskId => mapping(uint256 round => mapping(address => bool))) public recoveryPosted;

    event TaskCreated(
        uint256 indexed taskId, address indexed owner, uint256 deposit, string genesisCid, TaskParams params
    );
    event ParticipantRegistered(uint256 indexed taskId, address indexed participant, uint256 index, uint256 subgroup);
    event UpdateCommitted(uint256 indexed taskId, uint256 indexed round, address indexed participant, uint256 subgroup);
    event UpdateRevealed(
        uint256 indexed taskId, uint256 indexed round, address indexed participant, uint256 subgroup, string cid
    );
    event Paid(uint256 indexed taskId, address indexed to, uint256 amount, uint256 paidOut);
    event BondReturned(uint256 indexed taskId, address indexed participant, uint256 amount);
    event TestSliceRevealed(uint256 indexed taskId, uint256 indexed round, bytes32 sliceHash, string cid);
    event TaskCancelled(uint256 indexed taskId, uint256 participants, uint256 evaluators);
    event TaskEndedEarly(uint256 indexed taskId, uint256 roundsHeld);
    event DepositReclaimed(uint256 indexed taskId, address indexed owner, uint256 amount);
    event MaskKeySet(uint256 indexed taskId, address indexed participant, uint256 subgroup, bytes32 publicKey);
    event RecoverySeedsPosted(
        uint256 indexed taskId,
        uint256 indexed round,
        address indexed survivor,
        uint256 subgroup,
        address[] dropped,
        bytes32[] seeds
    );

    error UnknownTask(uint256 taskId);
    error InvalidParams(string what);
    error EmptyCid();
    error RegistrationClosed(uint256 taskId, uint64 registrationEnd);
    error AlreadyRegistered(uint256 taskId, address participant);
    error NotParticipant(uint256 taskId, address account);
    error RoundOutOfRange(uint256 taskId, uint256 round, uint16 rounds);
    error OutsideWindow(uint256 taskId, uint256 round, Stage stage, uint64 start, uint64 end);
    error InvalidCommitment(bytes32 commitment);
    error UpdateAlreadyCommitted(uint256 taskId, uint256 round, address participant);
    error UpdateNotCommitted(uint256 taskId, uint256 round, address participant);
    error UpdateAlreadyRevealed(uint256 taskId, uint256 round, address participant);
    error UpdateCommitmentMismatch(uint256 taskId, uint256 round, address participant);
    error PayoutExceedsDeposit(uint256 taskId, uint256 amount, uint256 remaining);
    error BondAlreadyReturned(uint256 taskId, address participant);
    error NotOwner(uint256 taskId, address account);
    error SliceAlreadyRevealed(uint256 taskId, uint256 round);
    error InvalidSliceProof(uint256 taskId, uint256 round, bytes32 sliceHash);
    error NotSecureAggregation(uint256 taskId);
    error TaskIsCancelled(uint256 taskId);
    error NotCancelled(uint256 taskId);
    error DepositAlreadyReclaimed(uint256 taskId);
    error ZeroMaskKey();
    error MaskKeyAlreadySet(uint256 taskId, address participant);
    error MaskKeyMissing(uint256 taskId, address participant);
    error NotSurvivor(uint256 taskId, uint256 round, address account);
    error RecoveryAlreadyPosted(uint256 taskId, uint256 round, address survivor);
    error TooFewSurvivors(uint256 taskId, uint256 round, uint256 group, uint256 survivors);
    error DroppedListMismatch(uint256 taskId, uint256 round, uint256 group, uint256 given, uint256 dropped);
    error NotDropped(uint256 taskId, uint256 round, address member);
    error RoundAlreadyStarted(uint256 taskId, uint256 round, uint64 start);

    /// @param token_ LoyalToken, the currency of deposits, bonds and rewards.
    /// @param admin receives DEFAULT_ADMIN_ROLE (grants PAYER_ROLE to the scoring contract).
    constructor(IERC20 token_, address admin) {
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ Model Owner

    /// @notice Create a task; pulls `reward + evaluatorFee * maxEvaluators` from the caller
    /// (needs a prior ERC-20 approval to this contract).
    /// @param p task parameters (see TaskParams).
    /// @param genesisCid content id of the genesis model in the content store.
    /// @return taskId the new task's id (0-based, sequential).
    function createTask(TaskParams calldata p, string calldata genesisCid) external returns (uint256 taskId) {
        _validate(p);
        if (bytes(genesisCid).length == 0) revert EmptyCid();
        uint256 deposit = p.reward + p.evaluatorFee * p.maxEvaluators;
        taskId = taskCount++;
        Task storage t = _tasks[taskId];
        t.owner = msg.sender;
        t.roundsHeld = p.rounds;
        t.createdAt = uint64(block.timestamp);
        t.deposit = deposit;
        t.genesisHash = keccak256(bytes(genesisCid));
        t.p = p;
        emit TaskCreated(taskId, msg.sender, deposit, genesisCid, p);
        token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    function _validate(TaskParams calldata p) private view {
        if (p.rounds == 0) revert InvalidParams("rounds");
        if (p.subgroupSize == 0 || p.subgroupSize > MAX_SUBGROUP_SIZE) revert InvalidParams("subgroupSize");
        if (p.maxEvaluators == 0) revert InvalidParams("maxEvaluators");
        if (
            p.evaluatorsPerSubgroup == 0 || p.evaluatorsPerSubgroup > p.maxEvaluators
                || p.evaluatorsPerSubgroup > MAX_EVALUATORS_PER_SUBGROUP
        ) {
            revert InvalidParams("evaluatorsPerSubgroup");
        }
        if (p.submitDuration == 0 || p.commitDuration == 0 || p.revealDuration == 0) {
            revert InvalidParams("duration");
        }
        if (p.registrationEnd <= block.timestamp) revert InvalidParams("registrationEnd");
        if (p.reward == 0) revert InvalidParams("reward");
    }

    /// @notice Reveal round `round`'s test slice: its CID, its keccak256 and the Merkle proof of the
    /// leaf `(round, sliceHash)` under `testSliceRoot`. Owner only, once per round, only during the
    /// round's AggregateCommit or AggregateReveal stage (after the round's updates were committed
    /// and revealed, before evaluators score). Evaluators check the blob against `sliceHash`.
    /// @param proof sibling hashes from the leaf up (OpenZeppelin MerkleProof).
    function revealTestSlice(
        uint256 taskId,
        uint256 round,
        string calldata cid,
        bytes32 sliceHash,
        bytes32[] calldata proof
    ) external {
        Task storage t = _task(taskId);
        if (msg.sender != t.owner) revert NotOwner(taskId, msg.sender);
        if (round >= t.roundsHeld) revert RoundOutOfRange(taskId, round, t.roundsHeld);
        if (cancelled[taskId]) revert TaskIsCancelled(taskId);
        (uint64 start, uint64 end) = sliceWindow(taskId, round);
        if (block.timestamp < start || block.timestamp >= end) {
            revert OutsideWindow(taskId, round, Stage.AggregateCommit, start, end);
        }
        if (bytes(cid).length == 0) revert EmptyCid();
        if (testSlice[taskId][round] != bytes32(0)) revert SliceAlreadyRevealed(taskId, round);
        if (sliceHash == bytes32(0) || !MerkleProof.verifyCalldata(proof, t.p.testSliceRoot, sliceLeaf(round, sliceHash)))
        {
            revert InvalidSliceProof(taskId, round, sliceHash);
        }
        testSlice[taskId][round] = sliceHash;
        t.slicesRevealed += 1;
        emit TestSliceRevealed(taskId, round, sliceHash, cid);
    }

    /// @notice The Merkle leaf of round `round`'s slice: OpenZeppelin StandardMerkleTree's
    /// keccak256(keccak256(abi.encode(round, sliceHash))).
    function sliceLeaf(uint256 round, bytes32 sliceHash) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(round, sliceHash))));
    }

    /// @notice When round `round`'s slice may be revealed: [start of AggregateCommit, end of AggregateReveal).
    function sliceWindow(uint256 taskId, uint256 round) public view returns (uint64 start, uint64 end) {
        (start,) = window(taskId, round, Stage.AggregateCommit);
        (, end) = window(taskId, round, Stage.AggregateReveal);
    }

    /// @notice Whether round `round`'s slice was withheld: its reveal window is over and it was not revealed.
    function sliceWithheld(uint256 taskId, uint256 round) external view returns (bool) {
        (, uint64 end) = sliceWindow(taskId, round);
        return block.timestamp >= end && testSlice[taskId][round] == bytes32(0);
    }

    /// @notice End the task after `round` (owner only, before round `round + 1` starts): the task
    /// then holds `round + 1` rounds; Close and Settle move forward accordingly, and scores and
    /// pay-outs cover the rounds held (the whole reward and fee budget is still paid by them).
    function endAfterRound(uint256 taskId, uint256 round) external {
        Task storage t = _task(taskId);
        if (msg.sender != t.owner) revert NotOwner(taskId, msg.sender);
        if (cancelled[taskId]) revert TaskIsCancelled(taskId);
        if (round + 1 >= t.roundsHeld) revert RoundOutOfRange(taskId, round + 1, t.roundsHeld);
        (uint64 start,) = window(taskId, round + 1, Stage.Submit);
        if (block.timestamp >= start) revert RoundAlreadyStarted(taskId, round + 1, start);
        t.roundsHeld = uint16(round + 1);
        emit TaskEndedEarly(taskId, round + 1);
    }

    // ------------------------------------------------------------------ participants

    /// @notice Register the caller as a participant of `taskId`, pulling the task's bond.
    /// @dev One registration per account; the bond makes many accounts cost capital.
    function register(uint256 taskId) external {
        Task storage t = _task(taskId);
        if (block.timestamp >= t.p.registrationEnd) revert RegistrationClosed(taskId, t.p.registrationEnd);
        if (_participantSlot[taskId][msg.sender] != 0) revert AlreadyRegistered(taskId, msg.sender);
        uint256 index = _participants[taskId].length;
        _participants[taskId].push(msg.sender);
        _participantSlot[taskId][msg.sender] = index + 1;
        t.participantCount = uint32(index + 1);
        emit ParticipantRegistered(taskId, msg.sender, index, index / t.p.subgroupSize);
        if (t.p.participantBond > 0) token.safeTransferFrom(msg.sender, address(this), t.p.participantBond);
    }

    /// @notice Commit to the caller's model update for `round` during its Submit stage, once per
    /// round. The CID stays hidden until `revealUpdate`, so no one can copy it into a commitment.
    /// @param commitment keccak256(abi.encode(taskId, round, participant, cid, salt)).
    function commitUpdate(uint256 taskId, uint256 round, bytes32 commitment) external {
        Task storage t = _task(taskId);
        uint256 slot = _requireParticipantRound(t, taskId, round, Stage.Submit);
        if (commitment == bytes32(0) || commitment == REVEALED) revert InvalidCommitment(commitment);
        mapping(address => bytes32) storage updates = _updates[taskId][round];
        if (updates[msg.sender] != bytes32(0)) revert UpdateAlreadyCommitted(taskId, round, msg.sender);
        if (t.p.secureAggregation && maskKeyOf[taskId][msg.sender] == bytes32(0)) {
            revert MaskKeyMissing(taskId, msg.sender);
        }
        updates[msg.sender] = commitment;
        emit UpdateCommitted(taskId, round, msg.sender, (slot - 1) / t.p.subgroupSize);
    }

    /// @notice Reveal the CID the caller committed to for `round`, during the round's UpdateReveal
    /// stage (a late reveal is refused: the commitment then counts as no submission).
    /// @param cid the update's content id.
    /// @param salt the salt of the commitment.
    function revealUpdate(uint256 taskId, uint256 round, string calldata cid, bytes32 salt) external {
        Task storage t = _task(taskId);
        uint256 slot = _requireParticipantRound(t, taskId, round, Stage.UpdateReveal);
        mapping(address => bytes32) storage updates = _updates[taskId][round];
        bytes32 commitment = updates[msg.sender];
        if (commitment == bytes32(0)) revert UpdateNotCommitted(taskId, round, msg.sender);
        if (commitment == REVEALED) revert UpdateAlreadyRevealed(taskId, round, msg.sender);
        if (bytes(cid).length == 0) revert EmptyCid();
        if (keccak256(abi.encode(taskId, round, msg.sender, cid, salt)) != commitment) {
            revert UpdateCommitmentMismatch(taskId, round, msg.sender);
        }
        uint256 group = (slot - 1) / t.p.subgroupSize;
        _maskRounds[taskId][round][group].submitted += 1;
        updates[msg.sender] = REVEALED;
        emit UpdateRevealed(taskId, round, msg.sender, group, cid);
    }

    /// @dev The round exists, the task runs, `stage` of `round` is open and the caller is a
    /// participant; returns its slot (index + 1).
    function _requireParticipantRound(Task storage t, uint256 taskId, uint256 round, Stage stage)
        private
        view
        returns (uint256 slot)
    {
        if (round >= t.roundsHeld) revert RoundOutOfRange(taskId, round, t.roundsHeld);
        if (cancelled[taskId]) revert TaskIsCancelled(taskId);
        _requireWindow(taskId, round, stage);
        slot = _participantSlot[taskId][msg.sender];
        if (slot == 0) revert NotParticipant(taskId, msg.sender);
    }

    // ------------------------------------------------------------------ secure aggregation

    /// @notice Publish the caller's X25519 public mask key for `taskId` (secure-aggregation tasks),
    /// once, during registration. The key is fixed for the whole task; masks differ per round
    /// through the mask context (chain id, this contract, task, round, subgroup).
    /// @param publicKey the raw 32-byte X25519 public key.
    function setMaskKey(uint256 taskId, bytes32 publicKey) external {
        Task storage t = _task(taskId);
        if (!t.p.secureAggregation) revert NotSecureAggregation(taskId);
        if (block.timestamp >= t.p.registrationEnd) revert RegistrationClosed(taskId, t.p.registrationEnd);
        uint256 slot = _participantSlot[taskId][msg.sender];
        if (slot == 0) revert NotParticipant(taskId, msg.sender);
        if (publicKey == bytes32(0)) revert ZeroMaskKey();
        if (maskKeyOf[taskId][msg.sender] != bytes32(0)) revert MaskKeyAlreadySet(taskId, msg.sender);
        uint256 group = (slot - 1) / t.p.subgroupSize;
        maskKeyOf[taskId][msg.sender] = publicKey;
        _keyedMembers[taskId][group] += 1;
        emit MaskKeySet(taskId, msg.sender, group, publicKey);
    }

    /// @notice Post the caller's pairwise seeds with the members of its subgroup that dropped out
    /// of `round` (keyed members with no revealed update), during the round's AggregateCommit stage.
    /// @dev The caller must have revealed its update in `round`. A member that committed but did not
    /// reveal is dropped like one that never committed: its CID was never public (the daemon
    /// publishes the masked blob only when it reveals), so its seeds unmask nothing that exists. `dropped` must list every dropped member of
    /// the subgroup exactly once, in strictly increasing address order, so a post is complete by
    /// construction; a member that did submit is refused (its masked update is public, so its
    /// seeds would unmask it). Refused when fewer than MIN_SURVIVORS members submitted. The loop
    /// is bounded by the subgroup size.
    /// @param dropped the dropped members, ascending.
    /// @param seeds `seeds[i]` is the caller's pair seed with `dropped[i]` for this round's context.
    function postRecoverySeeds(uint256 taskId, uint256 round, address[] calldata dropped, bytes32[] calldata seeds)
        external
    {
        Task storage t = _task(taskId);
        if (!t.p.secureAggregation) revert NotSecureAggregation(taskId);
        if (round >= t.roundsHeld) revert RoundOutOfRange(taskId, round, t.roundsHeld);
        _requireWindow(taskId, round, Stage.AggregateCommit);
        uint256 slot = _participantSlot[taskId][msg.sender];
        if (slot == 0 || _updates[taskId][round][msg.sender] != REVEALED) {
            revert NotSurvivor(taskId, round, msg.sender);
        }
        if (recoveryPosted[taskId][round][msg.sender]) revert RecoveryAlreadyPosted(taskId, round, msg.sender);
        uint256 group = (slot - 1) / t.p.subgroupSize;
        MaskRound storage mr = _maskRounds[taskId][round][group];
        if (mr.submitted < MIN_SURVIVORS) revert TooFewSurvivors(taskId, round, group, mr.submitted);
        uint256 droppedCount = _keyedMembers[taskId][group] - mr.submitted;
        if (dropped.length != droppedCount || seeds.length != droppedCount) {
            revert DroppedListMismatch(taskId, round, group, dropped.length, droppedCount);
        }
        _requireDropped(taskId, round, group, t.p.subgroupSize, dropped);
        recoveryPosted[taskId][round][msg.sender] = true;
        mr.recoveryPosts += 1;
        emit RecoverySeedsPosted(taskId, round, msg.sender, group, dropped, seeds);
    }

    /// @dev Each of `dropped` (ascending, distinct) is a keyed member of `group` with no update in `round`.
    function _requireDropped(uint256 taskId, uint256 round, uint256 group, uint256 size, address[] calldata dropped)
        private
        view
    {
        address previous;
        for (uint256 i = 0; i < dropped.length; i++) {
            address d = dropped[i];
            uint256 slot = _participantSlot[taskId][d];
            if (
                d <= previous || slot == 0 || (slot - 1) / size != group || maskKeyOf[taskId][d] == bytes32(0)
                    || _updates[taskId][round][d] == REVEALED
            ) revert NotDropped(taskId, round, d);
            previous = d;
        }
    }

    /// @notice Whether the evaluators of `group` can aggregate `round`: in clear tasks when at least
    /// one member submitted; in secure-aggregation tasks when at least MIN_SURVIVORS members
    /// submitted and either nobody dropped or every survivor posted its recovery seeds.
    function aggregatable(uint256 taskId, uint256 round, uint256 group) external view returns (bool) {
        Task storage t = _task(taskId);
        MaskRound storage mr = _maskRounds[taskId][round][group];
        if (!t.p.secureAggregation) return mr.submitted > 0;
        if (mr.submitted < MIN_SURVIVORS) return false;
        return mr.submitted == _keyedMembers[taskId][group] || mr.recoveryPosts == mr.submitted;
    }

    /// @notice Secure-aggregation counters of `group`: members with a key, members that submitted
    /// in `round`, survivors that posted recovery seeds in `round`.
    function maskStatus(uint256 taskId, uint256 round, uint256 group)
        external
        view
        returns (uint256 members, uint256 submitted, uint256 recoveryPosts)
    {
        _task(taskId);
        MaskRound storage mr = _maskRounds[taskId][round][group];
        return (_keyedMembers[taskId][group], mr.submitted, mr.recoveryPosts);
    }

    /// @notice Return the caller's participant bond from the Settle stage on, or at any time once the
    /// task is cancelled.
    function withdrawBond(uint256 taskId) external {
        Task storage t = _task(taskId);
        if (_participantSlot[taskId][msg.sender] == 0) revert NotParticipant(taskId, msg.sender);
        if (!cancelled[taskId]) _requireWindow(taskId, 0, Stage.Settle);
        if (bondReturned[taskId][msg.sender]) revert BondAlreadyReturned(taskId, msg.sender);
        bondReturned[taskId][msg.sender] = true;
        uint256 amount = t.p.participantBond;
        emit BondReturned(taskId, msg.sender, amount);
        if (amount > 0) token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ payouts

    /// @notice Pay `amount` of task `taskId`'s deposit to `to`.
    /// @dev Only PAYER_ROLE (the scoring contract). Total paid per task never exceeds its deposit.
    function pay(uint256 taskId, address to, uint256 amount) external onlyRole(PAYER_ROLE) {
        Task storage t = _task(taskId);
        if (cancelled[taskId]) revert TaskIsCancelled(taskId);
        uint256 remaining = t.deposit - t.paidOut;
        if (amount > remaining) revert PayoutExceedsDeposit(taskId, amount, remaining);
        t.paidOut += amount;
        emit Paid(taskId, to, amount, t.paidOut);
        token.safeTransfer(to, amount);
    }

    // ------------------------------------------------------------------ cancellation

    /// @notice Mark `taskId` cancelled. Only CANCELLER_ROLE (DinRounds, which checks that the task
    /// never got enough participants or evaluators by the end of registration). From then on no
    /// update is accepted and nothing is paid through `pay`; the owner reclaims the deposit with
    /// `reclaimDeposit` and each participant its bond with `withdrawBond` (pull payments).
    /// @param participants participant count at cancellation (for the event).
    /// @param evaluators evaluator count at cancellation (for the event).
    function cancel(uint256 taskId, uint256 participants, uint256 evaluators) external onlyRole(CANCELLER_ROLE) {
        _task(taskId);
        if (cancelled[taskId]) revert TaskIsCancelled(taskId);
        cancelled[taskId] = true;
        emit TaskCancelled(taskId, participants, evaluators);
    }

    /// @notice The owner of a cancelled task takes back what is left of its deposit, once.
    function reclaimDeposit(uint256 taskId) external {
        Task storage t = _task(taskId);
        if (msg.sender != t.owner) revert NotOwner(taskId, msg.sender);
        if (!cancelled[taskId]) revert NotCancelled(taskId);
        uint256 amount = t.deposit - t.paidOut;
        if (amount == 0) revert DepositAlreadyReclaimed(taskId);
        t.paidOut = t.deposit;
        emit DepositReclaimed(taskId, msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ views

    /// @notice The [start, end) timestamps of `stage` (of `round` for round stages) of `taskId`.
    /// @dev Close and Settle ignore `round` and follow the rounds held; Settle ends at
    /// type(uint64).max. Rounds at or beyond `roundsHeld` are not held (callers check).
    function window(uint256 taskId, uint256 round, Stage stage) public view returns (uint64 start, uint64 end) {
        Task storage t = _task(taskId);
        TaskParams storage p = t.p;
        uint64 c = p.commitDuration;
        uint64 r = p.revealDuration;
        uint64 roundLength = uint64(p.submitDuration) + 2 * c + 3 * r;
        if (stage >= Stage.Close) {
            uint64 s = p.registrationEnd + uint64(t.roundsHeld) * roundLength;
            if (stage == Stage.Close) return (s, s + c);
            return (s + c, type(uint64).max);
        }
        start = p.registrationEnd + uint64(round) * roundLength;
        uint64[6] memory lengths = [uint64(p.submitDuration), r, c, r, c, r];
        for (uint256 i = 0; i < uint256(stage); i++) {
            start += lengths[i];
        }
        end = start + lengths[uint256(stage)];
    }

    /// @notice Whether `block.timestamp` lies in `stage` of `round` of `taskId`.
    function inWindow(uint256 taskId, uint256 round, Stage stage) public view returns (bool) {
        (uint64 start, uint64 end) = window(taskId, round, stage);
        return block.timestamp >= start && block.timestamp < end;
    }

    /// @notice Owner, deposit, amount paid so far and participant count of `taskId`.
    function taskInfo(uint256 taskId)
        external
        view
        returns (address owner, uint256 deposit, uint256 paidOut, uint32 participants, bytes32 genesisHash)
    {
        Task storage t = _task(taskId);
        return (t.owner, t.deposit, t.paidOut, t.participantCount, t.genesisHash);
    }

    /// @notice Rounds the task holds: `rounds`, or fewer once the owner ended it early.
    function roundsHeld(uint256 taskId) external view returns (uint16) {
        return _task(taskId).roundsHeld;
    }

    /// @notice The parameters `taskId` was created with.
    function params(uint256 taskId) external view returns (TaskParams memory) {
        return _task(taskId).p;
    }

    /// @notice Number of registered participants of `taskId`.
    function participantCount(uint256 taskId) external view returns (uint256) {
        return _task(taskId).participantCount;
    }

    /// @notice Participant at registration `index` of `taskId`.
    function participantAt(uint256 taskId, uint256 index) external view returns (address) {
        return _participants[taskId][index];
    }

    /// @notice Registration index of `account` in `taskId` (reverts NotParticipant).
    function participantIndex(uint256 taskId, address account) external view returns (uint256) {
        uint256 slot = _participantSlot[taskId][account];
        if (slot == 0) revert NotParticipant(taskId, account);
        return slot - 1;
    }

    /// @notice Whether `account` is registered in `taskId`.
    function isParticipant(uint256 taskId, address account) external view returns (bool) {
        return _participantSlot[taskId][account] != 0;
    }

    /// @notice Number of subgroups of `taskId`: participants are grouped by registration order,
    /// `subgroupSize` at a time (the last subgroup may be smaller).
    function subgroupCount(uint256 taskId) public view returns (uint256) {
        Task storage t = _task(taskId);
        return (uint256(t.participantCount) + t.p.subgroupSize - 1) / t.p.subgroupSize;
    }

    /// @notice The update commitment of `participant` in `round`: 0 if none, REVEALED once revealed.
    function updateCommitment(uint256 taskId, uint256 round, address participant) external view returns (bytes32) {
        return _updates[taskId][round][participant];
    }

    /// @notice Whether `participant` revealed its update of `round` (its CID is in `UpdateRevealed`).
    function updateRevealed(uint256 taskId, uint256 round, address participant) external view returns (bool) {
        return _updates[taskId][round][participant] == REVEALED;
    }

    /// @notice Participants, subgroups, subgroup size, evaluators per subgroup, rounds held and test
    /// slices revealed of `taskId` (two storage reads).
    function shape(uint256 taskId) external view returns (Shape memory s) {
        Task storage t = _task(taskId);
        uint16 size = t.p.subgroupSize;
        s.participants = t.participantCount;
        s.groups = uint32((uint256(t.participantCount) + size - 1) / size);
        s.subgroupSize = size;
        s.evaluatorsPerSubgroup = t.p.evaluatorsPerSubgroup;
        s.roundsHeld = t.roundsHeld;
        s.slicesRevealed = t.slicesRevealed;
    }

    /// @notice The members of subgroup `group` (registration order) and whether each revealed an
    /// update in `round`. At most `subgroupSize` entries.
    function subgroupMembers(uint256 taskId, uint256 round, uint256 group)
        external
        view
        returns (address[] memory members, bool[] memory revealed)
    {
        Task storage t = _task(taskId);
        uint256 from = group * t.p.subgroupSize;
        uint256 to = from + t.p.subgroupSize;
        if (to > t.participantCount) to = t.participantCount;
        if (from > to) from = to;
        members = new address[](to - from);
        revealed = new bool[](to - from);
        for (uint256 i = from; i < to; i++) {
            address a = _participants[taskId][i];
            members[i - from] = a;
            revealed[i - from] = _updates[taskId][round][a] == REVEALED;
        }
    }


    function _task(uint256 taskId) private view returns (Task storage t) {
        if (taskId >= taskCount) revert UnknownTask(taskId);
        return _tasks[taskId];
    }

    function _requireWindow(uint256 taskId, uint256 round, Stage stage) private view {
        (uint64 start, uint64 end) = window(taskId, round, stage);
        if (block.timestamp < start || block.timestamp >= end) revert OutsideWindow(taskId, round, stage, start, end);
    }
}
