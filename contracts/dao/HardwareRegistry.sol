// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {PersonnelRegistry} from "./PersonnelRegistry.sol";

/// @title HardwareRegistry
/// @notice Compute hardware (a datacenter unit with its own signing key). A unit enters Pending,
/// is approved by vote with a compute budget, and then reports integrity attestations: EIP-712
/// messages signed by the unit's attestation key carrying the measurement it observed (e.g. a
/// digest of firmware and software stack). An attestation whose measurement differs from the
/// approved reference counts as failed; `failureLimit` failed attestations since the last
/// approval revoke the unit back to Pending automatically. Registered personnel record inspections.
///
/// Challenges: a listed challenger (the {OTKIssuer}, at semi-random rations drawn from `prevrandao`)
/// opens a challenge with a fresh seed; the unit must answer with an attestation signed over that
/// seed, observed after the challenge, within `challengeWindow` seconds. An unanswered challenge
/// past its deadline counts as a failed attestation (`expireChallenge`, anyone), and until then the
/// issuer already treats the unit as failed.
///
/// Emergency powers (by vote): revoke an approved unit to Pending, freeze its remaining budget, cut it.
/// @dev The owner is the governor (the deployer lists the issuer as challenger, then hands over).
/// The signature check proves which key signed the measurement; it does not prove the measurement
/// is true (that is what the reference value, inspections, challenges and revocation are for). Each
/// attestation carries the unit's next nonce, so none can be replayed. `approvals` counts approvals,
/// so a run opened under an earlier approval knows the unit was revoked in between.
contract HardwareRegistry is Ownable, EIP712 {
    enum Status {
        None,
        Pending,
        Approved
    }

    struct Hardware {
        address operator;
        Status status;
        bool lastAttestationOk;
        bool frozen;
        uint8 failuresSinceApproval;
        uint32 failedAttestations;
        uint32 approvals;
        address attestationKey;
        uint64 nonce;
        uint64 lastAttestedAt;
        uint64 lastInspectedAt;
        uint64 challengedAt;
        uint64 challengeDeadline;
        bytes32 challenge;
        bytes32 referenceMeasurement;
        uint256 budget;
        string meta;
    }

    /// @notice What a run needs to know of a unit, in one call.
    struct Health {
        Status status;
        bool frozen;
        bool lastAttestationOk;
        bool challengeOverdue;
        uint32 approvals;
        uint32 failedAttestations;
        uint64 lastAttestedAt;
        uint64 challengeDeadline;
        bytes32 challenge;
        uint256 budget;
    }

    bytes32 public constant ATTESTATION_TYPEHASH = keccak256(
        "Attestation(uint256 hardwareId,uint64 nonce,bytes32 measurement,uint64 observedAt,bytes32 challenge)"
    );

    PersonnelRegistry public immutable personnel;
    /// @notice Failed attestations (since approval) that revoke a unit to Pending.
    uint8 public failureLimit;
    /// @notice Seconds a unit has to answer a challenge.
    uint64 public challengeWindow;
    /// @notice Number of units ever registered (ids are 1-based).
    uint256 public hardwareCount;
    /// @notice Contracts allowed to open challenges (the OTK issuer).
    mapping(address => bool) public isChallenger;

    mapping(uint256 id => Hardware) private _units;

    event HardwareRegistered(
        uint256 indexed hardwareId, address indexed operator, address attestationKey, bytes32 referenceMeasurement
    );
    event HardwareApproved(uint256 indexed hardwareId, uint256 budget);
    event HardwareRevoked(uint256 indexed hardwareId, uint8 failures);
    event HardwareRevokedByVote(uint256 indexed hardwareId, bytes32 reason);
    event HardwareBudgetFrozen(uint256 indexed hardwareId, bytes32 reason);
    event HardwareBudgetUnfrozen(uint256 indexed hardwareId);
    event HardwareBudgetCut(uint256 indexed hardwareId, uint256 oldBudget, uint256 newBudget);
    event AttestationRecorded(uint256 indexed hardwareId, uint64 nonce, bytes32 measurement, uint64 observedAt, bool ok);
    event AttestationChallenged(uint256 indexed hardwareId, bytes32 challenge, uint64 deadline);
    event ChallengeAnswered(uint256 indexed hardwareId, bytes32 challenge, bool ok);
    event ChallengeMissed(uint256 indexed hardwareId, bytes32 challenge, uint64 deadline);
    event InspectionRecorded(uint256 indexed hardwareId, address indexed inspector, bool passed, bytes32 reportHash);
    event FailureLimitSet(uint8 failureLimit);
    event ChallengeWindowSet(uint64 challengeWindow);
    event ChallengerSet(address indexed challenger, bool allowed);

    error ZeroAddress();
    error EmptyMeasurement();
    error UnknownHardware(uint256 hardwareId);
    error WrongHardwareStatus(uint256 hardwareId, Status status);
    error ZeroBudget();
    error InvalidFailureLimit();
    error InvalidChallengeWindow();
    error BadAttestationSigner(uint256 hardwareId, address signer);
    error AttestationFromFuture(uint64 observedAt);
    error NotPersonnel(address caller);
    error NotChallenger(address caller);
    error WrongChallenge(uint256 hardwareId, bytes32 expected, bytes32 given);
    error AttestationBeforeChallenge(uint256 hardwareId, uint64 observedAt, uint64 challengedAt);
    error ChallengeOverdue(uint256 hardwareId, uint64 deadline);
    error NoOverdueChallenge(uint256 hardwareId);
    error AlreadyFrozen(uint256 hardwareId);
    error NotFrozen(uint256 hardwareId);
    error NotABudgetCut(uint256 hardwareId, uint256 budget, uint256 requested);

    /// @param governance owner (the governor, or the deployer until it lists the challenger).
    /// @param personnel_ registry whose members may record inspections.
    /// @param failureLimit_ failed attestations that revoke a unit.
    /// @param challengeWindow_ seconds a unit has to answer a challenge.
    constructor(address governance, PersonnelRegistry personnel_, uint8 failureLimit_, uint64 challengeWindow_)
        Ownable(governance)
        EIP712("LoyalHardwareRegistry", "1")
    {
        if (failureLimit_ == 0) revert InvalidFailureLimit();
        if (challengeWindow_ == 0) revert InvalidChallengeWindow();
        personnel = personnel_;
        failureLimit = failureLimit_;
        challengeWindow = challengeWindow_;
        emit FailureLimitSet(failureLimit_);
        emit ChallengeWindowSet(challengeWindow_);
    }

    /// @notice Register a unit operated by the caller; it starts Pending.
    /// @param attestationKey address of the unit's own signing key.
    /// @param referenceMeasurement the measurement a healthy unit reports.
    function register(address attestationKey, bytes32 referenceMeasurement, string calldata meta)
        external
        returns (uint256 hardwareId)
    {
        if (attestationKey == address(0)) revert ZeroAddress();
        if (referenceMeasurement == bytes32(0)) revert EmptyMeasurement();
        hardwareId = ++hardwareCount;
        Hardware storage h = _units[hardwareId];
        h.operator = msg.sender;
        h.attestationKey = attestationKey;
        h.status = Status.Pending;
        h.referenceMeasurement = referenceMeasurement;
        h.meta = meta;
        emit HardwareRegistered(hardwareId, msg.sender, attestationKey, referenceMeasurement);
    }

    /// @notice Approve a Pending unit with a total compute budget (governance only). Resets the
    /// failure count and any open challenge; the unit must attest again before it receives rations.
    function approve(uint256 hardwareId, uint256 budget) external onlyOwner {
        Hardware storage h = _unit(hardwareId);
        if (h.status != Status.Pending) revert WrongHardwareStatus(hardwareId, h.status);
        if (budget == 0) revert ZeroBudget();
        h.status = Status.Approved;
        h.budget = budget;
        h.approvals += 1;
        h.failuresSinceApproval = 0;
        h.lastAttestationOk = false;
        h.lastAttestedAt = 0;
        h.challenge = bytes32(0);
        h.challengeDeadline = 0;
        emit HardwareApproved(hardwareId, budget);
    }

    /// @notice Emergency: revoke an Approved unit to Pending (governance only); its runs halt.
    function revoke(uint256 hardwareId, bytes32 reason) external onlyOwner {
        Hardware storage h = _approved(hardwareId);
        h.status = Status.Pending;
        emit HardwareRevokedByVote(hardwareId, reason);
    }

    /// @notice Emergency: freeze an Approved unit's remaining budget (governance only): no new runs or
    /// rations on it until unfrozen; keys already issued stay consumable.
    function freezeBudget(uint256 hardwareId, bytes32 reason) external onlyOwner {
        Hardware storage h = _approved(hardwareId);
        if (h.frozen) revert AlreadyFrozen(hardwareId);
        h.frozen = true;
        emit HardwareBudgetFrozen(hardwareId, reason);
    }

    /// @notice Lift a budget freeze (governance only).
    function unfreezeBudget(uint256 hardwareId) external onlyOwner {
        Hardware storage h = _unit(hardwareId);
        if (!h.frozen) revert NotFrozen(hardwareId);
        h.frozen = false;
        emit HardwareBudgetUnfrozen(hardwareId);
    }

    /// @notice Emergency: lower an Approved unit's total budget to `newBudget` (governance only; a cut
    /// only lowers). Units already issued stay issued; below them, nothing more is issued.
    function cutBudget(uint256 hardwareId, uint256 newBudget) external onlyOwner {
        Hardware storage h = _approved(hardwareId);
        uint256 old = h.budget;
        if (newBudget >= old) revert NotABudgetCut(hardwareId, old, newBudget);
        h.budget = newBudget;
        emit HardwareBudgetCut(hardwareId, old, newBudget);
    }

    /// @notice Set how many failed attestations revoke a unit (governance only).
    function setFailureLimit(uint8 failureLimit_) external onlyOwner {
        if (failureLimit_ == 0) revert InvalidFailureLimit();
        failureLimit = failureLimit_;
        emit FailureLimitSet(failureLimit_);
    }

    /// @notice Set how long a unit has to answer a challenge (governance only).
    function setChallengeWindow(uint64 challengeWindow_) external onlyOwner {
        if (challengeWindow_ == 0) revert InvalidChallengeWindow();
        challengeWindow = challengeWindow_;
        emit ChallengeWindowSet(challengeWindow_);
    }

    /// @notice List or unlist a contract allowed to open challenges (governance only).
    function setChallenger(address challenger, bool allowed) external onlyOwner {
        if (challenger == address(0)) revert ZeroAddress();
        isChallenger[challenger] = allowed;
        emit ChallengerSet(challenger, allowed);
    }

    /// @notice Open a challenge with `seed` on an Approved unit (listed challengers only); does nothing
    /// when one is already open or the unit is not Approved.
    /// @return opened whether a new challenge was opened.
    function openChallenge(uint256 hardwareId, bytes32 seed) external returns (bool opened) {
        if (!isChallenger[msg.sender]) revert NotChallenger(msg.sender);
        Hardware storage h = _units[hardwareId];
        if (h.status != Status.Approved || h.challenge != bytes32(0) || seed == bytes32(0)) return false;
        uint64 deadline = uint64(block.timestamp) + challengeWindow;
        h.challenge = seed;
        h.challengedAt = uint64(block.timestamp);
        h.challengeDeadline = deadline;
        emit AttestationChallenged(hardwareId, seed, deadline);
        return true;
    }

    /// @notice Record an attestation signed by the unit's key (anyone may relay it). While a
    /// challenge is open the attestation must carry its seed and be observed after it (it answers
    /// the challenge); otherwise `challenge` is zero.
    /// @param observedAt when the unit took the measurement (not in the future).
    /// @param signature EIP-712 signature over
    /// `Attestation(hardwareId, nonce, measurement, observedAt, challenge)` with the unit's current `nonce`.
    /// @return ok whether the measurement matched the reference.
    function attest(
        uint256 hardwareId,
        bytes32 measurement,
        uint64 observedAt,
        bytes32 challenge,
        bytes calldata signature
    ) external returns (bool ok) {
        Hardware storage h = _approved(hardwareId);
        if (observedAt > block.timestamp) revert AttestationFromFuture(observedAt);
        bytes32 open = h.challenge;
        if (challenge != open) revert WrongChallenge(hardwareId, open, challenge);
        if (open != bytes32(0)) {
            if (block.timestamp > h.challengeDeadline) revert ChallengeOverdue(hardwareId, h.challengeDeadline);
            if (observedAt < h.challengedAt) revert AttestationBeforeChallenge(hardwareId, observedAt, h.challengedAt);
        }
        uint64 nonce = h.nonce;
        address signer =
            ECDSA.recover(attestationDigest(hardwareId, nonce, measurement, observedAt, challenge), signature);
        if (signer != h.attestationKey) revert BadAttestationSigner(hardwareId, signer);

        ok = measurement == h.referenceMeasurement;
        h.nonce = nonce + 1;
        h.lastAttestationOk = ok;
        h.lastAttestedAt = uint64(block.timestamp);
        emit AttestationRecorded(hardwareId, nonce, measurement, observedAt, ok);
        if (open != bytes32(0)) {
            h.challenge = bytes32(0);
            h.challengeDeadline = 0;
            emit ChallengeAnswered(hardwareId, open, ok);
        }
        if (!ok) _recordFailure(hardwareId, h);
    }

    /// @notice Count an unanswered challenge past its deadline as a failed attestation (anyone).
    function expireChallenge(uint256 hardwareId) external {
        Hardware storage h = _unit(hardwareId);
        bytes32 open = h.challenge;
        uint64 deadline = h.challengeDeadline;
        if (open == bytes32(0) || block.timestamp <= deadline) revert NoOverdueChallenge(hardwareId);
        h.challenge = bytes32(0);
        h.challengeDeadline = 0;
        h.lastAttestationOk = false;
        emit ChallengeMissed(hardwareId, open, deadline);
        if (h.status == Status.Approved) _recordFailure(hardwareId, h);
        else h.failedAttestations += 1;
    }

    /// @notice Record an inspection of a unit (registered personnel only).
    /// @param reportHash digest of the inspection report kept off-chain.
    function inspect(uint256 hardwareId, bool passed, bytes32 reportHash) external {
        if (!personnel.isActive(msg.sender)) revert NotPersonnel(msg.sender);
        Hardware storage h = _unit(hardwareId);
        h.lastInspectedAt = uint64(block.timestamp);
        emit InspectionRecorded(hardwareId, msg.sender, passed, reportHash);
    }

    /// @notice EIP-712 digest the unit signs for its attestation with `nonce` (challenge 0 if none is open).
    function attestationDigest(uint256 hardwareId, uint64 nonce, bytes32 measurement, uint64 observedAt, bytes32 challenge)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(abi.encode(ATTESTATION_TYPEHASH, hardwareId, nonce, measurement, observedAt, challenge))
        );
    }

    /// @notice Full record of `hardwareId`.
    function getHardware(uint256 hardwareId) external view returns (Hardware memory) {
        return _unit(hardwareId);
    }

    /// @notice Status, freeze, attestation and challenge state, approvals and budget of `hardwareId`
    /// (zeroed for unknown ids): what {OTKIssuer} checks at run opening, each ration and each key use.
    function health(uint256 hardwareId) external view returns (Health memory) {
        Hardware storage h = _units[hardwareId];
        return Health({
            status: h.status,
            frozen: h.frozen,
            lastAttestationOk: h.lastAttestationOk,
            challengeOverdue: h.challenge != bytes32(0) && block.timestamp > h.challengeDeadline,
            approvals: h.approvals,
            failedAttestations: h.failedAttestations,
            lastAttestedAt: h.lastAttestedAt,
            challengeDeadline: h.challengeDeadline,
            challenge: h.challenge,
            budget: h.budget
        });
    }

    /// @notice Current status of `hardwareId` (None for unknown ids).
    function statusOf(uint256 hardwareId) external view returns (Status) {
        return _units[hardwareId].status;
    }

    /// @notice Operator (registrant) of `hardwareId`.
    function operatorOf(uint256 hardwareId) external view returns (address) {
        return _units[hardwareId].operator;
    }

    /// @notice Compute budget of `hardwareId` (as approved, less any cut).
    function budgetOf(uint256 hardwareId) external view returns (uint256) {
        return _units[hardwareId].budget;
    }

    /// @notice Attestation health: last result, when it was recorded, and the lifetime count of
    /// failures (missed challenges included).
    function attestationState(uint256 hardwareId)
        external
        view
        returns (bool lastOk, uint64 lastAttestedAt, uint32 failedAttestations)
    {
        Hardware storage h = _units[hardwareId];
        return (h.lastAttestationOk, h.lastAttestedAt, h.failedAttestations);
    }

    function _recordFailure(uint256 hardwareId, Hardware storage h) private {
        h.failedAttestations += 1;
        uint8 failures = h.failuresSinceApproval + 1;
        h.failuresSinceApproval = failures;
        if (failures >= failureLimit) {
            h.status = Status.Pending;
            emit HardwareRevoked(hardwareId, failures);
        }
    }

    function _unit(uint256 hardwareId) private view returns (Hardware storage h) {
        h = _units[hardwareId];
        if (h.status == Status.None) revert UnknownHardware(hardwareId);
    }

    function _approved(uint256 hardwareId) private view returns (Hardware storage h) {
        h = _unit(hardwareId);
        if (h.status != Status.Approved) revert WrongHardwareStatus(hardwareId, h.status);
    }
}
