// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Staking} from "../core/Staking.sol";
import {OpMerkle} from "./OpMerkle.sol";

/// @title TrainingLedger
/// @notice Append-only record of per-user model forks and their training ops.
/// A base model is registered with its content id (CID). Anyone may fork a base model; the fork
/// (a "user model") belongs to its creator. Each training interaction on a fork is one op: the CID
/// of the encrypted interaction, the CID of the encrypted adapter delta, and keyed commitments to
/// the plaintext delta and to the adapter state after applying it. Ops of a fork form a hash chain;
/// ops of all forks are sealed, in recording order, into blocks whose Merkle root is stored.
/// @dev Storage holds what the contract must enforce, and no more: per fork its owner, op count,
/// head (the latest op hash) and genesis; per op only its hash (what `sealBlock` builds the tree
/// from); per block its root. Everything else about an op (CIDs, commitments, recorder, time) is
/// in its `TrainingRecorded` event, whose fields the stored op hash commits to. A fork's ops lie
/// between blocks `forkedAtBlock` and `lastOpBlock`, so readers fetch its events from that range.
///
/// Op hash preimage (Solidity ABI encoding, every field 32 bytes):
///
///     opHash = keccak256(abi.encode(
///         OP_TYPEHASH, block.chainid, address(ledger), userModelId, seq, prevOpHash,
///         keccak256(bytes(interactionCid)), keccak256(bytes(deltaCid)),
///         deltaCommitment, stateCommitment))
///
/// `seq` counts the fork's ops from 1; `prevOpHash` is the fork's previous op hash, or for
/// seq 1 the fork's genesis hash:
///
///     genesis = keccak256(abi.encode(GENESIS_TYPEHASH, block.chainid, address(ledger),
///         userModelId, baseModelId, keccak256(bytes(baseModelCid)), owner,
///         parentId, parentSeq, parentOpHash, generation))
///
/// A fork of the base model is generation 1 with parentId = parentSeq = 0 and parentOpHash = 0. A
/// fork of a fork starts from the parent's exported state at the parent's op `parentSeq`
/// (`forkFromExport`): parentOpHash is that op's hash, the generation the parent's plus one, and
/// the base model the parent's, so every fork's genesis commits to its whole lineage.
///
/// The contract computes each new head itself from the stored head (and refuses a caller's hash
/// that differs), so no op hash can be recorded twice: two equal hashes would need the same chain,
/// ledger, fork and seq, and a fork's seq only grows.
///
/// Nothing in this contract rewrites or deletes an op hash, a fork's genesis or a sealed block
/// root: op hashes are written once in `recordTraining`, roots once in `sealBlock`.
///
/// Rewards are paid only for measured quality: a range of a fork's ops earns `rewardPerOp` for each
/// `minGainPerOp` of held-out loss it removed (at most one reward per op), as attested by a staked
/// evaluator (EIP-712 `QualityAttestation`), after a challenge window in which a REFEREE_ROLE holder
/// who re-ran the evaluation and found it false rejects the claim and slashes the stake the
/// evaluator bonded for it (`bondMultiple` times the reward) into the reward pool.
contract TrainingLedger is AccessControl, EIP712 {
    using SafeERC20 for IERC20;

    /// @notice May register base models.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    /// @notice May set the reward paid per op and the quality policy.
    bytes32 public constant REWARD_ADMIN_ROLE = keccak256("REWARD_ADMIN_ROLE");
    /// @notice May reject a pending reward claim whose attestation a re-check proved false (slashing its evaluator).
    bytes32 public constant REFEREE_ROLE = keccak256("REFEREE_ROLE");
    bytes32 public constant ATTESTATION_TYPEHASH = keccak256(
        "QualityAttestation(address evaluator,uint256 userModelId,uint256 fromSeq,uint256 toSeq,bytes32 toOpHash,"
        "bytes32 evalDataHash,uint256 lossBefore,uint256 lossAfter)"
    );
    /// @notice Losses are mean token cross-entropies in nats times this.
    uint256 public constant LOSS_SCALE = 1e9;

    bytes32 public constant OP_TYPEHASH = keccak256(
        "LoyalLedgerOp(uint256 chainId,address ledger,uint256 userModelId,uint256 seq,bytes32 prevOpHash,"
        "bytes32 interactionCidHash,bytes32 deltaCidHash,bytes32 deltaCommitment,bytes32 stateCommitment)"
    );
    bytes32 public constant GENESIS_TYPEHASH = keccak256(
        "LoyalLedgerFork(uint256 chainId,address ledger,uint256 userModelId,uint256 baseModelId,"
        "bytes32 baseModelCidHash,address owner,uint256 parentId,uint256 parentSeq,bytes32 parentOpHash,"
        "uint256 generation)"
    );

    /// @notice Most ops one `sealBlock` call seals (bounds its gas).
    uint256 public constant MAX_SEAL_BATCH = 64;
    /// @notice Most op hashes one `getOpHashes` call returns.
    uint256 public constant MAX_PAGE = 100;

    struct BaseModel {
        string cid;
        string name;
        address registrar;
    }

    struct Fork {
        address owner;
        uint48 opCount;
        uint48 lastOpBlock; // block of the fork's latest op (0 before the first)
        bytes32 head; // hash of the latest op, or `genesis` before the first op
        bytes32 genesis;
        uint64 baseModelId;
        uint64 forkedAtBlock; // fork height
        uint64 parentId; // 0 for a fork of the base model
        uint48 parentSeq; // the parent's op whose exported state this fork starts from (0: the base)
        uint16 generation; // 1 for a fork of the base model, parent's + 1 otherwise
    }

    /// @notice The fields of an op hash besides chain, ledger, fork and seq: what a caller shows to
    /// prove that an op with a given hash has a given state commitment.
    struct OpFields {
        bytes32 prevOpHash;
        bytes32 interactionCidHash;
        bytes32 deltaCidHash;
        bytes32 deltaCommitment;
        bytes32 stateCommitment;
    }

    struct SealedBlock {
        uint64 firstOpId;
        uint64 opCount;
        uint64 sealedAtBlock;
        bytes32 root;
    }

    /// @notice A fork's export at one op: the head it was taken at and the block of its event.
    struct ExportPoint {
        bytes32 headOpHash;
        uint64 atBlock;
    }

    /// @notice An account's ML-DSA-65 (FIPS 204) public key for signing block roots: keccak256 of
    /// the key's 1952 bytes, and the block of its `BlockKeyRegistered` event (which names its CID).
    struct BlockKey {
        bytes32 keyHash;
        uint64 registeredAtBlock;
    }

    /// @notice A staked evaluator's signed statement: on its held-out data (`evalDataHash` =
    /// keccak256 of the data's CID), fork `userModelId`'s state after op `fromSeq - 1` had loss
    /// `lossBefore` and after op `toSeq` (hash `toOpHash`) loss `lossAfter` (both x LOSS_SCALE).
    struct QualityAttestation {
        address evaluator;
        uint256 userModelId;
        uint256 fromSeq;
        uint256 toSeq;
        bytes32 toOpHash;
        bytes32 evalDataHash;
        uint256 lossBefore;
        uint256 lossAfter;
    }

    struct QualityPolicy {
        uint256 minEvaluatorStake; // active stake an evaluator needs in Staking
        uint256 minGainPerOp; // loss reduction (x LOSS_SCALE) that earns one op's reward
        uint64 challengeWindow; // seconds a claim waits, rejectable, before it can be paid
        uint16 bondMultiple; // evaluator stake locked per claim, as a multiple of its reward
    }

    enum ClaimStatus {
        None,
        Pending,
        Paid,
        Rejected
    }

    struct RewardClaim {
        uint64 userModelId;
        uint48 fromSeq;
        uint48 toSeq;
        uint64 readyAt; // earliest finalisation time; rejectable before it
        address owner;
        address evaluator;
        uint256 amount;
        uint256 bond; // evaluator stake locked, slashed if rejected
        ClaimStatus status;
        uint64 submittedAtBlock; // block of the RewardClaimSubmitted event (its eval data CID)
    }

    /// @notice The LoyalToken reward pool's token.
    IERC20 public immutable token;
    /// @notice Where evaluators stake, and which locks and slashes their bonds.
    Staking public immutable staking;

    BaseModel[] private _baseModels; // id = index + 1
    Fork[] private _forks; // id = index + 1
    SealedBlock[] private _blocks; // id = index + 1
    /// @dev Hash of op `opId` (ids from 1, in recording order over all forks).
    mapping(uint256 opId => bytes32) private _opHashes;
    /// @dev Id the next op gets; starts at 1, so the slot is never zero and an op never pays to create it.
    uint256 private _nextOpId = 1;

    mapping(address owner => uint256[]) private _userForks;
    mapping(uint256 userModelId => mapping(address => bool)) private _recorders;
    mapping(uint256 userModelId => mapping(uint256 seq => ExportPoint)) private _exports;
    /// @notice Seq of fork `userModelId`'s latest export (0 if none).
    mapping(uint256 userModelId => uint256) public latestExportSeq;
    /// @notice Ops of fork `userModelId` with seq <= this have been paid their reward.
    mapping(uint256 userModelId => uint256) public rewardedThroughSeq;
    mapping(address account => BlockKey) private _blockKeys;
    /// @notice Block of `signer`'s latest `BlockSigned` event for ledger block `blockId` (0 if none).
    mapping(uint256 blockId => mapping(address signer => uint256)) public blockSignatureAt;

    /// @notice Ops sealed so far (ids 1..sealedOpCount are in blocks).
    uint256 public sealedOpCount;
    /// @notice Tokens paid per sealed op on claim.
    uint256 public rewardPerOp;
    /// @notice Tokens funded into the pool, not yet paid and not reserved for a pending claim.
    uint256 public rewardPool;
    /// @notice Tokens reserved for pending claims.
    uint256 public rewardsReserved;
    QualityPolicy public qualityPolicy;
    RewardClaim[] private _claims; // id = index + 1
    /// @notice The fork's pending claim (0 if none): one at a time, so ranges stay contiguous.
    mapping(uint256 userModelId => uint256 claimId) public pendingClaimOf;
    /// @notice EIP-712 digests of attestations already used in a claim (paid, pending or rejected).
    mapping(bytes32 digest => bool) public attestationUsed;
    uint256 public totalFunded;
    uint256 public totalPaid;

    event BaseModelRegistered(uint256 indexed baseModelId, string cid, string name, address indexed registrar);
    event ModelForked(
        uint256 indexed userModelId,
        uint256 indexed baseModelId,
        address indexed owner,
        uint256 forkedAtBlock,
        bytes32 genesis,
        uint256 parentId,
        uint256 parentSeq,
        uint256 generation
    );
    event RecorderSet(uint256 indexed userModelId, address indexed recorder, bool allowed);
    /// @notice One op: everything its hash commits to, who recorded it and when (block time).
    event TrainingRecorded(
        uint256 indexed opId,
        uint256 indexed userModelId,
        address indexed owner,
        uint256 seq,
        bytes32 prevOpHash,
        bytes32 opHash,
        string interactionCid,
        string deltaCid,
        bytes32 deltaCommitment,
        bytes32 stateCommitment,
        address recorder,
        uint256 recordedAt
    );
    event BlockSealed(uint256 indexed blockId, uint256 firstOpId, uint256 opCount, bytes32 root);
    event ModelExported(
        uint256 indexed userModelId,
        address indexed owner,
        string stateCid,
        bytes32 headOpHash,
        bytes32 stateCommitment,
        uint256 opCount
    );
    /// @notice `account` bound its ML-DSA-65 block-signing key, once: `keyHash` = keccak256(key), the key at `keyCid`.
    event BlockKeyRegistered(address indexed account, bytes32 keyHash, string keyCid);
    /// @notice `signer` published an ML-DSA-65 signature of block `blockId`'s root, stored at
    /// `signatureCid` (checked off chain against the signer's registered key: no EVM verifier exists).
    event BlockSigned(uint256 indexed blockId, address indexed signer, bytes32 root, string signatureCid);
    event RewardsFunded(address indexed from, uint256 amount, uint256 pool);
    event RewardPerOpSet(uint256 amount);
    event QualityPolicySet(uint256 minEvaluatorStake, uint256 minGainPerOp, uint64 challengeWindow, uint16 bondMultiple);
    event RewardClaimSubmitted(
        uint256 indexed claimId,
        uint256 indexed userModelId,
        address indexed evaluator,
        uint256 fromSeq,
        uint256 toSeq,
        uint256 lossBefore,
        uint256 lossAfter,
        string evalDataCid,
        uint256 amount,
        uint256 bond,
        uint256 readyAt
    );
    event RewardClaimRejected(uint256 indexed claimId, uint256 indexed userModelId, address indexed evaluator, uint256 slashed, string reason);
    /// @notice Ops `fromSeq..toSeq` of the fork were paid `amount` in total.
    event TrainingRewardsClaimed(
        uint256 indexed userModelId, address indexed owner, uint256 fromSeq, uint256 toSeq, uint256 amount
    );

    error UnknownBaseModel(uint256 baseModelId);
    error UnknownFork(uint256 userModelId);
    error UnknownOp(uint256 opId);
    error UnknownBlock(uint256 blockId);
    error EmptyCid();
    error NotForkOwner(uint256 userModelId, address caller);
    error NotAuthorisedRecorder(uint256 userModelId, address caller);
    error OpHashMismatch(bytes32 expected, bytes32 provided);
    error OpAlreadyRecorded(bytes32 opHash);
    error NotTheOp(uint256 userModelId, uint256 seq, bytes32 recorded, bytes32 computed);
    error NothingToSeal();
    error NothingToExport(uint256 userModelId);
    error OpNotSealed(uint256 opId);
    error NotNextRange(uint256 userModelId, uint256 fromSeq, uint256 toSeq, uint256 expectedFromSeq);
    error ClaimPending(uint256 userModelId, uint256 claimId);
    error AttestedOpMismatch(bytes32 attested, bytes32 recorded);
    error EvalDataMismatch(bytes32 attested, bytes32 given);
    error ForgedAttestation(address claimed, address signer);
    error AttestationAlreadyUsed(bytes32 digest);
    error SelfAttestation(address evaluator);
    error EvaluatorNotStaked(address evaluator, uint256 stake, uint256 required);
    error LossGotWorse(uint256 lossBefore, uint256 lossAfter);
    error GainBelowMinimum(uint256 gain, uint256 minGainPerOp);
    error UnknownClaim(uint256 claimId);
    error ClaimNotPending(uint256 claimId, ClaimStatus status);
    error ChallengeWindowOpen(uint256 claimId, uint256 readyAt);
    error ChallengeWindowClosed(uint256 claimId, uint256 readyAt);
    error BadPolicy();
    error InsufficientRewardPool(uint256 requested, uint256 available);
    error ZeroAmount();
    error ZeroKeyHash();
    error UnknownParentOp(uint256 parentId, uint256 parentSeq, uint256 parentOpCount);
    error NotExported(uint256 parentId, uint256 parentSeq);
    error GenerationLimit(uint256 generation);
    error BlockKeyAlreadyRegistered(address account, bytes32 keyHash);
    error NoBlockKey(address account);

    /// @param token_ LoyalToken, the reward pool's currency.
    /// @param staking_ the suite's Staking (this contract needs its MODULE_ROLE and LOCKER_ROLE).
    /// @param rewardPerOp_ tokens paid per rewarded op.
    /// @param policy the quality policy (see QualityPolicy).
    /// @param admin receives DEFAULT_ADMIN_ROLE, REGISTRAR_ROLE, REWARD_ADMIN_ROLE and REFEREE_ROLE.
    constructor(IERC20 token_, Staking staking_, uint256 rewardPerOp_, QualityPolicy memory policy, address admin)
        EIP712("LoyalTrainingLedger", "1")
    {
        token = token_;
        staking = staking_;
        rewardPerOp = rewardPerOp_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGISTRAR_ROLE, admin);
        _grantRole(REWARD_ADMIN_ROLE, admin);
        _grantRole(REFEREE_ROLE, admin);
        emit RewardPerOpSet(rewardPerOp_);
        _setQualityPolicy(policy);
    }

    // ------------------------------------------------------------------ registry and forks

    /// @notice Register a base model by the CID of its weights. Only REGISTRAR_ROLE.
    /// @return baseModelId the new model's id (from 1).
    function registerBaseModel(string calldata cid, string calldata name)
        external
        onlyRole(REGISTRAR_ROLE)
        returns (uint256 baseModelId)
    {
        if (bytes(cid).length == 0) revert EmptyCid();
        _baseModels.push(BaseModel(cid, name, msg.sender));
        baseModelId = _baseModels.length;
        emit BaseModelRegistered(baseModelId, cid, name, msg.sender);
    }

    /// @notice Fork base model `baseModelId` (generation 1); the caller owns the new user model.
    /// @return userModelId the fork's id (from 1).
    function forkModel(uint256 baseModelId) external returns (uint256 userModelId) {
        _baseModel(baseModelId);
        return _newFork(baseModelId, 0, 0, bytes32(0), 1);
    }

    /// @notice Fork fork `parentId` at its op `parentSeq`: the new fork (generation parent + 1, same
    /// base model) starts from the state the parent exported at that op. The caller owns it. The
    /// parent must have exported at exactly that op (`exportModel` when it was the parent's head).
    /// @return userModelId the fork's id.
    function forkFromExport(uint256 parentId, uint256 parentSeq) external returns (uint256 userModelId) {
        Fork storage p = _fork(parentId);
        if (parentSeq == 0 || parentSeq > p.opCount) revert UnknownParentOp(parentId, parentSeq, p.opCount);
        bytes32 parentOpHash = _exports[parentId][parentSeq].headOpHash;
        if (parentOpHash == bytes32(0)) revert NotExported(parentId, parentSeq);
        if (p.generation == type(uint16).max) revert GenerationLimit(p.generation);
        return _newFork(p.baseModelId, parentId, parentSeq, parentOpHash, p.generation + 1);
    }

    function _newFork(uint256 baseModelId, uint256 parentId, uint256 parentSeq, bytes32 parentOpHash, uint256 generation)
        private
        returns (uint256 userModelId)
    {
        userModelId = _forks.length + 1;
        bytes32 genesis = keccak256(
            abi.encode(
                GENESIS_TYPEHASH,
                block.chainid,
                address(this),
                userModelId,
                baseModelId,
                keccak256(bytes(_baseModels[baseModelId - 1].cid)),
                msg.sender,
                parentId,
                parentSeq,
                parentOpHash,
                generation
            )
        );
        _forks.push(
            Fork(
                msg.sender,
                0,
                0,
                genesis,
                genesis,
                uint64(baseModelId),
                uint64(block.number),
                uint64(parentId),
                uint48(parentSeq),
                uint16(generation)
            )
        );
        _userForks[msg.sender].push(userModelId);
        emit ModelForked(userModelId, baseModelId, msg.sender, block.number, genesis, parentId, parentSeq, generation);
    }

    /// @notice Allow or disallow `recorder` to record ops on the caller's fork `userModelId`.
    function setRecorder(uint256 userModelId, address recorder, bool allowed) external {
        Fork storage f = _fork(userModelId);
        if (f.owner != msg.sender) revert NotForkOwner(userModelId, msg.sender);
        _recorders[userModelId][recorder] = allowed;
        emit RecorderSet(userModelId, recorder, allowed);
    }

    // ------------------------------------------------------------------ recording

    /// @notice Append one training op to fork `userModelId`. Only the owner or an authorised recorder.
    /// @param interactionCid CID of the encrypted interaction (prompt, response, feedback).
    /// @param deltaCid CID of the encrypted adapter delta.
    /// @param deltaCommitment keyed commitment to the plaintext delta bytes.
    /// @param stateCommitment keyed commitment to the plaintext adapter state after this op.
    /// @param opHash the caller's op hash; must equal the hash the contract computes over the
    /// fork's current head (a stale head, or fields other than the ones hashed, are refused).
    /// @return opId the op's global id (from 1).
    function recordTraining(
        uint256 userModelId,
        string memory interactionCid,
        string memory deltaCid,
        bytes32 deltaCommitment,
        bytes32 stateCommitment,
        bytes32 opHash
    ) external returns (uint256 opId) {
        Fork storage f = _recordableFork(userModelId);
        if (bytes(interactionCid).length == 0 || bytes(deltaCid).length == 0) revert EmptyCid();
        OpFields memory o = OpFields(
            f.head, keccak256(bytes(interactionCid)), keccak256(bytes(deltaCid)), deltaCommitment, stateCommitment
        );
        uint256 seq;
        (opId, seq) = _append(f, userModelId, o, opHash);
        emit TrainingRecorded(
            opId,
            userModelId,
            f.owner,
            seq,
            o.prevOpHash,
            opHash,
            interactionCid,
            deltaCid,
            o.deltaCommitment,
            o.stateCommitment,
            msg.sender,
            block.timestamp
        );
    }

    /// @dev Check `opHash` is the hash of `o` as the fork's next op, then store it and move the head.
    function _append(Fork storage f, uint256 userModelId, OpFields memory o, bytes32 opHash)
        private
        returns (uint256 opId, uint256 seq)
    {
        if (opHash == o.prevOpHash) revert OpAlreadyRecorded(opHash); // the fork's latest op, sent again
        seq = uint256(f.opCount) + 1;
        bytes32 expected = _hashOp(userModelId, seq, o);
        if (expected != opHash) revert OpHashMismatch(expected, opHash);
        opId = _nextOpId;
        _nextOpId = opId + 1;
        _opHashes[opId] = opHash;
        f.opCount = uint48(seq);
        f.lastOpBlock = uint48(block.number);
        f.head = opHash;
    }

    function _hashOp(uint256 userModelId, uint256 seq, OpFields memory o) private view returns (bytes32) {
        return keccak256(
            abi.encode(
                OP_TYPEHASH,
                block.chainid,
                address(this),
                userModelId,
                seq,
                o.prevOpHash,
                o.interactionCidHash,
                o.deltaCidHash,
                o.deltaCommitment,
                o.stateCommitment
            )
        );
    }

    /// @notice The op hash for the given fields (see the contract's NatSpec for the preimage).
    function computeOpHash(
        uint256 userModelId,
        uint256 seq,
        bytes32 prevOpHash,
        string calldata interactionCid,
        string calldata deltaCid,
        bytes32 deltaCommitment,
        bytes32 stateCommitment
    ) external view returns (bytes32) {
        return _hashOp(
            userModelId,
            seq,
            OpFields(prevOpHash, keccak256(bytes(interactionCid)), keccak256(bytes(deltaCid)), deltaCommitment, stateCommitment)
        );
    }

    // ------------------------------------------------------------------ sealing and proofs

    /// @notice Seal up to MAX_SEAL_BATCH unsealed ops, oldest first, into a new block. Anyone may call.
    /// @return blockId the new block's id (from 1).
    function sealBlock() external returns (uint256 blockId) {
        uint256 first = sealedOpCount + 1;
        uint256 pending = _nextOpId - first;
        if (pending == 0) revert NothingToSeal();
        uint256 n = pending < MAX_SEAL_BATCH ? pending : MAX_SEAL_BATCH;
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            leaves[i] = OpMerkle.leaf(first + i, _opHashes[first + i]);
        }
        bytes32 root = OpMerkle.root(leaves);
        sealedOpCount = first + n - 1;
        _blocks.push(SealedBlock(uint64(first), uint64(n), uint64(block.number), root));
        blockId = _blocks.length;
        emit BlockSealed(blockId, first, n, root);
    }

    /// @notice True iff `proof` shows op `opId` with hash `opHash` is a leaf of block `blockId`'s root.
    /// @dev Checks the claimed (opId, opHash) against the stored root only, like an outside verifier.
    function verifyOpInclusion(uint256 blockId, uint256 opId, bytes32 opHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        if (blockId == 0 || blockId > _blocks.length) revert UnknownBlock(blockId);
        SealedBlock storage b = _blocks[blockId - 1];
        if (opId < b.firstOpId || opId >= uint256(b.firstOpId) + b.opCount) return false;
        return OpMerkle.verify(proof, b.root, OpMerkle.leaf(opId, opHash));
    }

    /// @notice The id of the block that sealed op `opId` (reverts OpNotSealed if none yet).
    function blockOfOp(uint256 opId) public view returns (uint256) {
        if (opId == 0 || opId >= _nextOpId) revert UnknownOp(opId);
        if (opId > sealedOpCount) revert OpNotSealed(opId);
        uint256 lo = 0;
        uint256 hi = _blocks.length - 1;
        while (lo < hi) {
            uint256 mid = (lo + hi + 1) / 2;
            if (_blocks[mid].firstOpId <= opId) lo = mid;
            else hi = mid - 1;
        }
        return lo + 1;
    }

    // ------------------------------------------------------------------ post-quantum block signatures

    /// @notice Bind the caller's ML-DSA-65 public key for signing block roots: its keccak256 hash
    /// here, the key itself (1952 bytes) in the content store at `keyCid`. Once per account: a key
    /// that could be replaced by an ordinary (secp256k1-signed) transaction would protect nothing
    /// against an adversary who forges those.
    function registerBlockKey(bytes32 keyHash, string calldata keyCid) external {
        if (keyHash == bytes32(0)) revert ZeroKeyHash();
        if (bytes(keyCid).length == 0) revert EmptyCid();
        bytes32 existing = _blockKeys[msg.sender].keyHash;
        if (existing != bytes32(0)) revert BlockKeyAlreadyRegistered(msg.sender, existing);
        _blockKeys[msg.sender] = BlockKey(keyHash, uint64(block.number));
        emit BlockKeyRegistered(msg.sender, keyHash, keyCid);
    }

    /// @notice Publish the caller's ML-DSA-65 signature of sealed block `blockId`'s root (stored at
    /// `signatureCid`). The caller must have a registered key; the signature is verified off chain
    /// (`loyal ledger verify`), so a later submission by the same signer supersedes an earlier one.
    function submitBlockSignature(uint256 blockId, string calldata signatureCid) external {
        if (blockId == 0 || blockId > _blocks.length) revert UnknownBlock(blockId);
        if (_blockKeys[msg.sender].keyHash == bytes32(0)) revert NoBlockKey(msg.sender);
        if (bytes(signatureCid).length == 0) revert EmptyCid();
        blockSignatureAt[blockId][msg.sender] = block.number;
        emit BlockSigned(blockId, msg.sender, _blocks[blockId - 1].root, signatureCid);
    }

    /// @notice `account`'s registered block-signing key (zero if none).
    function blockKeyOf(address account) external view returns (BlockKey memory) {
        return _blockKeys[account];
    }

    // ------------------------------------------------------------------ export

    /// @notice Publish the CID of the encrypted adapter state at the fork's current head and emit
    /// it with the head op hash and the head's state commitment. Owner or authorised recorder.
    /// @param head the head op's fields; they must hash (with the fork and its op count) to the
    /// stored head, which proves `head.stateCommitment` is the head's state commitment.
    function exportModel(uint256 userModelId, string calldata stateCid, OpFields calldata head) external {
        Fork storage f = _recordableFork(userModelId);
        uint256 seq = f.opCount;
        if (seq == 0) revert NothingToExport(userModelId);
        if (bytes(stateCid).length == 0) revert EmptyCid();
        bytes32 h = _hashOp(userModelId, seq, head);
        if (h != f.head) revert NotTheOp(userModelId, seq, f.head, h);
        _exports[userModelId][seq] = ExportPoint(h, uint64(block.number));
        latestExportSeq[userModelId] = seq;
        emit ModelExported(userModelId, f.owner, stateCid, h, head.stateCommitment, seq);
    }

    // ------------------------------------------------------------------ rewards

    /// @notice Add `amount` tokens from the caller to the reward pool (needs an ERC-20 approval).
    function fundRewards(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        rewardPool += amount;
        totalFunded += amount;
        emit RewardsFunded(msg.sender, amount, rewardPool);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Set the tokens paid per op from now on. Only REWARD_ADMIN_ROLE.
    function setRewardPerOp(uint256 amount) external onlyRole(REWARD_ADMIN_ROLE) {
        rewardPerOp = amount;
        emit RewardPerOpSet(amount);
    }

    /// @notice Set the quality policy for claims submitted from now on. Only REWARD_ADMIN_ROLE.
    function setQualityPolicy(QualityPolicy calldata policy) external onlyRole(REWARD_ADMIN_ROLE) {
        _setQualityPolicy(policy);
    }

    function _setQualityPolicy(QualityPolicy memory policy) private {
        if (policy.minGainPerOp == 0 || policy.bondMultiple == 0) revert BadPolicy();
        qualityPolicy = policy;
        emit QualityPolicySet(policy.minEvaluatorStake, policy.minGainPerOp, policy.challengeWindow, policy.bondMultiple);
    }

    /// @notice The EIP-712 digest an evaluator signs for attestation `a`.
    function attestationDigest(QualityAttestation calldata a) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(ATTESTATION_TYPEHASH, a)));
    }

    /// @notice Claim the reward for ops `a.fromSeq..a.toSeq` of the caller's fork on the strength of
    /// attestation `a`, signed by `a.evaluator`. The range must start right after the last op paid
    /// and end at a sealed op; `toOp` (op `toOpId`'s fields) proves that op is the fork's op
    /// `a.toSeq` with hash `a.toOpHash`. The reward is `rewardPerOp` for each `minGainPerOp` of loss
    /// removed, at most one per op; it is reserved now and paid by `finalizeRewardClaim` once the
    /// challenge window has passed, while `bondMultiple` times it of the evaluator's stake stays locked.
    /// @param evalDataCid the CID of the evaluator's held-out data (keccak256 must be `a.evalDataHash`).
    /// @return claimId the claim's id (from 1).
    function submitRewardClaim(
        QualityAttestation calldata a,
        bytes calldata signature,
        string calldata evalDataCid,
        uint256 toOpId,
        OpFields calldata toOp
    ) external returns (uint256 claimId) {
        (uint256 amount, bytes32 digest) = _checkClaim(a, signature, evalDataCid, toOpId, toOp);
        attestationUsed[digest] = true;
        if (amount > rewardPool) revert InsufficientRewardPool(amount, rewardPool);
        rewardPool -= amount;
        rewardsReserved += amount;
        claimId = _openClaim(a, amount);
        _emitSubmitted(claimId, a, evalDataCid);
        staking.lock(a.evaluator, _claims[claimId - 1].bond); // reverts InsufficientUnlockedStake if it cannot
    }

    function _emitSubmitted(uint256 claimId, QualityAttestation calldata a, string calldata evalDataCid) private {
        RewardClaim storage c = _claims[claimId - 1];
        emit RewardClaimSubmitted(
            claimId,
            a.userModelId,
            a.evaluator,
            a.fromSeq,
            a.toSeq,
            a.lossBefore,
            a.lossAfter,
            evalDataCid,
            c.amount,
            c.bond,
            c.readyAt
        );
    }

    function _openClaim(QualityAttestation calldata a, uint256 amount) private returns (uint256 claimId) {
        QualityPolicy memory p = qualityPolicy;
        _claims.push(
            RewardClaim(
                uint64(a.userModelId),
                uint48(a.fromSeq),
                uint48(a.toSeq),
                uint64(block.timestamp + p.challengeWindow),
                msg.sender,
                a.evaluator,
                amount,
                amount * p.bondMultiple,
                ClaimStatus.Pending,
                uint64(block.number)
            )
        );
        claimId = _claims.length;
        pendingClaimOf[a.userModelId] = claimId;
    }

    /// @dev Every check of a claim; returns its reward and the attestation's digest.
    function _checkClaim(
        QualityAttestation calldata a,
        bytes calldata signature,
        string calldata evalDataCid,
        uint256 toOpId,
        OpFields calldata toOp
    ) private view returns (uint256 amount, bytes32 digest) {
        _checkRange(a, toOpId, toOp);
        if (keccak256(bytes(evalDataCid)) != a.evalDataHash) {
            revert EvalDataMismatch(a.evalDataHash, keccak256(bytes(evalDataCid)));
        }
        digest = _checkSignature(a, signature);
        amount = _reward(a);
    }

    /// @dev The caller owns the fork, has no pending claim, and the range is the next one and ends
    /// at the sealed op `toOpId`, which `toOp` shows is the fork's op `a.toSeq` with hash `a.toOpHash`.
    function _checkRange(QualityAttestation calldata a, uint256 toOpId, OpFields calldata toOp) private view {
        uint256 fork = a.userModelId;
        if (_fork(fork).owner != msg.sender) revert NotForkOwner(fork, msg.sender);
        if (pendingClaimOf[fork] != 0) revert ClaimPending(fork, pendingClaimOf[fork]);
        uint256 expected = rewardedThroughSeq[fork] + 1;
        if (a.fromSeq != expected || a.toSeq < a.fromSeq) revert NotNextRange(fork, a.fromSeq, a.toSeq, expected);
        if (toOpId == 0 || toOpId >= _nextOpId) revert UnknownOp(toOpId);
        if (toOpId > sealedOpCount) revert OpNotSealed(toOpId);
        bytes32 h = _hashOp(fork, a.toSeq, toOp);
        if (h != _opHashes[toOpId]) revert NotTheOp(fork, a.toSeq, _opHashes[toOpId], h);
        if (h != a.toOpHash) revert AttestedOpMismatch(a.toOpHash, h);
    }

    /// @dev `a` is unused, signed by `a.evaluator`, who is not the caller and is staked.
    function _checkSignature(QualityAttestation calldata a, bytes calldata signature) private view returns (bytes32 digest) {
        digest = attestationDigest(a);
        if (attestationUsed[digest]) revert AttestationAlreadyUsed(digest);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError || signer != a.evaluator) revert ForgedAttestation(a.evaluator, signer);
        if (a.evaluator == msg.sender) revert SelfAttestation(a.evaluator);
        uint256 stake = staking.stakeOf(a.evaluator);
        uint256 required = qualityPolicy.minEvaluatorStake;
        if (stake < required) revert EvaluatorNotStaked(a.evaluator, stake, required);
    }

    /// @dev `rewardPerOp` per `minGainPerOp` of loss removed, at most one per op of the range.
    function _reward(QualityAttestation calldata a) private view returns (uint256) {
        if (a.lossAfter > a.lossBefore) revert LossGotWorse(a.lossBefore, a.lossAfter);
        uint256 minGain = qualityPolicy.minGainPerOp;
        uint256 rewarded = (a.lossBefore - a.lossAfter) / minGain;
        if (rewarded == 0) revert GainBelowMinimum(a.lossBefore - a.lossAfter, minGain);
        uint256 ops = a.toSeq - a.fromSeq + 1;
        return (rewarded < ops ? rewarded : ops) * rewardPerOp;
    }

    /// @notice Pay pending claim `claimId` once its challenge window has passed. Anyone may call;
    /// the fork owner is paid, the fork's ops through the claim's last are marked paid, and the
    /// evaluator's bond is unlocked.
    function finalizeRewardClaim(uint256 claimId) external {
        RewardClaim storage c = _pendingClaim(claimId);
        if (block.timestamp < c.readyAt) revert ChallengeWindowOpen(claimId, c.readyAt);
        c.status = ClaimStatus.Paid;
        uint256 amount = c.amount;
        rewardsReserved -= amount;
        totalPaid += amount;
        rewardedThroughSeq[c.userModelId] = c.toSeq;
        pendingClaimOf[c.userModelId] = 0;
        emit TrainingRewardsClaimed(c.userModelId, c.owner, c.fromSeq, c.toSeq, amount);
        staking.unlock(c.evaluator, c.bond);
        token.safeTransfer(c.owner, amount);
    }

    /// @notice Reject pending claim `claimId` before its window closes: a re-check of its
    /// attestation (the fork's states, with the fork key, on the evaluator's data at the CID in
    /// the claim's event) found the stated losses false. Only REFEREE_ROLE. The reserved reward
    /// returns to the pool and the evaluator's bond (as much of it as is still slashable) is
    /// slashed into the pool. The fork's next claim must cover the same ops again.
    function rejectRewardClaim(uint256 claimId, string calldata reason) external onlyRole(REFEREE_ROLE) {
        RewardClaim storage c = _pendingClaim(claimId);
        if (block.timestamp >= c.readyAt) revert ChallengeWindowClosed(claimId, c.readyAt);
        c.status = ClaimStatus.Rejected;
        rewardsReserved -= c.amount;
        rewardPool += c.amount;
        pendingClaimOf[c.userModelId] = 0;
        address evaluator = c.evaluator;
        staking.unlock(evaluator, c.bond);
        uint256 slashable = staking.slashableOf(evaluator);
        uint256 slashed = c.bond < slashable ? c.bond : slashable;
        emit RewardClaimRejected(claimId, c.userModelId, evaluator, slashed, reason);
        if (slashed > 0) {
            staking.slash(evaluator, slashed, reason);
            rewardPool += slashed;
            totalFunded += slashed;
            emit RewardsFunded(address(staking), slashed, rewardPool);
            staking.payOutSlashed(address(this), slashed);
        }
    }

    /// @notice Reward claim `claimId`.
    function getRewardClaim(uint256 claimId) external view returns (RewardClaim memory) {
        if (claimId == 0 || claimId > _claims.length) revert UnknownClaim(claimId);
        return _claims[claimId - 1];
    }

    function _pendingClaim(uint256 claimId) private view returns (RewardClaim storage c) {
        if (claimId == 0 || claimId > _claims.length) revert UnknownClaim(claimId);
        c = _claims[claimId - 1];
        if (c.status != ClaimStatus.Pending) revert ClaimNotPending(claimId, c.status);
    }

    // ------------------------------------------------------------------ views

    /// @notice Base model `baseModelId`.
    function baseModel(uint256 baseModelId) external view returns (BaseModel memory) {
        return _baseModel(baseModelId);
    }

    /// @notice Fork `userModelId` (owner, op count, block of its latest op, head, genesis, base, fork height).
    function getFork(uint256 userModelId) external view returns (Fork memory) {
        return _fork(userModelId);
    }

    /// @notice Hash of op `opId`.
    function opHashOf(uint256 opId) external view returns (bytes32) {
        if (opId == 0 || opId >= _nextOpId) revert UnknownOp(opId);
        return _opHashes[opId];
    }

    /// @notice Hashes of ops `firstOpId ..`, at most `count` (capped at MAX_PAGE) and none past the last op.
    function getOpHashes(uint256 firstOpId, uint256 count) external view returns (bytes32[] memory hashes) {
        if (firstOpId == 0 || firstOpId >= _nextOpId) revert UnknownOp(firstOpId);
        uint256 left = _nextOpId - firstOpId;
        if (count > left) count = left;
        if (count > MAX_PAGE) count = MAX_PAGE;
        hashes = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) hashes[i] = _opHashes[firstOpId + i];
    }

    /// @notice Sealed block `blockId`.
    function getBlock(uint256 blockId) external view returns (SealedBlock memory) {
        if (blockId == 0 || blockId > _blocks.length) revert UnknownBlock(blockId);
        return _blocks[blockId - 1];
    }

    /// @notice Fork `userModelId`'s export at op number `seq` (zero if none was taken there).
    function exportAt(uint256 userModelId, uint256 seq) external view returns (ExportPoint memory) {
        _fork(userModelId);
        return _exports[userModelId][seq];
    }

    /// @notice Whether `recorder` may record on fork `userModelId` (the owner always may).
    function isRecorder(uint256 userModelId, address recorder) external view returns (bool) {
        return _fork(userModelId).owner == recorder || _recorders[userModelId][recorder];
    }

    /// @notice Counts of base models, forks, ops and sealed blocks.
    function counts() external view returns (uint256 baseModels, uint256 forks, uint256 ops, uint256 blocks) {
        return (_baseModels.length, _forks.length, _nextOpId - 1, _blocks.length);
    }

    /// @notice Forks owned by `user`.
    function forksOf(address user) external view returns (uint256[] memory) {
        return _userForks[user];
    }

    // ------------------------------------------------------------------ internal

    function _recordableFork(uint256 userModelId) private view returns (Fork storage f) {
        f = _fork(userModelId);
        if (f.owner != msg.sender && !_recorders[userModelId][msg.sender]) {
            revert NotAuthorisedRecorder(userModelId, msg.sender);
        }
    }

    function _fork(uint256 userModelId) private view returns (Fork storage) {
        if (userModelId == 0 || userModelId > _forks.length) revert UnknownFork(userModelId);
        return _forks[userModelId - 1];
    }

    function _baseModel(uint256 baseModelId) private view returns (BaseModel storage) {
        if (baseModelId == 0 || baseModelId > _baseModels.length) revert UnknownBaseModel(baseModelId);
        return _baseModels[baseModelId - 1];
    }
}
