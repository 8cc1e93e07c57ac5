// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title PersonnelRegistry
/// @notice Vetted DAO personnel: each member has a track (the area of expertise: Policy, Safety,
/// Software or Hardware) and a tier (1..3).
/// The registry is the vote source of {DaoGovernor}: every role change is checkpointed by
/// timestamp (OpenZeppelin Checkpoints), so a proposal reads eligibility at its snapshot and later
/// admissions, removals or tier changes cannot change who may vote on it.
/// @dev The owner is the governor: admissions, tier changes and removals happen only by vote
/// (the deployer admits the genesis members and then hands ownership to the governor).
/// Whistle-blower reports are open to any address and live only in events.
contract PersonnelRegistry is Ownable {
    using Checkpoints for Checkpoints.Trace208;

    /// @notice Area of a member (Policy, Safety, Software, Hardware); `None` marks an address that is
    /// not registered. Which areas vote on which proposal type is the governor's per-type track mask.
    enum Track {
        None,
        Policy,
        Safety,
        Software,
        Hardware
    }

    uint8 public constant MAX_TIER = 3;
    uint8 public constant MAX_TRACK = uint8(type(Track).max);

    /// @dev account => checkpointed packed role `(uint8(track) << 8) | tier`; 0 = not registered.
    mapping(address account => Checkpoints.Trace208) private _roles;
    /// @dev `_countKey(track, tier)` => checkpointed number of members holding that role.
    mapping(uint256 key => Checkpoints.Trace208) private _counts;
    /// @notice Number of whistle-blower reports filed (report ids are 1-based).
    uint256 public reportCount;

    event PersonnelAdmitted(address indexed account, Track track, uint8 tier, bytes32 vettingRef);
    event RoleChanged(address indexed account, Track oldTrack, uint8 oldTier, Track newTrack, uint8 newTier);
    event PersonnelRemoved(address indexed account, bytes32 reason);
    event WhistleblowerReport(
        uint256 indexed reportId, address indexed reporter, bytes32 indexed subject, bytes32 contentHash
    );

    error ZeroAddress();
    error InvalidTier(uint8 tier);
    error InvalidTrack(Track track);
    error AlreadyRegistered(address account);
    error NotRegistered(address account);
    error RoleUnchanged(address account);
    error EmptyReport();

    /// @param admin initial owner (deployer, who admits genesis members, then transfers to the governor).
    constructor(address admin) Ownable(admin) {}

    /// @notice The clock used for checkpoints: block timestamps (ERC-6372 `mode=timestamp`).
    function clock() public view returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice ERC-6372 clock description.
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure returns (string memory) {
        return "mode=timestamp";
    }

    /// @notice Admit a vetted member (governance only).
    /// @param vettingRef hash of the off-chain vetting record (e.g. a content id digest).
    function admit(address account, Track track, uint8 tier, bytes32 vettingRef) external onlyOwner {
        if (account == address(0)) revert ZeroAddress();
        _checkRole(track, tier);
        if (_roles[account].latest() != 0) revert AlreadyRegistered(account);
        _writeRole(account, Track.None, 0, track, tier);
        emit PersonnelAdmitted(account, track, tier, vettingRef);
    }

    /// @notice Change a member's track and/or tier (governance only).
    function setRole(address account, Track track, uint8 tier) external onlyOwner {
        _checkRole(track, tier);
        (Track oldTrack, uint8 oldTier) = roleOf(account);
        if (oldTier == 0) revert NotRegistered(account);
        if (oldTrack == track && oldTier == tier) revert RoleUnchanged(account);
        _writeRole(account, oldTrack, oldTier, track, tier);
        emit RoleChanged(account, oldTrack, oldTier, track, tier);
    }

    /// @notice Remove a member (governance only).
    function remove(address account, bytes32 reason) external onlyOwner {
        (Track oldTrack, uint8 oldTier) = roleOf(account);
        if (oldTier == 0) revert NotRegistered(account);
        _writeRole(account, oldTrack, oldTier, Track.None, 0);
        emit PersonnelRemoved(account, reason);
    }

    /// @notice File a whistle-blower report about `subject` (any address may report).
    /// @param subject what the report is about (e.g. a model or hardware id hash, or an address).
    /// @param contentHash digest of the report body kept off-chain.
    /// @return reportId the 1-based id of the report.
    function fileReport(bytes32 subject, bytes32 contentHash) external returns (uint256 reportId) {
        if (contentHash == bytes32(0)) revert EmptyReport();
        reportId = ++reportCount;
        emit WhistleblowerReport(reportId, msg.sender, subject, contentHash);
    }

    /// @notice Current track and tier of `account` (tier 0 = not registered).
    function roleOf(address account) public view returns (Track track, uint8 tier) {
        return _unpack(_roles[account].latest());
    }

    /// @notice Track and tier of `account` at `timepoint` (a timestamp).
    function roleAt(address account, uint256 timepoint) public view returns (Track track, uint8 tier) {
        return _unpack(_roles[account].upperLookupRecent(SafeCast.toUint48(timepoint)));
    }

    /// @notice Whether `account` is a registered member now.
    function isActive(address account) external view returns (bool) {
        return _roles[account].latest() != 0;
    }

    /// @notice Number of members at `timepoint` whose tier is in `tierMask` (bit `1 << tier`) and
    /// whose track is in `trackMask` (bit `1 << uint8(track)`).
    function eligibleCount(uint8 tierMask, uint8 trackMask, uint256 timepoint) external view returns (uint256 n) {
        uint48 t = SafeCast.toUint48(timepoint);
        for (uint8 track = 1; track <= MAX_TRACK; ++track) {
            if (trackMask & (1 << track) == 0) continue;
            for (uint8 tier = 1; tier <= MAX_TIER; ++tier) {
                if (tierMask & (1 << tier) == 0) continue;
                n += _counts[_countKey(Track(track), tier)].upperLookupRecent(t);
            }
        }
    }

    function _checkRole(Track track, uint8 tier) private pure {
        if (track == Track.None) revert InvalidTrack(track);
        if (tier == 0 || tier > MAX_TIER) revert InvalidTier(tier);
    }

    function _writeRole(address account, Track oldTrack, uint8 oldTier, Track newTrack, uint8 newTier) private {
        uint48 now_ = clock();
        if (oldTier != 0) {
            Checkpoints.Trace208 storage c = _counts[_countKey(oldTrack, oldTier)];
            c.push(now_, c.latest() - 1);
        }
        if (newTier != 0) {
            Checkpoints.Trace208 storage c = _counts[_countKey(newTrack, newTier)];
            c.push(now_, c.latest() + 1);
        }
        _roles[account].push(now_, newTier == 0 ? 0 : (uint208(uint8(newTrack)) << 8) | newTier);
    }

    function _countKey(Track track, uint8 tier) private pure returns (uint256) {
        return uint256(uint8(track)) * 8 + tier;
    }

    function _unpack(uint208 packed) private pure returns (Track, uint8) {
        return (Track(uint8(packed >> 8)), uint8(packed));
    }
}
