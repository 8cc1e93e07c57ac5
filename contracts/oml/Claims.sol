// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {HostAgreements} from "./HostAgreements.sol";
import {UsageLedger} from "./UsageLedger.sol";
import {HostAnswers} from "./HostAnswers.sol";
import {Staking} from "../core/Staking.sol";
import {VoteTally} from "./VoteTally.sol";

/// @notice What Claims asks ClaimAppeals before releasing a decided claim's payouts.
interface IClaimAppeals {
    function isFinal(uint256 claimId) external view returns (bool);
}

/// @title Claims
/// @notice Provers catch hosts that serve an OMLized model without paying for the query: a prover
/// sends a secret fingerprint key to a host as an ordinary user, gets the fingerprint response,
/// commits to `claimCommitment(key, response, host, salt)`, then reveals with a Merkle proof that
/// (key, response) is one of the model's committed fingerprints and the host's signed answer
/// (`HostAnswers`: the host signs every answer it serves), posting a bond. The key is spent.
/// The signed answer is the evidence: nobody asks the host again after the key is public.
/// The host then has `challengeWindow` seconds to show σ(key): a platform permission for that query
/// issued in a block before the commitment's, either signed (`defendWithPermission`) or committed in a
/// usage batch it posted in a block before the commitment's (`defendWithUsage`). An undefended claim
/// goes to the staked verifiers: a majority of those registered before the reveal confirms it, the host's stake is
/// slashed (up to the model's `stakeRequired`), the prover gets its bond back plus a share of the
/// slash, the verifiers who confirmed share `verifierShareBps` of it and the community gets the rest.
/// A defended or rejected claim loses the prover's bond to the host (minus the rejecting verifiers'
/// share when verifiers rejected it).
///
/// Traced leaks: `revealLeak` files a claim against host A for a fingerprint of A's own subset
/// (`ModelRegistry.hostSubsetRoot`) served at another endpoint (a leaked copy of A's weights). It
/// follows the same rules: A may defend with σ(key) issued before the commitment (it served the
/// query itself, e.g. behind a proxy), otherwise verifiers decide. Such an endpoint signs nothing, so
/// the prover commits with `commitSealed`, publishing the opening encrypted to each verifier; the
/// verifiers query the endpoint before the reveal and `observe` (commit to) what they saw; after the
/// reveal they vote with `voteObserved`, which opens that observation. Only such votes count.
///
/// Verifier settlement (pull, one call per verifier and claim decided by vote): a verifier that
/// voted with the outcome collects its reward share; one that voted against it, or did not vote
/// although it was registered at the reveal, is slashed `verifierPenalty` (capped at its stake),
/// paid to the model's community.
/// A registered verifier's `minVerifierStake` is locked in Staking until it leaves, so penalties
/// stay collectable: after leaving, the stake needs Staking's unstake delay to be withdrawn.
/// Appeals: once the deployer binds ClaimAppeals (`setAppeals`), a claim decided by `finalize`
/// holds its payouts (prover share, community share, bond) until `release`, which ClaimAppeals
/// allows once the appeal window passed or an appeal was upheld; a DAO-reversed outcome is paid out
/// by `overturn`. Verifiers settle only after the payouts are released.
/// @dev Needs Staking.MODULE_ROLE and Staking.LOCKER_ROLE. Claims only bind hosts that signed the
/// model's licence.
contract Claims {
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

    /// @notice A verifier's commitment to what it observed at a sealed claim's endpoint.
    struct Observation {
        bytes32 hash; // observationHash(commitment, verifier, observed, salt)
        uint64 blockNumber;
    }

    struct Claim {
        address prover;
        address host;
        uint256 modelId;
        bytes32 keyHash;
        bytes32 responseHash;
        uint64 committedAt;
        uint64 revealedAt;
        uint64 revealBlock;
        uint32 verifiersAtReveal;
        uint32 confirmations;
        uint32 rejections;
        Status status;
        bytes32 endpointHash; // 0: the host's own service; else keccak256 of a leaked endpoint's URL
        uint256 verifierReward; // paid to each verifier that voted with the outcome (set when decided)
        uint64 commitBlock; // σ and usage batches defend only if issued / posted before this block
        bytes32 sealedCommitment; // a sealed leak claim's commitment (its observations), else 0
    }

    /// @notice A claim's evidence: the fingerprint and the host's signed answer to its key.
    struct SignedReveal {
        uint256 modelId;
        address host;
        string key;
        string response;
        bytes32 salt;
        bytes32[] proof; // (key, response) in the model's fingerprint root
        HostAnswers.Answer answer; // what the host signed when it answered `key`
        string completion; // the answer's text: keccak256 equals answer.completionHash
        bytes signature; // the host's EIP-712 signature over `answer` (HostAnswers domain)
    }

    /// @notice A verifier's vote on a sealed claim, opening its pre-reveal observation.
    struct ObservedVote {
        uint256 claimId;
        bool confirm;
        string observed; // what the verifier saw at the endpoint (or why it saw nothing)
        bytes32 salt;
    }

    /// @notice A leak claim's evidence: a fingerprint of `host`'s subset served at `endpoint`.
    struct LeakReveal {
        uint256 modelId;
        address host; // whose subset the fingerprint is from (the copy that leaked)
        string endpoint; // where the prover got the response (URL); verifiers query it
        string key;
        string response;
        bytes32 salt;
        bytes32[] proof; // (key, response) in the model's fingerprint root
        bytes32[] subsetProof; // (key, response) in hostSubsetRoot[modelId][host]
    }

    IERC20 public immutable token;
    Staking public immutable staking;
    ModelRegistry public immutable registry;
    HostAgreements public immutable agreements;
    UsageLedger public immutable usage;
    /// @notice The EIP-712 domain hosts sign their answers in (deployed by this contract).
    HostAnswers public immutable answers;
    /// @notice LoyalToken a prover posts with each reveal.
    uint256 public immutable claimBond;
    /// @notice Seconds after a commitment during which it may be revealed.
    uint64 public immutable revealWindow;
    /// @notice Seconds after a reveal during which the host may show σ(key).
    uint64 public immutable challengeWindow;
    /// @notice Seconds after the challenge window during which verifiers may still vote.
    uint64 public immutable votingWindow;
    /// @notice Active stake a verifier must hold to register and to vote.
    uint256 public immutable minVerifierStake;
    /// @notice Share of the slashed stake paid to the prover, in basis points.
    uint16 public immutable proverShareBps;
    /// @notice Share of the slashed stake (confirmed) or of the bond (rejected by vote) split among
    /// the verifiers that voted with the outcome, in basis points.
    uint16 public immutable verifierShareBps;
    /// @notice Stake slashed from a verifier that voted against the outcome or did not vote.
    uint256 public immutable verifierPenalty;

    mapping(address prover => mapping(bytes32 commitment => Commit)) public commits;
    uint256 public claimCount;
    mapping(uint256 claimId => Claim) private _claims;
    mapping(uint256 modelId => mapping(bytes32 keyHash => bool)) public keySpent;
    /// @notice Block at which a verifier registered (0 = not a verifier).
    mapping(address verifier => uint64) public verifierSinceBlock;
    /// @notice Block at which a verifier left (0 = still registered or never registered).
    mapping(address verifier => uint64) public verifierUntilBlock;
    uint32 public verifierCount;
    mapping(uint256 claimId => mapping(address verifier => bool)) public hasVoted;
    mapping(uint256 claimId => mapping(address verifier => bool)) public votedConfirm;
    mapping(uint256 claimId => mapping(address verifier => bool)) public settled;
    /// @notice Signed answers already used as evidence (by EIP-712 digest).
    mapping(bytes32 answerDigest => bool) public answerUsed;
    /// @notice Commitments posted with `commitSealed` and not yet revealed.
    mapping(address prover => mapping(bytes32 commitment => bool)) public sealedCommit;
    /// @notice Verifiers' observations of a sealed commitment's endpoint, made before its reveal.
    mapping(bytes32 commitment => mapping(address verifier => Observation)) public observations;
    /// @notice The secp256k1 public key (64 bytes) a verifier receives sealed claim keys under.
    mapping(address verifier => bytes) public sealKeyOf;

    // ---- appeals (ClaimAppeals): escrow of a vote-decided claim's payouts until its appeal is final
    /// @notice The ClaimAppeals contract (0: no appeals; payouts happen when the claim is decided).
    address public appeals;
    address private immutable _deployer;
    /// @notice The LineageClaims contract, which spends its keys here (0: none bound).
    address public lineageClaims;

    /// @notice When a claim was decided by `finalize` (appeals set only; 0 otherwise).
    mapping(uint256 claimId => uint64) public decidedAt;
    /// @notice Stake slashed for a confirmed claim, held until its payouts are released.
    mapping(uint256 claimId => uint256) public slashedFor;
    /// @notice Whether a decided claim's payouts (prover, community, host, bond) have been made.
    mapping(uint256 claimId => bool) public released;

    event VerifierRegistered(address indexed verifier);
    event VerifierLeft(address indexed verifier);
    event ClaimCommitted(address indexed prover, bytes32 indexed commitment);
    /// @notice A committed claim was revealed and opened as `claimId`; `commitment` links it to its
    /// `ClaimCommitted` (which precedes the claim id).
    event ClaimRevealed(
        uint256 indexed claimId,
        uint256 indexed modelId,
        address indexed host,
        address prover,
        uint64 challengeEnds,
        bytes32 commitment
    );
    /// @notice The revealed fingerprint pair of a claim, for verifiers.
    event ClaimEvidence(uint256 indexed claimId, string key, string response);
    /// @notice The endpoint of a leak claim, for verifiers.
    event LeakEvidence(uint256 indexed claimId, string endpoint);
    /// @notice The host's signed answer a claim was revealed with, for verifiers (no need to re-ask).
    event AnswerEvidence(
        uint256 indexed claimId,
        bytes32 answerDigest,
        uint64 licenceStart,
        uint64 answeredAt,
        bytes32 permissionDigest,
        string completion,
        bytes signature
    );
    event SealKeySet(address indexed verifier, bytes publicKey);
    /// @notice A commitment's opening, encrypted to each verifier (ABI `(address[], bytes[])`, ECIES).
    event KeysSealed(address indexed prover, bytes32 indexed commitment, bytes sealedKeys);
    event Observed(bytes32 indexed commitment, address indexed verifier, bytes32 observationHash);
    event ObservationRevealed(uint256 indexed claimId, address indexed verifier, string observed);
    event ClaimDefended(uint256 indexed claimId, address indexed host, bytes32 permissionDigest, uint256 batchId);
    event Voted(uint256 indexed claimId, address indexed verifier, bool confirm);
    event ClaimConfirmed(
        uint256 indexed claimId,
        address indexed host,
        uint256 slashed,
        uint256 proverReward,
        uint256 communityShare,
        uint256 verifierReward
    );
    event ClaimRejected(uint256 indexed claimId, address indexed host, uint256 bondToHost, uint256 verifierReward);
    event VerifierSettled(uint256 indexed claimId, address indexed verifier, uint256 reward, uint256 penalty);
    event AppealsSet(address indexed appeals);
    event LineageClaimsSet(address indexed lineageClaims);
    /// @notice ClaimAppeals reversed the outcome of `claimId` to `status` (a DAO decision).
    event ClaimOverturned(uint256 indexed claimId, Status status, uint256 slashed);
    /// @notice The held payouts of `claimId` were made, for outcome `status`.
    event ClaimReleased(uint256 indexed claimId, Status status);

    error BadConfig();
    error ZeroCommitment();
    error AlreadyCommitted(bytes32 commitment);
    error UnknownCommitment(bytes32 commitment);
    error RevealTooEarly(uint64 commitBlock);
    error RevealWindowClosed(uint64 deadline);
    error HostNotBound(uint256 modelId, address host);
    error KeySpent(uint256 modelId, bytes32 keyHash);
    error NotAFingerprint(uint256 modelId);
    error NoVerifiers();
    error UnknownClaim(uint256 claimId);
    error ClaimNotOpen(uint256 claimId, Status status);
    error ChallengeWindowClosed(uint64 deadline);
    error ChallengeWindowOpen(uint64 deadline);
    error VotingClosed(uint64 deadline);
    error VotingOpen(uint64 deadline);
    error PermissionMismatch(uint256 claimId);
    error PermissionIssuedAfterCommit(uint256 claimId, uint64 expiry);
    error InvalidPermission(uint256 claimId);
    error BatchPostedAfterCommit(uint256 claimId, uint256 batchId);
    error NotInBatch(uint256 claimId, uint256 batchId);
    error AlreadyVerifier(address account);
    error NotVerifier(address account);
    error InsufficientVerifierStake(address account, uint256 required, uint256 active);
    error RegisteredAfterReveal(address verifier, uint256 claimId);
    error AlreadyVoted(address verifier, uint256 claimId);
    error EmptyEndpoint();
    error NotInHostSubset(uint256 modelId, address host);
    error ClaimNotDecided(uint256 claimId, Status status);
    error AlreadySettled(address verifier, uint256 claimId);
    error NotClaimVerifier(address verifier, uint256 claimId);
    error AppealsAlreadySet();
    error LineageClaimsAlreadySet();
    error NotLineageClaims(address caller);
    error NotAppeals(address caller);
    /// @notice The claim's payouts are held (appeal window open or appeal pending) or already made.
    error NotReleasable(uint256 claimId);
    error AnswerModelMismatch(uint256 answerModelId);
    error AnswerHostMismatch(address answerHost);
    error AnswerPromptMismatch(bytes32 promptHash);
    error AnswerLicenceMismatch(uint64 licenceStart);
    error CompletionHashMismatch(bytes32 completionHash);
    error CompletionLacksResponse();
    error BadAnswerSignature(address host);
    error AnswerAlreadyUsed(bytes32 answerDigest);
    error NotOwnSealKey(address caller);
    error EmptySealedKeys();
    error NoSealedCommitment(address prover, bytes32 commitment);
    error AlreadyObserved(address verifier, bytes32 commitment);
    error NoObservation(address verifier, uint256 claimId);
    error ObservationMismatch(address verifier, uint256 claimId);
    error ObservationRequired(uint256 claimId);
    error NotSealedClaim(uint256 claimId);

    /// @param config_ (claimBond, minVerifierStake, verifierPenalty) in LoyalToken wei.
    /// @param windows_ (revealWindow, challengeWindow, votingWindow) in seconds, each > 0.
    /// @param shares_ (proverShareBps, verifierShareBps); their sum is at most 10 000.
    constructor(
        IERC20 token_,
        Staking staking_,
        ModelRegistry registry_,
        HostAgreements agreements_,
        UsageLedger usage_,
        uint256[3] memory config_,
        uint64[3] memory windows_,
        uint16[2] memory shares_
    ) {
        if (
            config_[0] == 0 || windows_[0] == 0 || windows_[1] == 0 || windows_[2] == 0
                || uint256(shares_[0]) + shares_[1] > 10_000
        ) {
            revert BadConfig();
        }
        _deployer = msg.sender;
        token = token_;
        staking = staking_;
        registry = registry_;
        agreements = agreements_;
        usage = usage_;
        claimBond = config_[0];
        minVerifierStake = config_[1];
        revealWindow = windows_[0];
        challengeWindow = windows_[1];
        votingWindow = windows_[2];
        verifierPenalty = config_[2];
        proverShareBps = shares_[0];
        verifierShareBps = shares_[1];
        answers = new HostAnswers();
    }

    // ---------------------------------------------------------------- verifiers

    /// @notice Join the verifier set; needs `minVerifierStake` active stake in Staking, which is
    /// locked until the verifier leaves.
    /// @dev An address that left cannot rejoin (its membership history stays for settlement).
    function registerVerifier() external {
        if (verifierSinceBlock[msg.sender] != 0) revert AlreadyVerifier(msg.sender);
        _requireVerifierStake(msg.sender);
        verifierSinceBlock[msg.sender] = uint64(block.number);
        verifierCount += 1;
        emit VerifierRegistered(msg.sender);
        if (minVerifierStake != 0) staking.lock(msg.sender, minVerifierStake);
    }

    /// @notice Leave the verifier set (votes already cast stay counted; claims revealed while the
    /// caller was registered still expect its vote and penalise its absence).
    function leaveVerifiers() external {
        if (!_isVerifier(msg.sender)) revert NotVerifier(msg.sender);
        verifierUntilBlock[msg.sender] = uint64(block.number);
        verifierCount -= 1;
        emit VerifierLeft(msg.sender);
        if (minVerifierStake != 0) staking.unlock(msg.sender, minVerifierStake);
    }

    // ---------------------------------------------------------------- prover

    /// @notice Commit to a claim without revealing it: `commitment = claimCommitment(key, response, host, salt)`.
    /// @dev Commitments are per prover, so copying one from the mempool gains nothing.
    function commit(bytes32 commitment) external {
        _commit(commitment);
    }

    /// @notice Reveal a committed claim with the Merkle proof that (key, response) is a fingerprint
    /// of `r.modelId` and the host's signed answer to the key; spends the key and the answer and takes
    /// `claimBond` from the caller (needs an approval).
    /// @dev Checked here: the answer is signed by `r.host` (HostAnswers domain: this chain and this
    /// contract), names this model, the host's current licence and the key, `completion` hashes to
    /// its completion hash and, for an exact fingerprint, starts with the response. A functional
    /// fingerprint's rule (response prefix `loyal-functional-v1:`) is judged by verifiers off-chain.
    /// @return claimId id of the opened claim (ids start at 1).
    function reveal(SignedReveal calldata r) external returns (uint256 claimId) {
        bytes32 commitment = claimCommitment(r.key, r.response, r.host, r.salt);
        (uint64 committedAt, uint64 commitBlock) = _checkCommit(commitment);
        if (!agreements.hasSigned(r.modelId, r.host)) revert HostNotBound(r.modelId, r.host);
        if (!registry.isFingerprint(r.modelId, r.key, r.response, r.proof)) revert NotAFingerprint(r.modelId);
        bytes32 digest = _checkAnswer(r);
        answerUsed[digest] = true;
        claimId = _open(
            r.modelId,
            r.host,
            keccak256(bytes(r.key)),
            keccak256(bytes(r.response)),
            commitment,
            committedAt,
            commitBlock
        );
        emit ClaimEvidence(claimId, r.key, r.response);
        emit AnswerEvidence(
            claimId, digest, r.answer.licenceStart, r.answer.time, r.answer.permissionDigest, r.completion, r.signature
        );
        token.safeTransferFrom(msg.sender, address(this), claimBond);
    }

    // ---------------------------------------------------------------- sealed claims (unsigned endpoints)

    /// @notice Publish the secp256k1 public key (64 bytes, uncompressed, no prefix) that provers
    /// seal claim keys to; it must be the caller's own (its address is derived from it).
    function setSealKey(bytes calldata publicKey) external {
        if (publicKey.length != 64 || address(uint160(uint256(keccak256(publicKey)))) != msg.sender) {
            revert NotOwnSealKey(msg.sender);
        }
        sealKeyOf[msg.sender] = publicKey;
        emit SealKeySet(msg.sender, publicKey);
    }

    /// @notice Commit to a leak claim and publish its opening (key, response, host, endpoint, salt)
    /// encrypted to each verifier, so verifiers can query the endpoint before the key is public.
    /// @param sealedKeys ABI `(address[] verifiers, bytes[] ciphertexts)`; not checked on-chain (a
    /// verifier whose ciphertext does not open to the commitment observes that and votes against).
    function commitSealed(bytes32 commitment, bytes calldata sealedKeys) external {
        if (sealedKeys.length == 0) revert EmptySealedKeys();
        _commit(commitment);
        sealedCommit[msg.sender][commitment] = true;
        emit KeysSealed(msg.sender, commitment, sealedKeys);
    }

    /// @notice Commit to what the caller (a registered verifier) observed at a sealed commitment's
    /// endpoint; only possible before the commitment is revealed, once per verifier.
    /// @param observationHash_ `observationHash(commitment, msg.sender, observed, salt)`
    function observe(address prover, bytes32 commitment, bytes32 observationHash_) external {
        if (!sealedCommit[prover][commitment]) revert NoSealedCommitment(prover, commitment);
        if (!_isVerifier(msg.sender)) revert NotVerifier(msg.sender);
        if (observationHash_ == bytes32(0)) revert ZeroCommitment();
        if (observations[commitment][msg.sender].blockNumber != 0) revert AlreadyObserved(msg.sender, commitment);
        observations[commitment][msg.sender] = Observation(observationHash_, uint64(block.number));
        emit Observed(commitment, msg.sender, observationHash_);
    }

    /// @notice Vote on a sealed claim by opening the caller's pre-reveal observation; the only way
    /// to vote on one (a verifier without an observation counts as not voting).
    function voteObserved(ObservedVote calldata v) external {
        Claim storage c = _claim(v.claimId);
        bytes32 commitment = c.sealedCommitment;
        if (commitment == bytes32(0)) revert NotSealedClaim(v.claimId);
        Observation memory o = observations[commitment][msg.sender];
        if (o.blockNumber == 0) revert NoObservation(msg.sender, v.claimId);
        if (observationHash(commitment, msg.sender, v.observed, v.salt) != o.hash) {
            revert ObservationMismatch(msg.sender, v.claimId);
        }
        _vote(v.claimId, c, v.confirm);
        emit ObservationRevealed(v.claimId, msg.sender, v.observed);
    }

    /// @notice Reveal a sealed leak claim: a fingerprint from `r.host`'s subset was served at
    /// `r.endpoint`, which signs no answers; spends the key, takes `claimBond`. Verifiers vote with
    /// the observations they committed before this reveal (`voteObserved`).
    /// @dev The commitment is `leakCommitment(key, response, host, endpoint, salt)`, posted with
    /// `commitSealed`.
    function revealLeak(LeakReveal calldata r) external returns (uint256 claimId) {
        if (bytes(r.endpoint).length == 0) revert EmptyEndpoint();
        bytes32 commitment = leakCommitment(r.key, r.response, r.host, r.endpoint, r.salt);
        (uint64 committedAt, uint64 commitBlock) = _checkCommit(commitment);
        if (!sealedCommit[msg.sender][commitment]) revert NoSealedCommitment(msg.sender, commitment);
        if (!agreements.hasSigned(r.modelId, r.host)) revert HostNotBound(r.modelId, r.host);
        if (!registry.isFingerprint(r.modelId, r.key, r.response, r.proof)) revert NotAFingerprint(r.modelId);
        if (!registry.isHostSubsetFingerprint(r.modelId, r.host, r.key, r.response, r.subsetProof)) {
            revert NotInHostSubset(r.modelId, r.host);
        }
        delete sealedCommit[msg.sender][commitment];
        claimId = _open(
            r.modelId,
            r.host,
            keccak256(bytes(r.key)),
            keccak256(bytes(r.response)),
            commitment,
            committedAt,
            commitBlock
        );
        _claims[claimId].endpointHash = keccak256(bytes(r.endpoint));
        _claims[claimId].sealedCommitment = commitment;
        emit ClaimEvidence(claimId, r.key, r.response);
        emit LeakEvidence(claimId, r.endpoint);
        token.safeTransferFrom(msg.sender, address(this), claimBond);
    }

    // ---------------------------------------------------------------- host defence

    /// @notice Defend claim `claimId` with a platform-signed permission for the claimed key,
    /// issued in a block before the claim's commitment (`p.issuedBlock < commitBlock`).
    /// @dev Anyone may submit it; the prover's bond goes to the host.
    function defendWithPermission(uint256 claimId, UsageLedger.Permission calldata p, bytes calldata signature)
        external
    {
        Claim storage c = _openInChallenge(claimId);
        _checkPermissionFields(claimId, c, p);
        if (!usage.isPlatformPermission(p, signature)) revert InvalidPermission(claimId);
        _defend(claimId, c, usage.permissionDigest(p), 0);
    }

    /// @notice Defend claim `claimId` by showing that the permission for the claimed key is in a
    /// usage batch the host posted (and paid for) in a block before the claim's commitment.
    function defendWithUsage(
        uint256 claimId,
        UsageLedger.Permission calldata p,
        uint256 batchId,
        bytes32[] calldata proof
    ) external {
        Claim storage c = _openInChallenge(claimId);
        _checkPermissionFields(claimId, c, p);
        UsageLedger.Batch memory b = usage.batch(batchId);
        if (b.host != c.host || b.modelId != c.modelId) revert NotInBatch(claimId, batchId);
        if (b.postedBlock >= c.commitBlock) revert BatchPostedAfterCommit(claimId, batchId);
        bytes32 digest = usage.permissionDigest(p);
        if (!usage.isInBatch(batchId, digest, proof)) revert NotInBatch(claimId, batchId);
        _defend(claimId, c, digest, batchId);
    }

    // ---------------------------------------------------------------- verifiers vote, anyone finalizes

    /// @notice Vote on an open claim: `confirm` = the host served the fingerprint without σ(key).
    /// @dev Only verifiers registered before the reveal block, still holding the minimum stake,
    /// once per claim, until the voting deadline. Sealed claims take `voteObserved` instead.
    function vote(uint256 claimId, bool confirm) external {
        Claim storage c = _claim(claimId);
        if (c.sealedCommitment != bytes32(0)) revert ObservationRequired(claimId);
        _vote(claimId, c, confirm);
    }

    function _vote(uint256 claimId, Claim storage c, bool confirm) private {
        if (c.status != Status.Open) revert ClaimNotOpen(claimId, c.status);
        uint64 deadline = c.revealedAt + challengeWindow + votingWindow;
        if (block.timestamp > deadline) revert VotingClosed(deadline);
        if (!_isVerifier(msg.sender)) revert NotVerifier(msg.sender);
        if (verifierSinceBlock[msg.sender] >= c.revealBlock) revert RegisteredAfterReveal(msg.sender, claimId);
        _requireVerifierStake(msg.sender);
        if (hasVoted[claimId][msg.sender]) revert AlreadyVoted(msg.sender, claimId);
        hasVoted[claimId][msg.sender] = true;
        votedConfirm[claimId][msg.sender] = confirm;
        if (confirm) c.confirmations += 1;
        else c.rejections += 1;
        emit Voted(claimId, msg.sender, confirm);
    }

    /// @notice Settle an undefended claim after its challenge window: slash on a confirming
    /// majority; reject (bond to the host) once a majority is out of reach or voting has ended.
    function finalize(uint256 claimId) external {
        Claim storage c = _claim(claimId);
        if (c.status != Status.Open) revert ClaimNotOpen(claimId, c.status);
        uint64 challengeEnds = c.revealedAt + challengeWindow;
        if (block.timestamp <= challengeEnds) revert ChallengeWindowOpen(challengeEnds);
        VoteTally.Outcome o = VoteTally.outcome(
            c.confirmations, c.rejections, c.verifiersAtReveal, block.timestamp > challengeEnds + votingWindow
        );
        if (o == VoteTally.Outcome.Confirmed) {
            _confirm(claimId, c);
        } else if (o == VoteTally.Outcome.Rejected) {
            _reject(claimId, c);
        } else {
            revert VotingOpen(challengeEnds + votingWindow);
        }
    }

    /// @notice Settle `verifier`'s part in claim `claimId` (decided by vote): pay its reward if it
    /// voted with the outcome; slash `verifierPenalty` (capped at its stake, paid to the model's
    /// community) if it voted against the outcome or did not vote although registered at the reveal.
    /// @dev Anyone may call it, once per (claim, verifier).
    function settleVerifier(uint256 claimId, address verifier) external {
        Claim storage c = _claim(claimId);
        bool confirmed = c.status == Status.Confirmed;
        if (!confirmed && c.status != Status.Rejected) revert ClaimNotDecided(claimId, c.status);
        if (!released[claimId]) revert NotReleasable(claimId);
        if (settled[claimId][verifier]) revert AlreadySettled(verifier, claimId);
        uint256 reward;
        uint256 penalty;
        if (hasVoted[claimId][verifier]) {
            if (votedConfirm[claimId][verifier] == confirmed) reward = c.verifierReward;
            else penalty = verifierPenalty;
        } else if (_wasVerifierAt(verifier, c.revealBlock)) {
            penalty = verifierPenalty;
        } else {
            revert NotClaimVerifier(verifier, claimId);
        }
        if (penalty != 0) {
            uint256 slashable = staking.slashableOf(verifier);
            if (penalty > slashable) penalty = slashable;
        }
        settled[claimId][verifier] = true;
        emit VerifierSettled(claimId, verifier, reward, penalty);
        if (reward != 0) {
            if (confirmed) staking.payOutSlashed(verifier, reward);
            else token.safeTransfer(verifier, reward);
        }
        if (penalty != 0) {
            staking.slash(verifier, penalty, "OML: verifier voted against the outcome or did not vote");
            staking.payOutSlashed(registry.model(c.modelId).community, penalty);
        }
    }

    // ---------------------------------------------------------------- appeals (ClaimAppeals)

    /// @notice Bind the ClaimAppeals contract (deployer only, once). From then on a claim decided by
    /// `finalize` holds its payouts until `release` (appeal window over, or appeal decided).
    function setAppeals(address appeals_) external {
        if (msg.sender != _deployer || appeals != address(0) || appeals_ == address(0)) revert AppealsAlreadySet();
        appeals = appeals_;
        emit AppealsSet(appeals_);
    }

    // ---------------------------------------------------------------- lineage claims (LineageClaims)

    /// @notice Bind the LineageClaims contract (deployer only, once): one ledger of spent keys, so a
    /// key revealed in either kind of claim is refused by both.
    function setLineageClaims(address lineageClaims_) external {
        if (msg.sender != _deployer || lineageClaims != address(0) || lineageClaims_ == address(0)) {
            revert LineageClaimsAlreadySet();
        }
        lineageClaims = lineageClaims_;
        emit LineageClaimsSet(lineageClaims_);
    }

    /// @notice Spend `keyHash` of model `modelId` for a lineage claim (LineageClaims only, inside
    /// the reveal that emits its `LineageRevealed`). Reverts KeySpent if any claim spent it before.
    function spendKey(uint256 modelId, bytes32 keyHash) external {
        if (msg.sender != lineageClaims) revert NotLineageClaims(msg.sender);
        if (keySpent[modelId][keyHash]) revert KeySpent(modelId, keyHash);
        keySpent[modelId][keyHash] = true;
    }

    /// @notice Make the held payouts of a decided claim once ClaimAppeals says its outcome is final.
    function release(uint256 claimId) external {
        Claim storage c = _claim(claimId);
        if (released[claimId] || decidedAt[claimId] == 0 || !IClaimAppeals(appeals).isFinal(claimId)) {
            revert NotReleasable(claimId);
        }
        _pay(claimId, c);
    }

    /// @notice Reverse a decided, unreleased claim (ClaimAppeals only, on a DAO decision) and pay out.
    /// Confirmed -> Rejected: the host gets its slashed stake back (as tokens), the bond goes to the host.
    /// Rejected -> Confirmed: the host is slashed now (up to `stakeRequired`) and paid out as a confirmed claim.
    /// The verifiers' rewards are recomputed for the new outcome (`settleVerifier` then penalises the
    /// overturned majority).
    function overturn(uint256 claimId) external {
        if (msg.sender != appeals) revert NotAppeals(msg.sender);
        Claim storage c = _claim(claimId);
        if (released[claimId] || decidedAt[claimId] == 0) revert NotReleasable(claimId);
        uint256 slashed = slashedFor[claimId];
        if (c.status == Status.Confirmed) {
            c.status = Status.Rejected;
            c.verifierReward = c.rejections == 0 ? 0 : claimBond * verifierShareBps / 10_000 / c.rejections;
            slashedFor[claimId] = 0;
            emit ClaimOverturned(claimId, Status.Rejected, slashed);
            if (slashed != 0) staking.payOutSlashed(c.host, slashed);
        } else {
            uint256 slashable = staking.slashableOf(c.host);
            uint256 required = registry.model(c.modelId).stakeRequired;
            slashed = required < slashable ? required : slashable;
            c.status = Status.Confirmed;
            c.verifierReward = c.confirmations == 0 ? 0 : slashed * verifierShareBps / 10_000 / c.confirmations;
            slashedFor[claimId] = slashed;
            emit ClaimOverturned(claimId, Status.Confirmed, slashed);
            if (slashed != 0) staking.slash(c.host, slashed, "OML: claim confirmed on appeal");
        }
        _pay(claimId, c);
    }

    /// @dev Without ClaimAppeals pay at once; with it, hold until `release` or `overturn`.
    function _releaseOrHold(uint256 claimId, Claim storage c) private {
        if (appeals == address(0)) _pay(claimId, c);
        else decidedAt[claimId] = uint64(block.timestamp);
    }

    /// @dev The payouts of a decided claim: confirmed -> prover share, community rest, bond back to
    /// the prover (verifier shares stay for `settleVerifier`); rejected -> bond to the host minus the
    /// rejecting verifiers' shares.
    function _pay(uint256 claimId, Claim storage c) private {
        released[claimId] = true;
        emit ClaimReleased(claimId, c.status);
        if (c.status == Status.Confirmed) {
            uint256 slashed = slashedFor[claimId];
            uint256 reward = slashed * proverShareBps / 10_000;
            uint256 communityShare = slashed - reward - c.verifierReward * c.confirmations;
            if (reward != 0) staking.payOutSlashed(c.prover, reward);
            if (communityShare != 0) staking.payOutSlashed(registry.model(c.modelId).community, communityShare);
            token.safeTransfer(c.prover, claimBond);
        } else {
            token.safeTransfer(c.host, claimBond - c.verifierReward * c.rejections);
        }
    }

    // ---------------------------------------------------------------- views

    /// @notice The commitment a prover posts before revealing a leak claim.
    function leakCommitment(
        string calldata key,
        string calldata response,
        address host,
        string calldata endpoint,
        bytes32 salt
    ) public pure returns (bytes32) {
        return keccak256(
            abi.encode(keccak256(bytes(key)), keccak256(bytes(response)), host, keccak256(bytes(endpoint)), salt)
        );
    }

    /// @notice What a verifier commits to with `observe`: what it saw at the endpoint, salted.
    function observationHash(bytes32 commitment, address verifier, string calldata observed, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(commitment, verifier, keccak256(bytes(observed)), salt));
    }

    /// @notice Whether `account` is currently a registered verifier.
    function isVerifier(address account) external view returns (bool) {
        return _isVerifier(account);
    }

    /// @notice The commitment a prover posts before revealing.
    function claimCommitment(string calldata key, string calldata response, address host, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(keccak256(bytes(key)), keccak256(bytes(response)), host, salt));
    }

    /// @notice Full record of a claim; reverts for an unknown id.
    function claim(uint256 claimId) external view returns (Claim memory) {
        return _claim(claimId);
    }

    // ---------------------------------------------------------------- internals

    function _commit(bytes32 commitment) private {
        if (commitment == bytes32(0)) revert ZeroCommitment();
        if (commits[msg.sender][commitment].blockNumber != 0) revert AlreadyCommitted(commitment);
        commits[msg.sender][commitment] = Commit(uint64(block.number), uint64(block.timestamp));
        emit ClaimCommitted(msg.sender, commitment);
    }

    /// @dev The caller's commitment exists, is at least one block old and still revealable;
    /// returns its time and block.
    function _checkCommit(bytes32 commitment) private view returns (uint64, uint64) {
        Commit memory c = commits[msg.sender][commitment];
        if (c.blockNumber == 0) revert UnknownCommitment(commitment);
        if (block.number <= c.blockNumber) revert RevealTooEarly(c.blockNumber);
        if (block.timestamp > c.time + revealWindow) revert RevealWindowClosed(c.time + revealWindow);
        return (c.time, c.blockNumber);
    }

    /// @dev The signed answer is the host's, unused, for this claim's model, licence, host and key,
    /// and its completion is the one revealed (starting with the response for an exact fingerprint).
    function _checkAnswer(SignedReveal calldata r) private view returns (bytes32 digest) {
        HostAnswers.Answer calldata a = r.answer;
        if (a.modelId != r.modelId) revert AnswerModelMismatch(a.modelId);
        if (a.host != r.host) revert AnswerHostMismatch(a.host);
        if (a.promptHash != keccak256(bytes(r.key))) revert AnswerPromptMismatch(a.promptHash);
        if (a.licenceStart != agreements.licenceOf(r.modelId, r.host).startsAt) {
            revert AnswerLicenceMismatch(a.licenceStart);
        }
        bytes calldata completion = bytes(r.completion);
        if (a.completionHash != keccak256(completion)) revert CompletionHashMismatch(a.completionHash);
        bytes calldata response = bytes(r.response);
        bool functional = response.length >= 20 && bytes20(response[:20]) == bytes20("loyal-functional-v1:");
        if (
            !functional
                && (completion.length < response.length
                    || keccak256(completion[:response.length]) != keccak256(response))
        ) {
            revert CompletionLacksResponse();
        }
        bool ok;
        (ok, digest) = answers.isSignedByHost(a, r.signature);
        if (!ok) revert BadAnswerSignature(r.host);
        if (answerUsed[digest]) revert AnswerAlreadyUsed(digest);
    }

    /// @dev Spend the key, consume the commitment and record an open claim.
    function _open(
        uint256 modelId,
        address host,
        bytes32 keyHash,
        bytes32 responseHash,
        bytes32 commitment,
        uint64 committedAt,
        uint64 commitBlock
    ) private returns (uint256 claimId) {
        if (keySpent[modelId][keyHash]) revert KeySpent(modelId, keyHash);
        if (verifierCount == 0) revert NoVerifiers();
        delete commits[msg.sender][commitment];
        keySpent[modelId][keyHash] = true;
        claimId = ++claimCount;
        uint64 challengeEnds = uint64(block.timestamp) + challengeWindow;
        _claims[claimId] = Claim({
            prover: msg.sender,
            host: host,
            modelId: modelId,
            keyHash: keyHash,
            responseHash: responseHash,
            committedAt: committedAt,
            revealedAt: uint64(block.timestamp),
            revealBlock: uint64(block.number),
            verifiersAtReveal: verifierCount,
            confirmations: 0,
            rejections: 0,
            status: Status.Open,
            endpointHash: bytes32(0),
            verifierReward: 0,
            commitBlock: commitBlock,
            sealedCommitment: bytes32(0)
        });
        emit ClaimRevealed(claimId, modelId, host, msg.sender, challengeEnds, commitment);
    }

    /// @dev Slash the host, pay prover and community now; the confirming verifiers' shares stay in
    /// this module's slashed balance until each settles (division dust goes to the community).
    function _confirm(uint256 claimId, Claim storage c) private {
        ModelRegistry.Model memory m = registry.model(c.modelId);
        uint256 slashable = staking.slashableOf(c.host);
        uint256 slashed = m.stakeRequired < slashable ? m.stakeRequired : slashable;
        uint256 reward = slashed * proverShareBps / 10_000;
        uint256 perVerifier = slashed * verifierShareBps / 10_000 / c.confirmations;
        uint256 communityShare = slashed - reward - perVerifier * c.confirmations;
        c.status = Status.Confirmed;
        c.verifierReward = perVerifier;
        emit ClaimConfirmed(claimId, c.host, slashed, reward, communityShare, perVerifier);
        if (slashed != 0) {
            staking.slash(
                c.host,
                slashed,
                c.endpointHash == bytes32(0)
                    ? "OML: fingerprint served without permission"
                    : "OML: fingerprint of the host's copy served at a leaked endpoint"
            );
        }
        slashedFor[claimId] = slashed;
        _releaseOrHold(claimId, c);
    }

    /// @dev The bond goes to the host, minus the share of the verifiers that rejected (kept here
    /// until each settles). Without rejecting votes (voting ran out) the host gets all of it.
    function _reject(uint256 claimId, Claim storage c) private {
        uint256 perVerifier = c.rejections == 0 ? 0 : claimBond * verifierShareBps / 10_000 / c.rejections;
        uint256 toHost = claimBond - perVerifier * c.rejections;
        c.status = Status.Rejected;
        c.verifierReward = perVerifier;
        emit ClaimRejected(claimId, c.host, toHost, perVerifier);
        _releaseOrHold(claimId, c);
    }

    function _defend(uint256 claimId, Claim storage c, bytes32 digest, uint256 batchId) private {
        c.status = Status.Defended;
        emit ClaimDefended(claimId, c.host, digest, batchId);
        token.safeTransfer(c.host, claimBond);
    }

    function _openInChallenge(uint256 claimId) private view returns (Claim storage c) {
        c = _claim(claimId);
        if (c.status != Status.Open) revert ClaimNotOpen(claimId, c.status);
        uint64 challengeEnds = c.revealedAt + challengeWindow;
        if (block.timestamp > challengeEnds) revert ChallengeWindowClosed(challengeEnds);
    }

    function _checkPermissionFields(uint256 claimId, Claim storage c, UsageLedger.Permission calldata p) private view {
        if (p.queryHash != c.keyHash || p.host != c.host || p.modelId != c.modelId) {
            revert PermissionMismatch(claimId);
        }
        // Issued in a block before the commitment's: the host could not yet know the key was a claim's.
        if (p.issuedBlock >= c.commitBlock) revert PermissionIssuedAfterCommit(claimId, p.issuedBlock);
    }

    function _isVerifier(address account) private view returns (bool) {
        return verifierSinceBlock[account] != 0 && verifierUntilBlock[account] == 0;
    }

    /// @dev Registered before `revealBlock` and had not left by then.
    function _wasVerifierAt(address account, uint64 revealBlock) private view returns (bool) {
        uint64 since = verifierSinceBlock[account];
        uint64 until = verifierUntilBlock[account];
        return since != 0 && since < revealBlock && (until == 0 || until > revealBlock);
    }

    function _requireVerifierStake(address account) private view {
        uint256 active = staking.stakeOf(account);
        if (active < minVerifierStake) revert InsufficientVerifierStake(account, minVerifierStake, active);
    }

    function _claim(uint256 claimId) private view returns (Claim storage c) {
        c = _claims[claimId];
        if (c.status == Status.None) revert UnknownClaim(claimId);
    }
}
