// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title DaoModelRegistry
/// @notice AI models submitted for use on DAO compute. A model enters Pending; a governance vote
/// approves it (setting its risk tier, declared purpose, compute budget and certification expiry)
/// or rejects it. A rejected model may be put up for a retry vote by its submitter a bounded number
/// of times; an approved model's certification is renewed by vote.
/// @dev The owner is the governor. Compute budgets are in abstract compute units consumed by
/// {OTKIssuer} rations.
contract DaoModelRegistry is Ownable {
    enum Status {
        None,
        Pending,
        Approved,
        Rejected
    }

    struct Model {
        address submitter;
        Status status;
        uint8 tier;
        uint8 retries;
        uint64 certifiedUntil;
        bytes32 artifactHash;
        uint256 computeBudget;
        string purpose;
        string uri;
    }

    uint8 public constant MAX_TIER = 3;
    /// @notice How many times a rejected model may be resubmitted for a retry vote.
    uint8 public immutable maxRetries;
    /// @notice Number of models ever submitted (ids are 1-based).
    uint256 public modelCount;

    mapping(uint256 id => Model) private _models;

    event ModelSubmitted(uint256 indexed modelId, address indexed submitter, bytes32 artifactHash, string uri);
    event ModelApproved(
        uint256 indexed modelId, uint8 tier, string purpose, uint256 computeBudget, uint64 certifiedUntil
    );
    event ModelRejected(uint256 indexed modelId, bytes32 reason);
    event ModelRetryRequested(uint256 indexed modelId, uint8 retries);
    event CertificationRenewed(uint256 indexed modelId, uint64 certifiedUntil);

    error EmptyArtifact();
    error UnknownModel(uint256 modelId);
    error WrongModelStatus(uint256 modelId, Status status);
    error InvalidTier(uint8 tier);
    error ZeroBudget();
    error EmptyPurpose();
    error CertificationNotInFuture(uint64 certifiedUntil);
    error NotSubmitter(address caller);
    error RetryLimitReached(uint256 modelId, uint8 retries);

    /// @param governance owner (the governor).
    /// @param maxRetries_ retry votes a rejected model may request.
    constructor(address governance, uint8 maxRetries_) Ownable(governance) {
        maxRetries = maxRetries_;
    }

    /// @notice Submit a model for review; it starts Pending.
    /// @param artifactHash digest of the model weights/artifact.
    /// @param uri where reviewers fetch the artifact and model card (e.g. a content id).
    function submit(bytes32 artifactHash, string calldata uri) external returns (uint256 modelId) {
        if (artifactHash == bytes32(0)) revert EmptyArtifact();
        modelId = ++modelCount;
        Model storage m = _models[modelId];
        m.submitter = msg.sender;
        m.status = Status.Pending;
        m.artifactHash = artifactHash;
        m.uri = uri;
        emit ModelSubmitted(modelId, msg.sender, artifactHash, uri);
    }

    /// @notice Approve a Pending model (governance only).
    function approve(uint256 modelId, uint8 tier, string calldata purpose, uint256 budget, uint64 certifiedUntil)
        external
        onlyOwner
    {
        Model storage m = _pending(modelId);
        if (tier == 0 || tier > MAX_TIER) revert InvalidTier(tier);
        if (bytes(purpose).length == 0) revert EmptyPurpose();
        if (budget == 0) revert ZeroBudget();
        if (certifiedUntil <= block.timestamp) revert CertificationNotInFuture(certifiedUntil);
        m.status = Status.Approved;
        m.tier = tier;
        m.purpose = purpose;
        m.computeBudget = budget;
        m.certifiedUntil = certifiedUntil;
        emit ModelApproved(modelId, tier, purpose, budget, certifiedUntil);
    }

    /// @notice Reject a Pending model (governance only).
    function reject(uint256 modelId, bytes32 reason) external onlyOwner {
        Model storage m = _pending(modelId);
        m.status = Status.Rejected;
        emit ModelRejected(modelId, reason);
    }

    /// @notice Put a Rejected model back to Pending for a retry vote (submitter only, bounded).
    function requestRetry(uint256 modelId) external {
        Model storage m = _model(modelId);
        if (msg.sender != m.submitter) revert NotSubmitter(msg.sender);
        if (m.status != Status.Rejected) revert WrongModelStatus(modelId, m.status);
        if (m.retries >= maxRetries) revert RetryLimitReached(modelId, m.retries);
        m.retries += 1;
        m.status = Status.Pending;
        emit ModelRetryRequested(modelId, m.retries);
    }

    /// @notice Extend an Approved model's certification (governance only; also revives an expired one).
    function renewCertification(uint256 modelId, uint64 certifiedUntil) external onlyOwner {
        Model storage m = _model(modelId);
        if (m.status != Status.Approved) revert WrongModelStatus(modelId, m.status);
        if (certifiedUntil <= block.timestamp || certifiedUntil <= m.certifiedUntil) {
            revert CertificationNotInFuture(certifiedUntil);
        }
        m.certifiedUntil = certifiedUntil;
        emit CertificationRenewed(modelId, certifiedUntil);
    }

    /// @notice Whether `modelId` is Approved with an unexpired certification.
    function isCertified(uint256 modelId) external view returns (bool) {
        Model storage m = _models[modelId];
        return m.status == Status.Approved && block.timestamp < m.certifiedUntil;
    }

    /// @notice Full record of `modelId`.
    function getModel(uint256 modelId) external view returns (Model memory) {
        return _model(modelId);
    }

    /// @notice Compute budget granted to `modelId` by its approval vote.
    function computeBudget(uint256 modelId) external view returns (uint256) {
        return _models[modelId].computeBudget;
    }

    function _model(uint256 modelId) private view returns (Model storage m) {
        m = _models[modelId];
        if (m.status == Status.None) revert UnknownModel(modelId);
    }

    function _pending(uint256 modelId) private view returns (Model storage m) {
        m = _model(modelId);
        if (m.status != Status.Pending) revert WrongModelStatus(modelId, m.status);
    }
}
