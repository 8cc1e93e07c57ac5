// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {DaoModelRegistry} from "./DaoModelRegistry.sol";
import {HardwareRegistry} from "./HardwareRegistry.sol";
import {GasCredits} from "./GasCredits.sol";

/// @title OTKIssuer
/// @notice One-time keys (OTKs) for compute runs. A hardware operator opens a run (certified
/// model, approved hardware, workload digest, budget, ration size, expiry, attestation interval)
/// and then draws a drip of rations: each ration registers one OTK worth at most `rationSize`
/// compute units. Issued units never exceed the run's budget, the model's budget or the
/// hardware's budget. A ration is refused until the hardware has a passing attestation younger
/// than the run's interval; a failed attestation or revoked hardware halts the run for good,
/// and a halted run's outstanding keys can no longer be consumed. Each OTK is consumable once.
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
        ModelNotCertified
    }

    struct Run {
        address operator;
        RunStatus status;
        uint64 expiresAt;
        uint64 attestationInterval;
        uint32 failuresAtOpen;
        uint32 keysIssued;
        uint256 modelId;
        uint256 hardwareId;
        bytes32 workloadHash;
        uint256 budget;
        uint256 issued;
        uint256 rationSize;
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
    event OTKIssued(uint256 indexed runId, bytes32 indexed keyHash, uint32 index, uint256 amount, uint64 expiresAt);
    event OTKConsumed(uint256 indexed runId, bytes32 indexed keyHash, address indexed consumer, uint256 amount);
    event OTKReclaimed(uint256 indexed runId, bytes32 indexed keyHash, uint256 amount);
    event RunHalted(uint256 indexed runId, HaltReason reason);
    event RunClosed(uint256 indexed runId, uint256 issued);
    event KeyLifetimeSet(uint64 keyLifetime);

    error ZeroAmount();
    error InvalidKeyLifetime();
    error InvalidRunParameters();
    error NotHardwareOperator(uint256 hardwareId, address caller);
    error NotRunOperator(uint256 runId, address caller);
    error ModelNotCertified(uint256 modelId);
    error HardwareNotApproved(uint256 hardwareId);
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
        uint64 keyLifetime_
    ) Ownable(governance) {
        if (keyLifetime_ == 0) revert InvalidKeyLifetime();
        models = models_;
        hardware = hardware_;
        credits = credits_;
        keyLifetime = keyLifetime_;
        emit KeyLifetimeSet(keyLifetime_);
    }

    /// @notice Set how long issued OTKs stay consumable (governance only).
    function setKeyLifetime(uint64 keyLifetime_) external onlyOwner {
        if (keyLifetime_ == 0) revert InvalidKeyLifetime();
        keyLifetime = keyLifetime_;
        emit KeyLifetimeSet(keyLifetime_);
    }

    /// @notice Open a compute run on hardware the caller operates. Charges `OP_OPEN_RUN` credits.
    /// @param budget total units the run may draw (must fit the model's and hardware's remaining budget).
    /// @param rationSize units per OTK.
    /// @param expiresAt last second at which rations may be drawn.
    /// @param attestationInterval max age (s) of the hardware's passing attestation for a ration.
    function openRun(
        uint256 modelId,
        uint256 hardwareId,
        bytes32 workloadHash,
        uint256 budget,
        uint256 rationSize,
        uint64 expiresAt,
        uint64 attestationInterval
    ) external returns (uint256 runId) {
        if (hardware.operatorOf(hardwareId) != msg.sender) revert NotHardwareOperator(hardwareId, msg.sender);
        if (
            budget == 0 || rationSize == 0 || rationSize > budget || rationSize > type(uint128).max
                || expiresAt <= block.timestamp || attestationInterval == 0 || workloadHash == bytes32(0)
        ) revert InvalidRunParameters();
        if (!models.isCertified(modelId)) revert ModelNotCertified(modelId);
        if (hardware.statusOf(hardwareId) != HardwareRegistry.Status.Approved) revert HardwareNotApproved(hardwareId);
        uint256 available = Math.min(modelRemaining(modelId), hardwareRemaining(hardwareId));
        if (budget > available) revert BudgetExceeded(budget, available);

        (,, uint32 failed) = hardware.attestationState(hardwareId);
        runId = ++runCount;
        _runs[runId] = Run({
            operator: msg.sender,
            status: RunStatus.Active,
            expiresAt: expiresAt,
            attestationInterval: attestationInterval,
            failuresAtOpen: failed,
            keysIssued: 0,
            modelId: modelId,
            hardwareId: hardwareId,
            workloadHash: workloadHash,
            budget: budget,
            issued: 0,
            rationSize: rationSize
        });
        emit RunOpened(
            runId, msg.sender, modelId, hardwareId, workloadHash, budget, rationSize, expiresAt, attestationInterval
        );
        credits.charge(msg.sender, OP_OPEN_RUN, runId, budget);
    }

    /// @notice Draw the next ration of run `runId`, registering the OTK whose keccak256 is `keyHash`.
    /// If the hardware was revoked or failed an attestation since the run opened (or the model
    /// lost its certification), the run is halted instead and no key is issued.
    /// Charges `OP_RATION` credits per unit issued.
    /// @return amount units attached to the key (0 when the run was halted by this call).
    function drip(uint256 runId, bytes32 keyHash) external returns (uint256 amount) {
        Run storage r = _activeRun(runId);
        if (msg.sender != r.operator) revert NotRunOperator(runId, msg.sender);
        if (block.timestamp > r.expiresAt) revert RunExpired(runId, r.expiresAt);
        if (keyHash == bytes32(0)) revert EmptyKeyHash();
        if (_keys[keyHash].expiresAt != 0) revert KeyHashTaken(keyHash);

        HaltReason reason = _haltReason(r);
        if (reason != HaltReason.None) {
            r.status = RunStatus.Halted;
            emit RunHalted(runId, reason);
            return 0;
        }
        (bool lastOk, uint64 lastAt,) = hardware.attestationState(r.hardwareId);
        if (!lastOk || block.timestamp > uint256(lastAt) + r.attestationInterval) {
            revert AttestationRequired(r.hardwareId, lastAt, r.attestationInterval);
        }

        amount = Math.min(r.rationSize, r.budget - r.issued);
        amount = Math.min(amount, Math.min(modelRemaining(r.modelId), hardwareRemaining(r.hardwareId)));
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
    }

    /// @notice Consume an OTK by presenting its preimage `key` (the run's operator only, so a key
    /// seen in the mempool cannot be burnt by someone else); works once, before the key expires,
    /// while its run is Active.
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
        k.consumed = true;
        amount = k.amount;
        emit OTKConsumed(runId, keyHash, msg.sender, amount);
    }

    /// @notice Return the units of an OTK that can no longer be consumed (expired, or its run is
    /// halted or closed) to the run's, the model's and the hardware's budgets. Anyone may call.
    /// @return amount units returned.
    function reclaim(bytes32 keyHash) external returns (uint256 amount) {
        Key storage k = _keys[keyHash];
        if (k.expiresAt == 0) revert UnknownKey(keyHash);
        if (k.consumed) revert KeyAlreadyConsumed(keyHash);
        if (k.reclaimed) revert KeyReclaimed(keyHash);
        Run storage r = _runs[k.runId];
        if (block.timestamp <= k.expiresAt && r.status == RunStatus.Active) revert KeyStillUsable(keyHash, k.expiresAt);
        k.reclaimed = true;
        amount = k.amount;
        r.issued -= amount;
        modelIssued[r.modelId] -= amount;
        hardwareIssued[r.hardwareId] -= amount;
        emit OTKReclaimed(k.runId, keyHash, amount);
    }

    /// @notice Halt run `runId` if its hardware was revoked or failed an attestation since it
    /// opened, or its model lost certification (anyone may call; reverts `RunHealthy` otherwise).
    function halt(uint256 runId) external {
        Run storage r = _activeRun(runId);
        HaltReason reason = _haltReason(r);
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
        uint256 budget = models.computeBudget(modelId);
        uint256 used = modelIssued[modelId];
        return budget > used ? budget - used : 0;
    }

    /// @notice Units of `hardwareId`'s budget not yet issued.
    function hardwareRemaining(uint256 hardwareId) public view returns (uint256) {
        uint256 budget = hardware.budgetOf(hardwareId);
        uint256 used = hardwareIssued[hardwareId];
        return budget > used ? budget - used : 0;
    }

    function _activeRun(uint256 runId) private view returns (Run storage r) {
        r = _runs[runId];
        if (r.status == RunStatus.None) revert UnknownRun(runId);
        if (r.status != RunStatus.Active) revert RunNotActive(runId, r.status);
    }

    function _haltReason(Run storage r) private view returns (HaltReason) {
        if (hardware.statusOf(r.hardwareId) != HardwareRegistry.Status.Approved) return HaltReason.HardwareRevoked;
        (,, uint32 failed) = hardware.attestationState(r.hardwareId);
        if (failed > r.failuresAtOpen) return HaltReason.AttestationFailed;
        if (!models.isCertified(r.modelId)) return HaltReason.ModelNotCertified;
        return HaltReason.None;
    }
}
