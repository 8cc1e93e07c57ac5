// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title DaoModelRegistry
/// @notice AI models submitted for use on DAO compute. A model enters Pending; a governance vote
/// approves it (setting its risk tier, scope, declared purpose, compute budget and certification
/// expiry) or rejects it. A rejected model may be put up for a retry vote by its submitter a bounded
/// number of times; an approved model's certification is renewed by vote. Emergency powers: an
/// approved model can be revoked for good (its runs halt, its unspent keys become reclaimable), its
/// remaining budget frozen (no new runs or rations until unfrozen) or cut.
/// @dev The owner is the governor; which proposal type may call which function is the governor's
/// allow-list. Compute budgets are in abstract compute units consumed by {OTKIssuer} rations, which
/// reads `runTerms` to enforce tier, scope, purpose, freeze and budget at run opening and issuance.
contract DaoModelRegistry is Ownable {
    enum Status {
        None,
        Pending,
        Approved,
        Rejected,
        Revoked
    }

    /// @notice Narrow models are restricted to their declared purpose's domain; General ones are not.
    /// A Narrow approval does not cover General runs.
    enum Scope {
        Narrow,
        General
    }

    struct Model {
        address submitter;
        Status status;
        uint8 tier;
        Scope scope;
        uint8 retries;
        bool frozen;
        uint64 certifiedUntil;
        uint192 computeBudget;
        bytes32 artifactHash;
        bytes32 purposeHash;
        string purpose;
        string uri;
    }

    /// @notice What a run needs to know of a model, in one call.
    struct RunTerms {
        Status status;
        uint8 tier;
        Scope scope;
        bool frozen;
        uint64 certifiedUntil;
        bytes32 purposeHash;
        uint256 budget;
    }

    uint8 public constant MAX_TIER = 3;
    /// @notice How many times a rejected model may be resubmitted for a retry vote.
    uint8 public immutable maxRetries;
    /// @notice Number of models ever submitted (ids are 1-based).
    uint256 public modelCount;

    mapping(uint256 id => Model) private _models;

    event ModelSubmitted(uint256 indexed modelId, address indexed submitter, bytes32 artifactHash, string uri);
    event ModelApproved(
        uint256 indexed modelId, uint8 tier, Scope scope, string purpose, uint256 computeBudget, uint64 certifiedUntil
    );
    event ModelRejected(uint256 indexed modelId, bytes32 reason);
    event ModelRetryRequested(uint256 indexed modelId, uint8 retries);
    event CertificationRenewed(uint256 indexed modelId, uint64 certifiedUntil);
    event ModelTermsChanged(uint256 indexed modelId, uint8 tier, Scope scope, string purpose);
    event ModelRevoked(uint256 indexed modelId, bytes32 reason);
    event ModelBudgetFrozen(uint256 indexed modelId, bytes32 reason);
    event ModelBudgetUnfrozen(uint256 indexed modelId);
    event ModelBudgetCut(uint256 indexed modelId, uint256 oldBudget, uint256 newBudget);

    error EmptyArtifact();
    error UnknownModel(uint256 modelId);
    error WrongModelStatus(uint256 modelId, Status status);
    error InvalidTier(uint8 tier);
    error ZeroBudget();
    error BudgetTooLarge(uint256 budget);
    error EmptyPurpose();
    error CertificationNotInFuture(uint64 certifiedUntil);
    error NotSubmitter(address caller);
    error RetryLimitReached(uint256 modelId, uint8 retries);
    error AlreadyFrozen(uint256 modelId);
    error NotFrozen(uint256 modelId);
    error NotABudgetCut(uint256 modelId, uint256 budget, uint256 requested);

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

    /// @notice Approve a Pending model (governance only) for runs of risk tier up to `tier`, of
    /// `scope` and of the declared `purpose`, with a total compute `budget`.
    function approve(
        uint256 modelId,
        uint8 tier,
        Scope scope,
        string calldata purpose,
        uint256 budget,
        uint64 certifiedUntil
    ) external onlyOwner {
        Model storage m = _pending(modelId);
        _checkTerms(tier, purpose);
        if (budget == 0) revert ZeroBudget();
        if (budget > type(uint192).max) revert BudgetTooLarge(budget);
        if (certifiedUntil <= block.timestamp) revert CertificationNotInFuture(certifiedUntil);
        m.status = Status.Approved;
        m.tier = tier;
        m.scope = scope;
        m.purpose = purpose;
        m.purposeHash = keccak256(bytes(purpose));
        m.computeBudget = uint192(budget);
        m.certifiedUntil = certifiedUntil;
        emit ModelApproved(modelId, tier, scope, purpose, budget, certifiedUntil);
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
        Model storage m = _approved(modelId);
        if (certifiedUntil <= block.timestamp || certifiedUntil <= m.certifiedUntil) {
            revert CertificationNotInFuture(certifiedUntil);
        }
        m.certifiedUntil = certifiedUntil;
        emit CertificationRenewed(modelId, certifiedUntil);
    }

    /// @notice Change an Approved model's tier, scope or purpose (governance only). Runs opened under
    /// terms the model no longer has halt at their next ration.
    function setTerms(uint256 modelId, uint8 tier, Scope scope, string calldata purpose) external onlyOwner {
        Model storage m = _approved(modelId);
        _checkTerms(tier, purpose);
        m.tier = tier;
        m.scope = scope;
        m.purpose = purpose;
        m.purposeHash = keccak256(bytes(purpose));
        emit ModelTermsChanged(modelId, tier, scope, purpose);
    }

    /// @notice Emergency: revoke an Approved model for good (governance only). Its runs halt and their
    /// unconsumed keys become reclaimable; a revoked model cannot be approved again (submit anew).
    function revoke(uint256 modelId, bytes32 reason) external onlyOwner {
        Model storage m = _approved(modelId);
        m.status = Status.Revoked;
        emit ModelRevoked(modelId, reason);
    }

    /// @notice Emergency: freeze an Approved model's remaining budget (governance only): no new runs
    /// or rations until unfrozen; keys already issued stay consumable.
    function freezeBudget(uint256 modelId, bytes32 reason) external onlyOwner {
        Model storage m = _approved(modelId);
        if (m.frozen) revert AlreadyFrozen(modelId);
        m.frozen = true;
        emit ModelBudgetFrozen(modelId, reason);
    }

    /// @notice Lift a budget freeze (governance only).
    function unfreezeBudget(uint256 modelId) external onlyOwner {
        Model storage m = _model(modelId);
        if (!m.frozen) revert NotFrozen(modelId);
        m.frozen = false;
        emit ModelBudgetUnfrozen(modelId);
    }

    /// @notice Emergency: lower an Approved model's total budget to `newBudget` (governance only; a cut
    /// only lowers). Units already issued stay issued; below them, nothing more is issued.
    function cutBudget(uint256 modelId, uint256 newBudget) external onlyOwner {
        Model storage m = _approved(modelId);
        uint256 old = m.computeBudget;
        if (newBudget >= old) revert NotABudgetCut(modelId, old, newBudget);
        m.computeBudget = uint192(newBudget);
        emit ModelBudgetCut(modelId, old, newBudget);
    }

    /// @notice Whether `modelId` is Approved with an unexpired certification.
    function isCertified(uint256 modelId) external view returns (bool) {
        Model storage m = _models[modelId];
        return m.status == Status.Approved && block.timestamp < m.certifiedUntil;
    }

    /// @notice Status, tier, scope, freeze, certification, purpose digest and budget of `modelId`
    /// (zeroed for unknown ids): what {OTKIssuer} checks at run opening and at each ration.
    function runTerms(uint256 modelId) external view returns (RunTerms memory) {
        Model storage m = _models[modelId];
        return RunTerms(m.status, m.tier, m.scope, m.frozen, m.certifiedUntil, m.purposeHash, m.computeBudget);
    }

    /// @notice Full record of `modelId`.
    function getModel(uint256 modelId) external view returns (Model memory) {
        return _model(modelId);
    }

    /// @notice Compute budget of `modelId` (as approved, less any cut).
    function computeBudget(uint256 modelId) external view returns (uint256) {
        return _models[modelId].computeBudget;
    }

    function _checkTerms(uint8 tier, string calldata purpose) private pure {
        if (tier == 0 || tier > MAX_TIER) revert InvalidTier(tier);
        if (bytes(purpose).length == 0) revert EmptyPurpose();
    }

    function _model(uint256 modelId) private view returns (Model storage m) {
        m = _models[modelId];
        if (m.status == Status.None) revert UnknownModel(modelId);
    }

    function _pending(uint256 modelId) private view returns (Model storage m) {
        m = _model(modelId);
        if (m.status != Status.Pending) revert WrongModelStatus(modelId, m.status);
    }

    function _approved(uint256 modelId) private view returns (Model storage m) {
        m = _model(modelId);
        if (m.status != Status.Approved) revert WrongModelStatus(modelId, m.status);
    }
}
