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
/// @dev The owner is the governor. The signature check proves which key signed the measurement;
/// it does not prove the measurement is true (that is what the reference value, inspections and
/// revocation are for). Each attestation carries the unit's next nonce, so none can be replayed.
contract HardwareRegistry is Ownable, EIP712 {
    enum Status {
        None,
        Pending,
        Approved
    }

    struct Hardware {
        address operator;
        address attestationKey;
        Status status;
        bool lastAttestationOk;
        uint8 failuresSinceApproval;
        uint32 failedAttestations;
        uint64 nonce;
        uint64 lastAttestedAt;
        uint64 lastInspectedAt;
        bytes32 referenceMeasurement;
        uint256 budget;
        string meta;
    }

    bytes32 public constant ATTESTATION_TYPEHASH =
        keccak256("Attestation(uint256 hardwareId,uint64 nonce,bytes32 measurement,uint64 observedAt)");

    PersonnelRegistry public immutable personnel;
    /// @notice Failed attestations (since approval) that revoke a unit to Pending.
    uint8 public failureLimit;
    /// @notice Number of units ever registered (ids are 1-based).
    uint256 public hardwareCount;

    mapping(uint256 id => Hardware) private _units;

    event HardwareRegistered(
        uint256 indexed hardwareId, address indexed operator, address attestationKey, bytes32 referenceMeasurement
    );
    event HardwareApproved(uint256 indexed hardwareId, uint256 budget);
    event HardwareRevoked(uint256 indexed hardwareId, uint8 failures);
    event AttestationRecorded(uint256 indexed hardwareId, uint64 nonce, bytes32 measurement, uint64 observedAt, bool ok);
    event InspectionRecorded(uint256 indexed hardwareId, address indexed inspector, bool passed, bytes32 reportHash);
    event FailureLimitSet(uint8 failureLimit);

    error ZeroAddress();
    error EmptyMeasurement();
    error UnknownHardware(uint256 hardwareId);
    error WrongHardwareStatus(uint256 hardwareId, Status status);
    error ZeroBudget();
    error InvalidFailureLimit();
    error BadAttestationSigner(uint256 hardwareId, address signer);
    error AttestationFromFuture(uint64 observedAt);
    error NotPersonnel(address caller);

    /// @param governance owner (the governor).
    /// @param personnel_ registry whose members may record inspections.
    /// @param failureLimit_ failed attestations that revoke a unit.
    constructor(address governance, PersonnelRegistry personnel_, uint8 failureLimit_)
        Ownable(governance)
        EIP712("LoyalHardwareRegistry", "1")
    {
        if (failureLimit_ == 0) revert InvalidFailureLimit();
        personnel = personnel_;
        failureLimit = failureLimit_;
        emit FailureLimitSet(failureLimit_);
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
    /// failure count; the unit must attest again before it receives rations.
    function approve(uint256 hardwareId, uint256 budget) external onlyOwner {
        Hardware storage h = _unit(hardwareId);
        if (h.status != Status.Pending) revert WrongHardwareStatus(hardwareId, h.status);
        if (budget == 0) revert ZeroBudget();
        h.status = Status.Approved;
        h.budget = budget;
        h.failuresSinceApproval = 0;
        h.lastAttestationOk = false;
        h.lastAttestedAt = 0;
        emit HardwareApproved(hardwareId, budget);
    }

    /// @notice Set how many failed attestations revoke a unit (governance only).
    function setFailureLimit(uint8 failureLimit_) external onlyOwner {
        if (failureLimit_ == 0) revert InvalidFailureLimit();
        failureLimit = failureLimit_;
        emit FailureLimitSet(failureLimit_);
    }

    /// @notice Record an attestation signed by the unit's key (anyone may relay it).
    /// @param observedAt when the unit took the measurement (not in the future).
    /// @param signature EIP-712 signature over `Attestation(hardwareId, nonce, measurement, observedAt)`
    /// with the unit's current `nonce`.
    /// @return ok whether the measurement matched the reference.
    function attest(uint256 hardwareId, bytes32 measurement, uint64 observedAt, bytes calldata signature)
        external
        returns (bool ok)
    {
        Hardware storage h = _unit(hardwareId);
        if (h.status != Status.Approved) revert WrongHardwareStatus(hardwareId, h.status);
        if (observedAt > block.timestamp) revert AttestationFromFuture(observedAt);
        uint64 nonce = h.nonce;
        address signer = ECDSA.recover(attestationDigest(hardwareId, nonce, measurement, observedAt), signature);
        if (signer != h.attestationKey) revert BadAttestationSigner(hardwareId, signer);

        ok = measurement == h.referenceMeasurement;
        h.nonce = nonce + 1;
        h.lastAttestationOk = ok;
        h.lastAttestedAt = uint64(block.timestamp);
        emit AttestationRecorded(hardwareId, nonce, measurement, observedAt, ok);
        if (!ok) {
            h.failedAttestations += 1;
            uint8 failures = h.failuresSinceApproval + 1;
            h.failuresSinceApproval = failures;
            if (failures >= failureLimit) {
                h.status = Status.Pending;
                emit HardwareRevoked(hardwareId, failures);
            }
        }
    }

    /// @notice Record an inspection of a unit (registered personnel only).
    /// @param reportHash digest of the inspection report kept off-chain.
    function inspect(uint256 hardwareId, bool passed, bytes32 reportHash) external {
        if (!personnel.isActive(msg.sender)) revert NotPersonnel(msg.sender);
        Hardware storage h = _unit(hardwareId);
        h.lastInspectedAt = uint64(block.timestamp);
        emit InspectionRecorded(hardwareId, msg.sender, passed, reportHash);
    }

    /// @notice EIP-712 digest the unit signs for its attestation with `nonce`.
    function attestationDigest(uint256 hardwareId, uint64 nonce, bytes32 measurement, uint64 observedAt)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(ATTESTATION_TYPEHASH, hardwareId, nonce, measurement, observedAt)));
    }

    /// @notice Full record of `hardwareId`.
    function getHardware(uint256 hardwareId) external view returns (Hardware memory) {
        return _unit(hardwareId);
    }

    /// @notice Current status of `hardwareId` (None for unknown ids).
    function statusOf(uint256 hardwareId) external view returns (Status) {
        return _units[hardwareId].status;
    }

    /// @notice Operator (registrant) of `hardwareId`.
    function operatorOf(uint256 hardwareId) external view returns (address) {
        return _units[hardwareId].operator;
    }

    /// @notice Approved compute budget of `hardwareId`.
    function budgetOf(uint256 hardwareId) external view returns (uint256) {
        return _units[hardwareId].budget;
    }

    /// @notice Attestation health: last result, when it was recorded, and the lifetime count of failures.
    function attestationState(uint256 hardwareId)
        external
        view
        returns (bool lastOk, uint64 lastAttestedAt, uint32 failedAttestations)
    {
        Hardware storage h = _units[hardwareId];
        return (h.lastAttestationOk, h.lastAttestedAt, h.failedAttestations);
    }

    function _unit(uint256 hardwareId) private view returns (Hardware storage h) {
        h = _units[hardwareId];
        if (h.status == Status.None) revert UnknownHardware(hardwareId);
    }
}
