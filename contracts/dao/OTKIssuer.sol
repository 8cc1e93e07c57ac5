// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {DaoModelRegistry} from "./DaoModelRegistry.sol";
import {HardwareRegistry} from "./HardwareRegistry.sol";
import {GasCredits} from "./GasCredits.sol";

/// @title OTKIssuer
/// @notice One-time keys (OTKs) for compute runs. A hardware operator opens a run (certified
/// model, approved hardware, workload digest, risk tier, scope and purpose, budget, ration size,
/// expiry, attestation interval) and then draws a drip of rations: each ration registers one OTK
/// worth at most `rationSize` compute units. Issued units never exceed the run's budget, the
/// model's budget or the hardware's budget. A run's tier, scope and purpose must be covered by the
/// model's approval, at opening and again at every ration (a model whose terms changed halts its
/// runs). A ration is refused until the hardware has a passing attestation younger than the run's
/// interval, while a challenge is open, or while the model's or the hardware's budget is frozen;
/// at a semi-random ration (one in `challengeOdds`, drawn from `prevrandao`) the issuer opens an
/// attestation challenge on the hardware. A failed attestation, a missed challenge, revoked
/// hardware, a revoked or uncertified model, or an emergency vote halts the run for good, and no
/// key of an unhealthy run can be consumed. Each OTK is consumable once.
/// @dev Only keccak256 hashes of OTKs are stored. The key itself never goes on-chain until it is
/// consumed: the operator derives it off-chain (the reference agent uses
/// HMAC-SHA256(run secret, runId || index)) and submits only its hash with the ration request;
/// the operator's workload presents the preimage once to `consume`. Budget is counted at issuance;
/// a key that can no longer be consumed (expired, or its run halted or closed) can be reclaimed by
/// anyone, which returns its units to the run's, the model's and the hardware's budgets.
contract OTKIssuer is Ownable {
    enum RunStatus {
        None,
        Active,
        Halted,
        Closed
    }

    enum HaltReason {
        None,
        HardwareRevoked,
        AttestationFailed,
        ModelNotCertified,
        ModelRevoked,
        ChallengeMissed,
        OutsideApproval,
        HaltedByVote
    }

    struct Run {
        address operator;
        RunStatus status;
        uint8 tier;
        DaoModelRegistry.Scope scope;
        uint64 expiresAt;
        uint64 attestationInterval;
        uint32 failuresAtOpen;
        uint32 keysIssued;
        uint32 hardwareApprovals;
        uint256 modelId;
        uint256 hardwareId;
        bytes32 workloadHash;
        bytes32 purposeHash;
        uint256 budget;
        uint256 issued;
        uint256 rationSize;
    }

    /// @notice A run as its operator asks for it (`openRun`).
    /// @param tier, scope, purpose what the run is: the model's approval must cover them (tier at most
    /// the approved tier, General only under a General approval, the approved purpose).
    /// @param budget total units the run may draw (must fit the model's and hardware's remaining budget).
    /// @param rationSize units per OTK.
    /// @param expiresAt last second at which rations may be drawn.
    /// @param attestationInterval max age (s) of the hardware's passing attestation for a ration.
    struct RunSpec {
        uint256 modelId;
        uint256 hardwareId;
        bytes32 workloadHash;
        uint8 tier;
        DaoModelRegistry.Scope scope;
        string purpose;
        uint256 budget;
        uint256 rationSize;
        uint64 expiresAt;
        uint64 attestationInterval;
    }

    struct Key {
        uint256 runId;
        uint128 amount;
        uint64 expiresAt;
        bool consumed;
        bool reclaimed;
    }

    bytes32 public constant OP_OPEN_RUN = keccak256("dao.otk.openRun");
    bytes32 public constant OP_RATION = keccak256("dao.otk.ration");

    DaoModelRegistry public immutable models;
    HardwareRegistry public immutable hardware;
    GasCredits public immutable credits;

    /// @notice Seconds an issued OTK stays consumable (votable).
    uint64 public keyLifetime;
    /// @notice One ration in `challengeOdds` opens an attestation challenge (0 = never; votable).
    uint16 public challengeOdds;
    /// @notice Number of runs ever opened (ids are 1-based).
    uint256 public runCount;
    /// @notice Units issued against each model's and each hardware unit's budget.
    mapping(uint256 modelId => uint256) public modelIssued;
    mapping(uint256 hardwareId => uint256) public hardwareIssued;

    mapping(uint256 runId => Run) private _runs;
    mapping(bytes32 keyHash => Key) private _keys;

    event RunOpened(
        uint256 indexed runId,
        address indexed operator,
        uint256 indexed modelId,
        uint256 hardwareId,
        bytes32 workloadHash,
        uint256 budget,
        uint256 rationSize,
        uint64 expiresAt,
        uint64 attestationInterval
    );
    event RunTermsDeclared(uint256 indexed runId, uint8 tier, DaoModelRegistry.Scope scope, string purpose);
    event OTKIssued(uint256 indexed runId, bytes32 indexed keyHash, uint32 index, uint256 amount, uint64 expiresAt);
    event OTKConsumed(uint256 indexed runId, bytes32 indexed keyHash, address indexed consumer, uint256 amount);
    event OTKReclaimed(uint256 indexed runId, bytes32 indexed keyHash, uint256 amount);
    event RunHalted(uint256 indexed runId, HaltReason reason);
    event RunClosed(uint256 indexed runId, uint256 issued);
    event KeyLifetimeSet(uint64 keyLifetime);
    event ChallengeOddsSet(uint16 challengeOdds);

    error ZeroAmount();
    error InvalidKeyLifetime();
    error InvalidRunParameters();
    error NotHardwareOperator(uint256 hardwareId, address caller);
    error NotRunOperator(uint256 runId, address caller);
    error ModelNotCertified(uint256 modelId);
    error HardwareNotApproved(uint256 hardwareId);
    error TierNotApproved(uint256 modelId, uint8 approved, uint8 requested);
    error ScopeNotApproved(uint256 modelId, DaoModelRegistry.Scope approved, DaoModelRegistry.Scope requested);
    error PurposeNotApproved(uint256 modelId);
    error ModelBudgetFrozen(uint256 modelId);
    error HardwareBudgetFrozen(uint256 hardwareId);
    error ChallengePending(uint256 hardwareId, uint64 deadline);
    error RunUnhealthy(uint256 runId, HaltReason reason);
    error BudgetExceeded(uint256 requested, uint256 available);
    error UnknownRun(uint256 runId);
    error RunNotActive(uint256 runId, RunStatus status);
    error RunExpired(uint256 runId, uint64 expiresAt);
    error RunBudgetExhausted(uint256 runId);
    error AttestationRequired(uint256 hardwareId, uint64 lastAttestedAt, uint64 interval);
    error EmptyKeyHash();
    error KeyHashTaken(bytes32 keyHash);
    error UnknownKey(bytes32 keyHash);
    error KeyAlreadyConsumed(bytes32 keyHash);
    error KeyExpired(bytes32 keyHash, uint64 expiresAt);
    error KeyReclaimed(bytes32 keyHash);
    error KeyStillUsable(bytes32 keyHash, uint64 expiresAt);
    error RunHealthy(uint256 runId);

    /// @param governance owner (the governor).
    constructor(
        address governance,
        DaoModelRegistry models_,
        HardwareRegistry hardware_,
        GasCredits credits_,
        uint64 keyLifetime_,
        uint16 challengeOdds_
    ) Ownable(governance) {
        if (keyLifetime_ == 0) revert InvalidKeyLifetime();
        models = models_;
        hardware = hardware_;
        credits = credits_;
        keyLifetime = keyLifetime_;
        challengeOdds = challengeOdds_;
        emit KeyLifetimeSet(keyLifetime_);
        emit ChallengeOddsSet(challengeOdds_);
    }

    /// @notice Set how often a ration opens an attestation challenge: one in `odds` (0 = never;
    /// governance only).
    function setChallengeOdds(uint16 odds) external onlyOwner {
        challengeOdds = odds;
        emit ChallengeOddsSet(odds);
    }

    /// @notice Emergency: halt run `runId` for good (governance only); its unconsumed keys become
    /// reclaimable.
    function haltRun(uint256 runId) external onlyOwner {
        Run storage r = _activeRun(runId);
        r.status = RunStatus.Halted;
        emit RunHalted(runId, HaltReason.HaltedByVote);
    }

    /// @notice Set how long issued OTKs stay consumable (governance only).
    function setKeyLifetime(uint64 keyLifetime_) external onlyOwner {
        if (keyLifetime_ == 0) revert InvalidKeyLifetime();
        keyLifetime = keyLifetime_;
        emit KeyLifetimeSet(keyLifetime_);
    }

    /// @notice Open a compute run `spec` on hardware the caller operates. Charges `OP_OPEN_RUN` credits.
    function openRun(RunSpec calldata spec) external returns (uint256 runId) {
        if (hardware.operatorOf(spec.hardwareId) != msg.sender) revert NotHardwareOperator(spec.hardwareId, msg.sender);
        if (
            spec.budget == 0 || spec.rationSize == 0 || spec.rationSize > spec.budget
                || spec.rationSize > type(uint128).max || spec.expiresAt <= block.timestamp
                || spec.attestationInterval == 0 || spec.workloadHash == bytes32(0) || spec.tier == 0
        ) revert InvalidRunParameters();
        DaoModelRegistry.RunTerms memory m = models.runTerms(spec.modelId);
        bytes32 purposeHash = keccak256(bytes(spec.purpose));
        _checkModel(spec.modelId, m, spec.tier, spec.scope, purposeHash);
        HardwareRegistry.Health memory h = hardware.health(spec.hardwareId);
        if (h.status != HardwareRegistry.Status.Approved) revert HardwareNotApproved(spec.hardwareId);
        if (h.frozen) revert HardwareBudgetFrozen(spec.hardwareId);
        uint256 available = Math.min(
            _remaining(m.budget, modelIssued[spec.modelId]), _remaining(h.budget, hardwareIssued[spec.hardwareId])
        );
        if (spec.budget > available) revert BudgetExceeded(spec.budget, available);

        runId = ++runCount;
        Run storage r = _runs[runId];
        r.operator = msg.sender;
        r.status = RunStatus.Active;
        r.tier = spec.tier;
        r.scope = spec.scope;
        r.expiresAt = spec.expiresAt;
        r.attestationInterval = spec.attestationInterval;
        r.failuresAtOpen = h.failedAttestations;
        r.hardwareApprovals = h.approvals;
        r.modelId = spec.modelId;
        r.hardwareId = spec.hardwareId;
        r.workloadHash = spec.workloadHash;
        r.purposeHash = purposeHash;
        r.budget = spec.budget;
        r.rationSize = spec.rationSize;
        emit RunOpened(
            runId,
            msg.sender,
            spec.modelId,
            spec.hardwareId,
            spec.workloadHash,
            spec.budget,
            spec.rationSize,
            spec.expiresAt,
            spec.attestationInterval
        );
        emit RunTermsDeclared(runId, spec.tier, spec.scope, spec.purpose);
        credits.charge(msg.sender, OP_OPEN_RUN, runId, spec.budget);
    }

    /// @notice Draw the next ration of run `runId`, registering the OTK whose keccak256 is `keyHash`.
    /// If the run is no longer healthy (hardware revoked or failed an attestation or missed a
    /// challenge since the run opened, model revoked, uncertified or no longer approved for the
    /// run's terms), the run is halted instead and no key is issued. Refused while the model's or
    /// hardware's budget is frozen or a challenge is open. One ration in `challengeOdds` opens a
    /// challenge on the hardware. Charges `OP_RATION` credits per unit issued.
    /// @return amount units attached to the key (0 when the run was halted by this call).
    function drip(uint256 runId, bytes32 keyHash) external returns (uint256 amount) {
        Run storage r = _activeRun(runId);
        if (msg.sender != r.operator) revert NotRunOperator(runId, msg.sender);
        if (block.timestamp > r.expiresAt) revert RunExpired(runId, r.expiresAt);
        if (keyHash == bytes32(0)) revert EmptyKeyHash();
        if (_keys[keyHash].expiresAt != 0) revert KeyHashTaken(keyHash);

        DaoModelRegistry.RunTerms memory m = models.runTerms(r.modelId);
        HardwareRegistry.Health memory h = hardware.health(r.hardwareId);
        HaltReason reason = _haltReason(r, m, h);
        if (reason != HaltReason.None) {
            r.status = RunStatus.Halted;
            emit RunHalted(runId, reason);
            return 0;
        }
        if (m.frozen) revert ModelBudgetFrozen(r.modelId);
        if (h.frozen) revert HardwareBudgetFrozen(r.hardwareId);
        if (h.challenge != bytes32(0)) revert ChallengePending(r.hardwareId, h.challengeDeadline);
        if (!h.lastAttestationOk || block.timestamp > uint256(h.lastAttestedAt) + r.attestationInterval) {
            revert AttestationRequired(r.hardwareId, h.lastAttestedAt, r.attestationInterval);
        }

        amount = Math.min(r.rationSize, r.budget - r.issued);
        amount = Math.min(
            amount,
            Math.min(_remaining(m.budget, modelIssued[r.modelId]), _remaining(h.budget, hardwareIssued[r.hardwareId]))
        );
        if (amount == 0) revert RunBudgetExhausted(runId);

        r.issued += amount;
        modelIssued[r.modelId] += amount;
        hardwareIssued[r.hardwareId] += amount;
        uint32 index = r.keysIssued++;
        uint64 keyExpiry = uint64(Math.min(block.timestamp + keyLifetime, r.expiresAt));
        _keys[keyHash] =
            Key({runId: runId, amount: uint128(amount), expiresAt: keyExpiry, consumed: false, reclaimed: false});
        emit OTKIssued(runId, keyHash, index, amount, keyExpiry);
        credits.charge(msg.sender, OP_RATION, runId, amount);
        uint16 odds = challengeOdds;
        if (odds != 0) {
            bytes32 seed = keccak256(abi.encode(block.prevrandao, runId, index, keyHash));
            if (uint256(seed) % odds == 0) hardware.openChallenge(r.hardwareId, seed);
        }
    }

    /// @notice Consume an OTK by presenting its preimage `key` (the run's operator only, so a key
    /// seen in the mempool cannot be burnt by someone else); works once, before the key expires,
    /// while its run is Active and healthy (`RunUnhealthy` once the model or hardware was revoked,
    /// failed, missed a challenge or left the run's approval, even before anyone halts the run).
    /// @return runId the run the key belongs to.
    /// @return amount units the key carried.
    function consume(bytes32 key) external returns (uint256 runId, uint256 amount) {
        bytes32 keyHash = keccak256(abi.encodePacked(key));
        Key storage k = _keys[keyHash];
        if (k.expiresAt == 0) revert UnknownKey(keyHash);
        if (k.consumed) revert KeyAlreadyConsumed(keyHash);
        if (k.reclaimed) revert KeyReclaimed(keyHash);
        if (block.timestamp > k.expiresAt) revert KeyExpired(keyHash, k.expiresAt);
        runId = k.runId;
        Run storage r = _runs[runId];
        if (msg.sender != r.operator) revert NotRunOperator(runId, msg.sender);
        if (r.status != RunStatus.Active) revert RunNotActive(runId, r.status);
        HaltReason reason = _haltReason(r, models.runTerms(r.modelId), hardware.health(r.hardwareId));
        if (reason != HaltReason.None) revert RunUnhealthy(runId, reason);
        k.consumed = true;
        amount = k.amount;
        emit OTKConsumed(runId, keyHash, msg.sender, amount);
    }

    /// @notice Return the units of an OTK that can no longer be consumed (expired, or its run is
    /// halted, closed or unhealthy) to the run's, the model's and the hardware's budgets. Anyone may call.
    /// @return amount units returned.
    function reclaim(bytes32 keyHash) external returns (uint256 amount) {
        Key storage k = _keys[keyHash];
        if (k.expiresAt == 0) revert UnknownKey(keyHash);
        if (k.consumed) revert KeyAlreadyConsumed(keyHash);
        if (k.reclaimed) revert KeyReclaimed(keyHash);
        Run storage r = _runs[k.runId];
        if (
            block.timestamp <= k.expiresAt && r.status == RunStatus.Active
                && _haltReason(r, models.runTerms(r.modelId), hardware.health(r.hardwareId)) == HaltReason.None
        ) revert KeyStillUsable(keyHash, k.expiresAt);
        k.reclaimed = true;
        amount = k.amount;
        r.issued -= amount;
        modelIssued[r.modelId] -= amount;
        hardwareIssued[r.hardwareId] -= amount;
        emit OTKReclaimed(k.runId, keyHash, amount);
    }

    /// @notice Halt run `runId` if it is no longer healthy (see `drip`; anyone may call; reverts
    /// `RunHealthy` otherwise).
    function halt(uint256 runId) external {
        Run storage r = _activeRun(runId);
        HaltReason reason = _haltReason(r, models.runTerms(r.modelId), hardware.health(r.hardwareId));
        if (reason == HaltReason.None) revert RunHealthy(runId);
        r.status = RunStatus.Halted;
        emit RunHalted(runId, reason);
    }

    /// @notice Close an active run (its operator only); unconsumed keys become unusable.
    function closeRun(uint256 runId) external {
        Run storage r = _activeRun(runId);
        if (msg.sender != r.operator) revert NotRunOperator(runId, msg.sender);
        r.status = RunStatus.Closed;
        emit RunClosed(runId, r.issued);
    }

    /// @notice Full record of `runId`.
    function getRun(uint256 runId) external view returns (Run memory) {
        Run storage r = _runs[runId];
        if (r.status == RunStatus.None) revert UnknownRun(runId);
        return r;
    }

    /// @notice Record of the key whose hash is `keyHash` (zeroed for unknown hashes).
    function getKey(bytes32 keyHash) external view returns (Key memory) {
        return _keys[keyHash];
    }

    /// @notice Units of `modelId`'s budget not yet issued.
    function modelRemaining(uint256 modelId) public view returns (uint256) {
        return _remaining(models.computeBudget(modelId), modelIssued[modelId]);
    }

    /// @notice Units of `hardwareId`'s budget not yet issued.
    function hardwareRemaining(uint256 hardwareId) public view returns (uint256) {
        return _remaining(hardware.budgetOf(hardwareId), hardwareIssued[hardwareId]);
    }

    /// @notice Why run `runId` would halt now (None if it is healthy).
    function haltReasonOf(uint256 runId) external view returns (HaltReason) {
        Run storage r = _runs[runId];
        if (r.status == RunStatus.None) revert UnknownRun(runId);
        return _haltReason(r, models.runTerms(r.modelId), hardware.health(r.hardwareId));
    }

    function _activeRun(uint256 runId) private view returns (Run storage r) {
        r = _runs[runId];
        if (r.status == RunStatus.None) revert UnknownRun(runId);
        if (r.status != RunStatus.Active) revert RunNotActive(runId, r.status);
    }

    function _remaining(uint256 budget, uint256 used) private pure returns (uint256) {
        return budget > used ? budget - used : 0;
    }

    function _checkModel(
        uint256 modelId,
        DaoModelRegistry.RunTerms memory m,
        uint8 tier,
        DaoModelRegistry.Scope scope,
        bytes32 purposeHash
    ) private view {
        if (m.status != DaoModelRegistry.Status.Approved || block.timestamp >= m.certifiedUntil) {
            revert ModelNotCertified(modelId);
        }
        if (m.frozen) revert ModelBudgetFrozen(modelId);
        if (tier > m.tier) revert TierNotApproved(modelId, m.tier, tier);
        if (scope == DaoModelRegistry.Scope.General && m.scope != DaoModelRegistry.Scope.General) {
            revert ScopeNotApproved(modelId, m.scope, scope);
        }
        if (purposeHash != m.purposeHash) revert PurposeNotApproved(modelId);
    }

    function _haltReason(Run storage r, DaoModelRegistry.RunTerms memory m, HardwareRegistry.Health memory h)
        private
        view
        returns (HaltReason)
    {
        if (h.status != HardwareRegistry.Status.Approved || h.approvals != r.hardwareApprovals) {
            return HaltReason.HardwareRevoked;
        }
        if (h.failedAttestations > r.failuresAtOpen) return HaltReason.AttestationFailed;
        if (h.challengeOverdue) return HaltReason.ChallengeMissed;
        if (m.status == DaoModelRegistry.Status.Revoked) return HaltReason.ModelRevoked;
        if (m.status != DaoModelRegistry.Status.Approved || block.timestamp >= m.certifiedUntil) {
            return HaltReason.ModelNotCertified;
        }
        if (
            r.tier > m.tier || (r.scope == DaoModelRegistry.Scope.General && m.scope != DaoModelRegistry.Scope.General)
                || r.purposeHash != m.purposeHash
        ) return HaltReason.OutsideApproval;
        return HaltReason.None;
    }
}
