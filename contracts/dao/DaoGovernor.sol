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
/// @dev The per-type delay/period are fed to OZ's `_propose` through `votingDelay()`/`votingPeriod()`
/// reading a transient "type in flight", so `ProposalCreated` carries the real start and end.
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
    /// @param trackMask tracks allowed to vote, bit `1 << uint8(track)` (Policy = 2, Safety = 4).
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

    uint256 private constant BPS = 10_000;

    PersonnelRegistry public immutable personnel;

    mapping(ProposalType => TypeConfig) private _configs;
    mapping(uint256 proposalId => ProposalType) private _types;
    /// @dev The type's rules as they were when the proposal was created (later changes do not apply).
    mapping(uint256 proposalId => TypeConfig) private _rules;

    /// @dev `uint8(type) + 1` while `proposeTyped` runs; 0 outside (plain `propose` = System).
    uint8 private transient _typeInFlight;

    event ProposalTyped(uint256 indexed proposalId, ProposalType proposalType);
    event TypeConfigSet(ProposalType indexed proposalType, TypeConfig config);

    error InvalidTypeConfig(ProposalType proposalType);
    error ProposerTierTooLow(address proposer, uint8 tier, uint8 required);
    error VoterNotEligible(uint256 proposalId, address voter, PersonnelRegistry.Track track, uint8 tier);

    /// @param personnel_ the vote source.
    /// @param configs rules for Safety, Review, System and Emergency, in that order.
    constructor(PersonnelRegistry personnel_, TypeConfig[4] memory configs) Governor("LoyalDAO") {
        personnel = personnel_;
        for (uint8 i = 0; i < 4; ++i) {
            _setTypeConfig(ProposalType(i), configs[i]);
        }
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

    /// @notice Change the rules of a proposal type (governance only; applies to proposals created
    /// afterwards: each proposal keeps the rules it was created under).
    function setTypeConfig(ProposalType pType, TypeConfig calldata config) external onlyGovernance {
        _setTypeConfig(pType, config);
    }

    /// @notice Rules of `pType`.
    function typeConfig(ProposalType pType) external view returns (TypeConfig memory) {
        return _configs[pType];
    }

    /// @notice Type of proposal `proposalId` (System for unknown ids and plain `propose`).
    function proposalType(uint256 proposalId) external view returns (ProposalType) {
        return _types[proposalId];
    }

    /// @notice Rules `proposalId` was created under (zeroed for unknown ids).
    function proposalRules(uint256 proposalId) external view returns (TypeConfig memory) {
        return _rules[proposalId];
    }

    /// @notice Votes needed (For + Abstain) for `proposalId` to reach quorum; counts eligible
    /// personnel at the snapshot (at the current time while the snapshot is still in the future).
    function proposalQuorum(uint256 proposalId) public view returns (uint256) {
        return _quorumFor(_rules[proposalId], proposalSnapshot(proposalId));
    }

    /// @notice Quorum of a System proposal snapshotted at `timepoint` (OZ interface; typed
    /// proposals use {proposalQuorum}).
    function quorum(uint256 timepoint) public view override returns (uint256) {
        return _quorumFor(_configs[ProposalType.System], timepoint);
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
            c.minProposerTier == 0 || c.minProposerTier > 3 || c.tierMask == 0 || c.tierMask & 0xF1 != 0
                || c.trackMask == 0 || c.trackMask & 0xF9 != 0 || c.quorumBps == 0 || c.quorumBps > BPS
                || c.thresholdBps >= BPS || c.votingPeriod == 0 || c.executionWindow == 0
        ) revert InvalidTypeConfig(t);
        _configs[t] = c;
        emit TypeConfigSet(t, c);
    }

    function _quorumFor(TypeConfig storage c, uint256 timepoint) private view returns (uint256) {
        uint256 eligible = personnel.eligibleCount(c.tierMask, c.trackMask, timepoint);
        return Math.max(1, Math.mulDiv(eligible, c.quorumBps, BPS, Math.Rounding.Ceil));
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
        proposalId = super._propose(targets, values, calldatas, description, proposer);
        _types[proposalId] = t;
        _rules[proposalId] = _configs[t];
        emit ProposalTyped(proposalId, t);
    }

    /// @dev Refuses votes from addresses that were not registered with an eligible tier and track
    /// at the proposal snapshot (OZ would otherwise count a zero-weight vote).
    function _castVote(uint256 proposalId, address account, uint8 support, string memory reason, bytes memory params)
        internal
        override
        returns (uint256)
    {
        (PersonnelRegistry.Track track, uint8 tier) = personnel.roleAt(account, proposalSnapshot(proposalId));
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
        return forVotes * BPS > uint256(_rules[proposalId].thresholdBps) * (forVotes + againstVotes);
    }
}
