// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {PersonnelRegistry} from "./PersonnelRegistry.sol";

/// @title DaoGovernor
/// @notice OpenZeppelin Governor (with GovernorCountingSimple) whose votes come from the
/// {PersonnelRegistry} instead of an ERC20Votes token: one registered person, one vote.
/// Proposals are typed (Safety, Review, System, Emergency); each type has its own voting delay and
/// period (emergency proposals have short windows), quorum (share of eligible personnel at the
/// snapshot), success threshold (share of For among For+Against), minimum proposer tier, and the
/// tiers and tracks allowed to vote. States, events, `castVoteBySig` (EIP-712) and execution are
/// OpenZeppelin's; the governor executes its own proposals (it owns the DAO registries).
/// A succeeded proposal must be executed within its type's execution window after voting ends;
/// after that it is `Expired` and can no longer be executed (OZ's state, which plain Governor
/// only reaches with a timelock).
/// Each type is bound to an allow-list of actions, (target, selector) pairs: `propose` refuses a
/// proposal with any action outside its type's list (`ActionNotAllowed`), and `execute` checks the
/// list again (a narrowed list stops proposals created before). The governor's own rule setters
/// (`setTypeConfig`, `setActionAllowed`) are never on a list: they belong to System proposals only,
/// run only while a System proposal executes, and such a proposal needs the rule-change
/// supermajority fixed at deployment (`ruleChangeQuorumBps`, `ruleChangeThresholdBps`) on top of
/// System's own rules. So no proposal of another type can widen any type's powers.
/// @dev The per-type delay/period are fed to OZ's `_propose` through `votingDelay()`/`votingPeriod()`
/// reading a transient "type in flight", so `ProposalCreated` carries the real start and end.
/// The deployer fills the allow-lists once (`bootstrapAllow`, then `sealBootstrap`), because the
/// registries are deployed after the governor that owns them; from the seal on, only votes change them.
contract DaoGovernor is Governor, GovernorCountingSimple {
    enum ProposalType {
        Safety,
        Review,
        System,
        Emergency
    }

    /// @notice Rules of one proposal type.
    /// @param minProposerTier lowest tier allowed to propose this type (1..3).
    /// @param tierMask tiers allowed to vote, bit `1 << tier`.
    /// @param trackMask tracks allowed to vote, bit `1 << uint8(track)` (Policy = 2, Safety = 4,
    /// Software = 8, Hardware = 16).
    /// @param quorumBps For+Abstain votes needed, in basis points of the eligible voters at the snapshot.
    /// @param thresholdBps For must exceed this share (basis points) of For+Against.
    /// @param votingDelay seconds between proposal and snapshot/start of voting.
    /// @param votingPeriod seconds of voting.
    /// @param executionWindow seconds after the end of voting in which a succeeded proposal may be
    /// executed; later it is Expired.
    struct TypeConfig {
        uint8 minProposerTier;
        uint8 tierMask;
        uint8 trackMask;
        uint16 quorumBps;
        uint16 thresholdBps;
        uint32 votingDelay;
        uint32 votingPeriod;
        uint32 executionWindow;
    }

    /// @notice One entry of a type's allow-list: `proposalType` may call `selector` on `target`.
    struct AllowedAction {
        ProposalType proposalType;
        address target;
        bytes4 selector;
    }

    /// @dev What the governor remembers of a proposal besides OZ's record (one storage word).
    struct ProposalMeta {
        ProposalType proposalType;
        bool changesRules;
    }

    uint256 private constant BPS = 10_000;
    uint8 private constant VALID_TIERS = 0x0E; // bits 1..3
    uint8 private constant VALID_TRACKS = 0x1E; // bits 1..4: Policy, Safety, Software, Hardware

    PersonnelRegistry public immutable personnel;
    /// @notice Quorum (bps of the System type's eligible voters) a rule-changing proposal needs at least.
    uint16 public immutable ruleChangeQuorumBps;
    /// @notice For must exceed this share (bps of For+Against) for a rule-changing proposal.
    uint16 public immutable ruleChangeThresholdBps;
    /// @notice Who may fill the allow-lists before `sealBootstrap` (the deployer).
    address public immutable bootstrapper;
    /// @notice True once the deployer sealed the initial allow-lists; afterwards only votes change them.
    bool public bootstrapSealed;

    mapping(ProposalType => TypeConfig) private _configs;
    mapping(ProposalType => mapping(address target => mapping(bytes4 selector => bool))) private _allowed;
    mapping(uint256 proposalId => ProposalMeta) private _meta;
    /// @dev The type's rules as they were when the proposal was created (later changes do not apply).
    mapping(uint256 proposalId => TypeConfig) private _rules;

    /// @dev `uint8(type) + 1` while `proposeTyped` runs; 0 outside (plain `propose` = System).
    uint8 private transient _typeInFlight;
    /// @dev `uint8(type) + 1` while a proposal of that type executes; 0 outside.
    uint8 private transient _typeExecuting;

    event ProposalTyped(uint256 indexed proposalId, ProposalType proposalType);
    event TypeConfigSet(ProposalType indexed proposalType, TypeConfig config);
    event ActionAllowed(ProposalType indexed proposalType, address indexed target, bytes4 indexed selector, bool allowed);
    event BootstrapSealed();

    error InvalidTypeConfig(ProposalType proposalType);
    error ProposerTierTooLow(address proposer, uint8 tier, uint8 required);
    error VoterNotEligible(uint256 proposalId, address voter, PersonnelRegistry.Track track, uint8 tier);
    /// @notice A `proposalType` proposal may not call `selector` on `target` (not on its allow-list).
    error ActionNotAllowed(ProposalType proposalType, address target, bytes4 selector);
    /// @notice The governor's own functions are not listable: rule setters are System's by construction.
    error GovernorActionNotListable(bytes4 selector);
    /// @notice A rule setter ran outside the execution of a System proposal.
    error RuleChangeOutsideSystem();
    error NotBootstrapper(address caller);
    error BootstrapClosed();
    error InvalidRuleChangeMajority();

    /// @param personnel_ the vote source.
    /// @param configs rules for Safety, Review, System and Emergency, in that order.
    /// @param ruleChangeQuorumBps_ minimum quorum of a rule-changing System proposal (fixed for good).
    /// @param ruleChangeThresholdBps_ minimum For share of a rule-changing System proposal (fixed for good).
    constructor(
        PersonnelRegistry personnel_,
        TypeConfig[4] memory configs,
        uint16 ruleChangeQuorumBps_,
        uint16 ruleChangeThresholdBps_
    ) Governor("LoyalDAO") {
        if (
            ruleChangeQuorumBps_ == 0 || ruleChangeQuorumBps_ > BPS || ruleChangeThresholdBps_ < BPS / 2
                || ruleChangeThresholdBps_ >= BPS
        ) revert InvalidRuleChangeMajority();
        personnel = personnel_;
        ruleChangeQuorumBps = ruleChangeQuorumBps_;
        ruleChangeThresholdBps = ruleChangeThresholdBps_;
        bootstrapper = msg.sender;
        for (uint8 i = 0; i < 4; ++i) {
            _setTypeConfig(ProposalType(i), configs[i]);
        }
    }

    /// @notice Fill the initial allow-lists (deployer only, before `sealBootstrap`).
    function bootstrapAllow(AllowedAction[] calldata actions) external {
        if (msg.sender != bootstrapper) revert NotBootstrapper(msg.sender);
        if (bootstrapSealed) revert BootstrapClosed();
        for (uint256 i = 0; i < actions.length; ++i) {
            _setActionAllowed(actions[i].proposalType, actions[i].target, actions[i].selector, true);
        }
    }

    /// @notice End the deployer's bootstrap for good (deployer only): from now on only votes change the lists.
    function sealBootstrap() external {
        if (msg.sender != bootstrapper) revert NotBootstrapper(msg.sender);
        if (bootstrapSealed) revert BootstrapClosed();
        bootstrapSealed = true;
        emit BootstrapSealed();
    }

    /// @notice Create a proposal of type `pType` (OZ `propose` semantics otherwise).
    /// @return proposalId the OZ proposal id (hash of actions and description).
    function proposeTyped(
        ProposalType pType,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        string memory description
    ) external returns (uint256 proposalId) {
        _typeInFlight = uint8(pType) + 1;
        proposalId = propose(targets, values, calldatas, description);
        _typeInFlight = 0;
    }

    /// @notice Change the rules of a proposal type (System proposals only, with the rule-change
    /// supermajority; applies to proposals created afterwards: each keeps the rules it was created under).
    function setTypeConfig(ProposalType pType, TypeConfig calldata config) external onlyGovernance {
        _requireSystemExecuting();
        _setTypeConfig(pType, config);
    }

    /// @notice Put (target, selector) on or off the allow-list of `pType` (System proposals only,
    /// with the rule-change supermajority). Narrowing also stops proposals already created.
    function setActionAllowed(ProposalType pType, address target, bytes4 selector, bool allowed)
        external
        onlyGovernance
    {
        _requireSystemExecuting();
        _setActionAllowed(pType, target, selector, allowed);
    }

    /// @notice Whether a `pType` proposal may call `selector` on `target` (the governor's rule
    /// setters: System only).
    function isActionAllowed(ProposalType pType, address target, bytes4 selector) public view returns (bool) {
        if (target == address(this)) return pType == ProposalType.System && _isRuleSetter(selector);
        return _allowed[pType][target][selector];
    }

    /// @notice Whether `proposalId` changes the governor's rules (and so needs the rule-change supermajority).
    function proposalChangesRules(uint256 proposalId) external view returns (bool) {
        return _meta[proposalId].changesRules;
    }

    /// @notice Rules of `pType`.
    function typeConfig(ProposalType pType) external view returns (TypeConfig memory) {
        return _configs[pType];
    }

    /// @notice Type of proposal `proposalId` (System for unknown ids and plain `propose`).
    function proposalType(uint256 proposalId) external view returns (ProposalType) {
        return _meta[proposalId].proposalType;
    }

    /// @notice Rules `proposalId` was created under (zeroed for unknown ids).
    function proposalRules(uint256 proposalId) external view returns (TypeConfig memory) {
        return _rules[proposalId];
    }

    /// @notice Votes needed (For + Abstain) for `proposalId` to reach quorum; counts eligible
    /// personnel at the snapshot (at the current time while the snapshot is still in the future).
    function proposalQuorum(uint256 proposalId) public view returns (uint256) {
        TypeConfig storage c = _rules[proposalId];
        uint16 bps = c.quorumBps;
        if (_meta[proposalId].changesRules && bps < ruleChangeQuorumBps) bps = ruleChangeQuorumBps;
        return _quorumFor(c.tierMask, c.trackMask, bps, proposalSnapshot(proposalId));
    }

    /// @notice Quorum of a System proposal snapshotted at `timepoint` (OZ interface; typed
    /// proposals use {proposalQuorum}).
    function quorum(uint256 timepoint) public view override returns (uint256) {
        TypeConfig storage c = _configs[ProposalType.System];
        return _quorumFor(c.tierMask, c.trackMask, c.quorumBps, timepoint);
    }

    /// @notice Voting delay of the type being proposed (System outside a proposal).
    function votingDelay() public view override returns (uint256) {
        return _configs[_currentType()].votingDelay;
    }

    /// @notice Voting period of the type being proposed (System outside a proposal).
    function votingPeriod() public view override returns (uint256) {
        return _configs[_currentType()].votingPeriod;
    }

    /// @notice Proposers must be registered personnel (one vote); the tier rule is per type.
    function proposalThreshold() public pure override returns (uint256) {
        return 1;
    }

    /// @notice Timestamp clock (ERC-6372), matching the registry checkpoints.
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice ERC-6372 clock description.
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    /// @notice OZ's proposal state, with `Expired` for a succeeded proposal whose execution window
    /// (of its type, as of its creation) has passed.
    function state(uint256 proposalId) public view override returns (ProposalState) {
        ProposalState s = super.state(proposalId);
        if (s == ProposalState.Succeeded && clock() > proposalDeadline(proposalId) + _rules[proposalId].executionWindow) {
            return ProposalState.Expired;
        }
        return s;
    }

    function _currentType() private view returns (ProposalType) {
        uint8 t = _typeInFlight;
        return t == 0 ? ProposalType.System : ProposalType(t - 1);
    }

    function _setTypeConfig(ProposalType t, TypeConfig memory c) private {
        if (
            c.minProposerTier == 0 || c.minProposerTier > 3 || c.tierMask == 0 || c.tierMask & ~VALID_TIERS != 0
                || c.trackMask == 0 || c.trackMask & ~VALID_TRACKS != 0 || c.quorumBps == 0 || c.quorumBps > BPS
                || c.thresholdBps >= BPS || c.votingPeriod == 0 || c.executionWindow == 0
        ) revert InvalidTypeConfig(t);
        _configs[t] = c;
        emit TypeConfigSet(t, c);
    }

    function _setActionAllowed(ProposalType t, address target, bytes4 selector, bool allowed) private {
        if (target == address(this)) revert GovernorActionNotListable(selector);
        _allowed[t][target][selector] = allowed;
        emit ActionAllowed(t, target, selector, allowed);
    }

    function _isRuleSetter(bytes4 selector) private pure returns (bool) {
        return selector == this.setTypeConfig.selector || selector == this.setActionAllowed.selector;
    }

    function _requireSystemExecuting() private view {
        if (_typeExecuting != uint8(ProposalType.System) + 1) revert RuleChangeOutsideSystem();
    }

    /// @dev Refuses any action outside `t`'s allow-list; returns whether one is a rule setter.
    function _checkActions(ProposalType t, address[] memory targets, bytes[] memory calldatas)
        private
        view
        returns (bool changesRules)
    {
        for (uint256 i = 0; i < targets.length; ++i) {
            bytes4 selector = _selectorOf(calldatas[i]);
            if (!isActionAllowed(t, targets[i], selector)) revert ActionNotAllowed(t, targets[i], selector);
            if (targets[i] == address(this)) changesRules = true;
        }
    }

    function _selectorOf(bytes memory data) private pure returns (bytes4 selector) {
        if (data.length < 4) return bytes4(0);
        assembly ("memory-safe") {
            selector := mload(add(data, 32))
        }
    }

    function _quorumFor(uint8 tierMask, uint8 trackMask, uint16 bps, uint256 timepoint) private view returns (uint256) {
        uint256 eligible = personnel.eligibleCount(tierMask, trackMask, timepoint);
        return Math.max(1, Math.mulDiv(eligible, bps, BPS, Math.Rounding.Ceil));
    }

    function _propose(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        string memory description,
        address proposer
    ) internal override returns (uint256 proposalId) {
        ProposalType t = _currentType();
        (, uint8 tier) = personnel.roleAt(proposer, clock() - 1);
        uint8 required = _configs[t].minProposerTier;
        if (tier < required) revert ProposerTierTooLow(proposer, tier, required);
        bool changesRules = _checkActions(t, targets, calldatas);
        proposalId = super._propose(targets, values, calldatas, description, proposer);
        _meta[proposalId] = ProposalMeta(t, changesRules);
        _rules[proposalId] = _configs[t];
        emit ProposalTyped(proposalId, t);
    }

    /// @dev Checks the allow-list again (a list narrowed since the proposal was created stops it) and
    /// marks the type executing, which the rule setters read.
    function _executeOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override {
        ProposalType t = _meta[proposalId].proposalType;
        _checkActions(t, targets, calldatas);
        _typeExecuting = uint8(t) + 1;
        super._executeOperations(proposalId, targets, values, calldatas, descriptionHash);
        _typeExecuting = 0;
    }

    /// @dev Refuses votes from addresses that were not registered with an eligible tier and track
    /// at the proposal snapshot (OZ would otherwise count a zero-weight vote).
    function _castVote(uint256 proposalId, address account, uint8 support, string memory reason, bytes memory params)
        internal
        override
        returns (uint256)
    {
        uint256 snapshot = proposalSnapshot(proposalId);
        if (snapshot == 0) revert GovernorNonexistentProposal(proposalId);
        (PersonnelRegistry.Track track, uint8 tier) = personnel.roleAt(account, snapshot);
        TypeConfig storage c = _rules[proposalId];
        if (tier == 0 || c.tierMask & (1 << tier) == 0 || c.trackMask & (1 << uint8(track)) == 0) {
            revert VoterNotEligible(proposalId, account, track, tier);
        }
        return super._castVote(proposalId, account, support, reason, params);
    }

    function _getVotes(address account, uint256 timepoint, bytes memory) internal view override returns (uint256) {
        (, uint8 tier) = personnel.roleAt(account, timepoint);
        return tier == 0 ? 0 : 1;
    }

    function _quorumReached(uint256 proposalId) internal view override(Governor, GovernorCountingSimple) returns (bool) {
        (, uint256 forVotes, uint256 abstainVotes) = proposalVotes(proposalId);
        return forVotes + abstainVotes >= proposalQuorum(proposalId);
    }

    function _voteSucceeded(uint256 proposalId)
        internal
        view
        override(Governor, GovernorCountingSimple)
        returns (bool)
    {
        (uint256 againstVotes, uint256 forVotes,) = proposalVotes(proposalId);
        uint256 threshold = _rules[proposalId].thresholdBps;
        if (_meta[proposalId].changesRules && threshold < ruleChangeThresholdBps) threshold = ruleChangeThresholdBps;
        return forVotes * BPS > threshold * (forVotes + againstVotes);
    }
}
