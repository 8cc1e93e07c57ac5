// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {HostAgreements} from "./HostAgreements.sol";
import {UsageLedger} from "./UsageLedger.sol";
import {Claims} from "./Claims.sol";
import {Staking} from "../core/Staking.sol";
import {VoteTally} from "./VoteTally.sol";

/// @title LineageClaims
/// @notice Claims that a model served at some endpoint descends from host A's licensed copy (A's
/// copy fine-tuned, merged or quantised and served elsewhere). A derived model keeps only part of
/// its fingerprints, so one key is not enough evidence and one key is too weak (a chance match); a
/// lineage claim reveals at least `minMatches` (m) distinct keys of A's own fingerprint subset
/// (`ModelRegistry.isHostSubsetFingerprint`) that the endpoint answered with their responses.
/// m is chosen off-chain so that an unrelated model reaches it with probability below a documented
/// bound: P[Bin(n, p0) >= m] with p0 the per-key chance-match rate measured on the base model and n
/// the subset size (`ml/oml/lineage.py`). The flow mirrors `Claims`: commit to
/// `lineageCommitment`, reveal from the next block within `revealWindow` posting `claimBond` (each
/// key is spent in Claims' one ledger of spent keys: a key revealed by any claim is refused by
/// both); during `challengeWindow` host A may show, for every revealed key, a platform permission
/// issued in a block before the commitment's (the endpoint is A's own service behind a proxy): Defended, bond to A. Otherwise the staked verifiers of
/// `Claims` (registered before the reveal) vote; a strict majority confirms and A is slashed like a
/// leak (up to `stakeRequired`: `proverShareBps` to the prover, the rest to the community, bond
/// back); a rejecting majority, or the end of voting without a majority, gives the bond to A.
/// @dev Needs Staking.MODULE_ROLE and Claims' `setLineageClaims(this)`. Lineage votes carry no
/// reward or penalty (Claims' settlement covers single-key claims only), and lineage outcomes are
/// not appealable.
contract LineageClaims {
    using SafeERC20 for IERC20;

    enum Status {
        None,
        Open,
        Defended,
        Confirmed,
        Rejected
    }

    struct Commit {
        uint64 blockNumber;
        uint64 time;
    }

    /// @notice A lineage claim's evidence: `keys[i]` answered with `responses[i]` at `endpoint`, each
    /// pair in `host`'s subset (`subsetProofs[i]`).
    struct Reveal {
        uint256 modelId;
        address host;
        string endpoint;
        string[] keys;
        string[] responses;
        bytes32 salt;
        bytes32[][] subsetProofs;
    }

    struct LineageClaim {
        address prover;
        address host;
        uint256 modelId;
        bytes32 keysDigest; // keccak256(abi.encode(keccak256(key_i) ...)), in revealed order
        bytes32 endpointHash;
        uint64 committedAt;
        uint64 commitBlock;
        uint64 revealedAt;
        uint64 revealBlock;
        uint32 verifiersAtReveal;
        uint32 matches;
        uint32 confirmations;
        uint32 rejections;
        Status status;
    }

    /// @notice Parameters (LoyalToken wei, seconds, basis points).
    struct Config {
        uint32 minMatches;
        uint256 claimBond;
        uint64 revealWindow;
        uint64 challengeWindow;
        uint64 votingWindow;
        uint16 proverShareBps;
    }

    IERC20 public immutable token;
    Staking public immutable staking;
    ModelRegistry public immutable registry;
    HostAgreements public immutable agreements;
    UsageLedger public immutable usage;
    /// @notice Claims: its verifier set votes on lineage claims; its ledger of spent keys is shared.
    Claims public immutable claims;
    /// @notice m: the fewest subset keys a lineage claim must reveal.
    uint32 public immutable minMatches;
    uint256 public immutable claimBond;
    uint64 public immutable revealWindow;
    uint64 public immutable challengeWindow;
    uint64 public immutable votingWindow;
    uint16 public immutable proverShareBps;

    mapping(address prover => mapping(bytes32 commitment => Commit)) public commits;
    uint256 public claimCount;
    mapping(uint256 claimId => LineageClaim) private _claims;
    mapping(uint256 claimId => mapping(address verifier => bool)) public hasVoted;

    event LineageCommitted(address indexed prover, bytes32 indexed commitment);
    event LineageRevealed(
        uint256 indexed claimId, uint256 indexed modelId, address indexed host, address prover, uint32 matches
    );
    /// @notice The revealed evidence, for verifiers: they query `endpoint` with each key.
    event LineageEvidence(uint256 indexed claimId, string endpoint, string[] keys, string[] responses);
    event LineageDefended(uint256 indexed claimId, address indexed host);
    event LineageVoted(uint256 indexed claimId, address indexed verifier, bool confirm);
    event LineageConfirmed(
        uint256 indexed claimId, address indexed host, uint256 slashed, uint256 proverReward, uint256 communityShare
    );
    event LineageRejected(uint256 indexed claimId, address indexed host, uint256 bondToHost);

    error BadConfig();
    error ZeroCommitment();
    error AlreadyCommitted(bytes32 commitment);
    error UnknownCommitment(bytes32 commitment);
    error RevealTooEarly(uint64 commitBlock);
    error RevealWindowClosed(uint64 deadline);
    error EmptyEndpoint();
    /// @notice Fewer than m keys revealed.
    error BelowThreshold(uint256 matches, uint256 minMatches);
    error LengthMismatch();
    error HostNotBound(uint256 modelId, address host);
    error NotInHostSubset(uint256 modelId, address host, uint256 index);
    error NoVerifiers();
    error UnknownClaim(uint256 claimId);
    error ClaimNotOpen(uint256 claimId, Status status);
    error ChallengeWindowClosed(uint64 deadline);
    error ChallengeWindowOpen(uint64 deadline);
    error PermissionMismatch(uint256 claimId, uint256 index);
    error PermissionIssuedAfterCommit(uint256 claimId, uint256 index);
    error InvalidPermission(uint256 claimId, uint256 index);
    error VotingClosed(uint64 deadline);
    error VotingOpen(uint64 deadline);
    error NotVerifier(address account);
    error RegisteredAfterReveal(address verifier, uint256 claimId);
    error InsufficientVerifierStake(address account, uint256 required, uint256 active);
    error AlreadyVoted(address verifier, uint256 claimId);

    constructor(Claims claims_, Config memory config) {
        if (
            config.minMatches < 2 || config.claimBond == 0 || config.revealWindow == 0 || config.challengeWindow == 0
                || config.votingWindow == 0 || config.proverShareBps > 10_000
        ) revert BadConfig();
        claims = claims_;
        token = claims_.token();
        staking = claims_.staking();
        registry = claims_.registry();
        agreements = claims_.agreements();
        usage = claims_.usage();
        minMatches = config.minMatches;
        claimBond = config.claimBond;
        revealWindow = config.revealWindow;
        challengeWindow = config.challengeWindow;
        votingWindow = config.votingWindow;
        proverShareBps = config.proverShareBps;
    }

    // ---------------------------------------------------------------- prover

    /// @notice Commit to a lineage claim: `lineageCommitment(keys, responses, host, endpoint, salt)`.
    function commit(bytes32 commitment) external {
        if (commitment == bytes32(0)) revert ZeroCommitment();
        if (commits[msg.sender][commitment].blockNumber != 0) revert AlreadyCommitted(commitment);
        commits[msg.sender][commitment] = Commit(uint64(block.number), uint64(block.timestamp));
        emit LineageCommitted(msg.sender, commitment);
    }

    /// @notice Reveal a committed lineage claim with at least `minMatches` keys of `r.host`'s subset;
    /// spends every key, takes `claimBond` from the caller (needs an approval).
    function reveal(Reveal calldata r) external returns (uint256 claimId) {
        uint256 n = r.keys.length;
        if (n < minMatches) revert BelowThreshold(n, minMatches);
        if (r.responses.length != n || r.subsetProofs.length != n) revert LengthMismatch();
        if (bytes(r.endpoint).length == 0) revert EmptyEndpoint();
        bytes32 commitment = lineageCommitment(r.keys, r.responses, r.host, r.endpoint, r.salt);
        (uint64 committedAt, uint64 commitBlock) = _checkCommit(commitment);
        if (!agreements.hasSigned(r.modelId, r.host)) revert HostNotBound(r.modelId, r.host);
        uint32 verifiers = claims.verifierCount();
        if (verifiers == 0) revert NoVerifiers();
        bytes32 keysDigest = _spendKeys(r);
        delete commits[msg.sender][commitment];
        claimId = ++claimCount;
        LineageClaim storage c = _claims[claimId];
        c.prover = msg.sender;
        c.host = r.host;
        c.modelId = r.modelId;
        c.keysDigest = keysDigest;
        c.endpointHash = keccak256(bytes(r.endpoint));
        c.committedAt = committedAt;
        c.commitBlock = commitBlock;
        c.revealedAt = uint64(block.timestamp);
        c.revealBlock = uint64(block.number);
        c.verifiersAtReveal = verifiers;
        c.matches = uint32(n);
        c.status = Status.Open;
        emit LineageRevealed(claimId, r.modelId, r.host, msg.sender, uint32(n));
        emit LineageEvidence(claimId, r.endpoint, r.keys, r.responses);
        token.safeTransferFrom(msg.sender, address(this), claimBond);
    }

    // ---------------------------------------------------------------- host defence

    /// @notice Defend lineage claim `claimId` with one platform permission per revealed key (in the
    /// revealed order), each issued before the commitment: the endpoint was the host's own service.
    /// @dev Anyone may submit it; the prover's bond goes to the host.
    function defendWithPermissions(
        uint256 claimId,
        UsageLedger.Permission[] calldata ps,
        bytes[] calldata signatures
    ) external {
        LineageClaim storage c = _claim(claimId);
        if (c.status != Status.Open) revert ClaimNotOpen(claimId, c.status);
        uint64 challengeEnds = c.revealedAt + challengeWindow;
        if (block.timestamp > challengeEnds) revert ChallengeWindowClosed(challengeEnds);
        if (ps.length != c.matches || signatures.length != ps.length) revert LengthMismatch();
        bytes32[] memory keyHashes = new bytes32[](ps.length);
        for (uint256 i; i < ps.length; ++i) {
            UsageLedger.Permission calldata p = ps[i];
            if (p.host != c.host || p.modelId != c.modelId) revert PermissionMismatch(claimId, i);
            // issued in a block before the commitment's: the host could not yet know the keys were a claim's
            if (p.issuedBlock >= c.commitBlock) revert PermissionIssuedAfterCommit(claimId, i);
            if (!usage.isPlatformPermission(p, signatures[i])) revert InvalidPermission(claimId, i);
            keyHashes[i] = p.queryHash;
        }
        if (keccak256(abi.encode(keyHashes)) != c.keysDigest) revert PermissionMismatch(claimId, ps.length);
        c.status = Status.Defended;
        emit LineageDefended(claimId, c.host);
        token.safeTransfer(c.host, claimBond);
    }

    // ---------------------------------------------------------------- verifiers vote, anyone finalizes

    /// @notice Vote on an open lineage claim: `confirm` = the endpoint answers at least m of the
    /// revealed keys with their responses (and is not the host's own service).
    /// @dev Claims' verifiers registered before the reveal, holding Claims' minimum stake, once each.
    function vote(uint256 claimId, bool confirm) external {
        LineageClaim storage c = _claim(claimId);
        if (c.status != Status.Open) revert ClaimNotOpen(claimId, c.status);
        uint64 deadline = c.revealedAt + challengeWindow + votingWindow;
        if (block.timestamp > deadline) revert VotingClosed(deadline);
        if (!claims.isVerifier(msg.sender)) revert NotVerifier(msg.sender);
        if (claims.verifierSinceBlock(msg.sender) >= c.revealBlock) revert RegisteredAfterReveal(msg.sender, claimId);
        uint256 active = staking.stakeOf(msg.sender);
        uint256 required = claims.minVerifierStake();
        if (active < required) revert InsufficientVerifierStake(msg.sender, required, active);
        if (hasVoted[claimId][msg.sender]) revert AlreadyVoted(msg.sender, claimId);
        hasVoted[claimId][msg.sender] = true;
        if (confirm) c.confirmations += 1;
        else c.rejections += 1;
        emit LineageVoted(claimId, msg.sender, confirm);
    }

    /// @notice Settle an undefended lineage claim after its challenge window: slash the host on a
    /// confirming majority; reject (bond to the host) once a majority is out of reach or voting ended.
    function finalize(uint256 claimId) external {
        LineageClaim storage c = _claim(claimId);
        if (c.status != Status.Open) revert ClaimNotOpen(claimId, c.status);
        uint64 challengeEnds = c.revealedAt + challengeWindow;
        if (block.timestamp <= challengeEnds) revert ChallengeWindowOpen(challengeEnds);
        VoteTally.Outcome o = VoteTally.outcome(
            c.confirmations, c.rejections, c.verifiersAtReveal, block.timestamp > challengeEnds + votingWindow
        );
        if (o == VoteTally.Outcome.Confirmed) {
            _confirm(claimId, c);
        } else if (o == VoteTally.Outcome.Rejected) {
            c.status = Status.Rejected;
            emit LineageRejected(claimId, c.host, claimBond);
            token.safeTransfer(c.host, claimBond);
        } else {
            revert VotingOpen(challengeEnds + votingWindow);
        }
    }

    // ---------------------------------------------------------------- views

    /// @notice The commitment a prover posts before revealing a lineage claim.
    function lineageCommitment(
        string[] calldata keys,
        string[] calldata responses,
        address host,
        string calldata endpoint,
        bytes32 salt
    ) public pure returns (bytes32) {
        bytes32[] memory kh = new bytes32[](keys.length);
        bytes32[] memory rh = new bytes32[](responses.length);
        for (uint256 i; i < keys.length; ++i) {
            kh[i] = keccak256(bytes(keys[i]));
        }
        for (uint256 i; i < responses.length; ++i) {
            rh[i] = keccak256(bytes(responses[i]));
        }
        return keccak256(abi.encode(kh, rh, host, keccak256(bytes(endpoint)), salt));
    }

    /// @notice Full record of a lineage claim; reverts for an unknown id.
    function claim(uint256 claimId) external view returns (LineageClaim memory) {
        return _claim(claimId);
    }

    // ---------------------------------------------------------------- internals

    /// @dev The caller's commitment exists, is at least one block old and still revealable.
    function _checkCommit(bytes32 commitment) private view returns (uint64, uint64) {
        Commit memory cm = commits[msg.sender][commitment];
        if (cm.blockNumber == 0) revert UnknownCommitment(commitment);
        if (block.number <= cm.blockNumber) revert RevealTooEarly(cm.blockNumber);
        if (block.timestamp > cm.time + revealWindow) revert RevealWindowClosed(cm.time + revealWindow);
        return (cm.time, cm.blockNumber);
    }

    /// @dev Check every pair against the host's subset root and spend its key in Claims' one ledger
    /// of spent keys (Claims.KeySpent for a key any claim spent, or repeated in this reveal).
    /// Returns the digest of the key hashes.
    function _spendKeys(Reveal calldata r) private returns (bytes32) {
        uint256 n = r.keys.length;
        bytes32[] memory keyHashes = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            if (!registry.isHostSubsetFingerprint(r.modelId, r.host, r.keys[i], r.responses[i], r.subsetProofs[i])) {
                revert NotInHostSubset(r.modelId, r.host, i);
            }
            bytes32 kh = keccak256(bytes(r.keys[i]));
            claims.spendKey(r.modelId, kh);
            keyHashes[i] = kh;
        }
        return keccak256(abi.encode(keyHashes));
    }

    function _confirm(uint256 claimId, LineageClaim storage c) private {
        ModelRegistry.Model memory m = registry.model(c.modelId);
        uint256 slashable = staking.slashableOf(c.host);
        uint256 slashed = m.stakeRequired < slashable ? m.stakeRequired : slashable;
        uint256 reward = slashed * proverShareBps / 10_000;
        uint256 communityShare = slashed - reward;
        c.status = Status.Confirmed;
        emit LineageConfirmed(claimId, c.host, slashed, reward, communityShare);
        if (slashed != 0) staking.slash(c.host, slashed, "OML: a model derived from the host's copy served elsewhere");
        if (reward != 0) staking.payOutSlashed(c.prover, reward);
        if (communityShare != 0) staking.payOutSlashed(m.community, communityShare);
        token.safeTransfer(c.prover, claimBond);
    }

    function _claim(uint256 claimId) private view returns (LineageClaim storage c) {
        c = _claims[claimId];
        if (c.status == Status.None) revert UnknownClaim(claimId);
    }
}
