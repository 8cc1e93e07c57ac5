// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {OpMerkle} from "./OpMerkle.sol";

/// @title TrainingLedger
/// @notice Append-only record of per-user model forks and their training ops.
/// A base model is registered with its content id (CID). Anyone may fork a base model; the fork
/// (a "user model") belongs to its creator. Each training interaction on a fork is one op: the CID
/// of the encrypted interaction, the CID of the encrypted adapter delta, and keyed commitments to
/// the plaintext delta and to the adapter state after applying it. Ops of a fork form a hash chain;
/// ops of all forks are sealed, in recording order, into blocks whose Merkle root is stored.
/// @dev Op hash preimage (Solidity ABI encoding, every field 32 bytes):
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
///         userModelId, baseModelId, keccak256(bytes(baseModelCid)), owner))
///
/// Nothing in this contract rewrites or deletes an op, a fork head or a sealed block root: the
/// only writes to an op happen in `recordTraining` (creation) and `claimTrainingRewards` (which sets
/// a separate claimed flag, never the op).
contract TrainingLedger is AccessControl {
    using SafeERC20 for IERC20;

    /// @notice May register base models.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    /// @notice May set the reward paid per sealed op.
    bytes32 public constant REWARD_ADMIN_ROLE = keccak256("REWARD_ADMIN_ROLE");

    bytes32 public constant OP_TYPEHASH = keccak256(
        "LoyalLedgerOp(uint256 chainId,address ledger,uint256 userModelId,uint256 seq,bytes32 prevOpHash,"
        "bytes32 interactionCidHash,bytes32 deltaCidHash,bytes32 deltaCommitment,bytes32 stateCommitment)"
    );
    bytes32 public constant GENESIS_TYPEHASH = keccak256(
        "LoyalLedgerFork(uint256 chainId,address ledger,uint256 userModelId,uint256 baseModelId,"
        "bytes32 baseModelCidHash,address owner)"
    );

    /// @notice Most ops one `sealBlock` call seals (bounds its gas).
    uint256 public constant MAX_SEAL_BATCH = 64;
    /// @notice Most ops one `claimTrainingRewards` call pays.
    uint256 public constant MAX_CLAIM_BATCH = 128;
    /// @notice Most records one history page returns.
    uint256 public constant MAX_PAGE = 100;

    struct BaseModel {
        string cid;
        string name;
        address registrar;
    }

    struct Fork {
        uint64 baseModelId;
        uint64 forkedAtBlock; // fork height
        uint64 opCount;
        address owner;
        bytes32 genesis;
        bytes32 head; // hash of the latest op, or `genesis` before the first op
    }

    struct Op {
        uint64 userModelId;
        uint64 seq;
        uint64 recordedAtBlock;
        address recorder;
        bytes32 prevOpHash;
        bytes32 opHash;
        bytes32 deltaCommitment;
        bytes32 stateCommitment;
        string interactionCid;
        string deltaCid;
    }

    struct SealedBlock {
        uint64 firstOpId;
        uint64 opCount;
        uint64 sealedAtBlock;
        bytes32 root;
    }

    struct Export {
        string stateCid;
        bytes32 headOpHash;
        bytes32 stateCommitment;
        uint64 opCount;
    }

    /// @notice The LoyalToken reward pool's token.
    IERC20 public immutable token;

    BaseModel[] private _baseModels; // id = index + 1
    Fork[] private _forks; // id = index + 1
    Op[] private _ops; // id = index + 1
    SealedBlock[] private _blocks; // id = index + 1

    mapping(uint256 userModelId => uint256[]) private _forkOps;
    mapping(address owner => uint256[]) private _userForks;
    mapping(address owner => uint256[]) private _userOps;
    mapping(uint256 userModelId => mapping(address => bool)) private _recorders;
    /// @notice Id of the op with this hash (0 if none): a hash is recorded at most once, ever.
    mapping(bytes32 opHash => uint256 opId) public opIdByHash;
    /// @notice Whether the reward for op `opId` has been paid.
    mapping(uint256 opId => bool) public claimed;
    mapping(uint256 userModelId => Export) private _exports;

    /// @notice Ops sealed so far (ids 1..sealedOpCount are in blocks).
    uint256 public sealedOpCount;
    /// @notice Tokens paid per sealed op on claim.
    uint256 public rewardPerOp;
    /// @notice Tokens funded into the pool and not yet paid.
    uint256 public rewardPool;
    uint256 public totalFunded;
    uint256 public totalPaid;

    event BaseModelRegistered(uint256 indexed baseModelId, string cid, string name, address indexed registrar);
    event ModelForked(
        uint256 indexed userModelId, uint256 indexed baseModelId, address indexed owner, uint256 forkedAtBlock, bytes32 genesis
    );
    event RecorderSet(uint256 indexed userModelId, address indexed recorder, bool allowed);
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
        address recorder
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
    event RewardsFunded(address indexed from, uint256 amount, uint256 pool);
    event RewardPerOpSet(uint256 amount);
    event TrainingRewardsClaimed(uint256 indexed userModelId, address indexed owner, uint256[] opIds, uint256 amount);

    error UnknownBaseModel(uint256 baseModelId);
    error UnknownFork(uint256 userModelId);
    error UnknownOp(uint256 opId);
    error UnknownBlock(uint256 blockId);
    error EmptyCid();
    error NotForkOwner(uint256 userModelId, address caller);
    error NotAuthorisedRecorder(uint256 userModelId, address caller);
    error OpHashMismatch(bytes32 expected, bytes32 provided);
    error OpAlreadyRecorded(bytes32 opHash, uint256 opId);
    error NothingToSeal();
    error NothingToExport(uint256 userModelId);
    error OpNotInFork(uint256 opId, uint256 userModelId);
    error OpNotSealed(uint256 opId);
    error AlreadyClaimed(uint256 opId);
    error BatchSize(uint256 size, uint256 max);
    error InsufficientRewardPool(uint256 requested, uint256 available);
    error ZeroAmount();

    /// @param token_ LoyalToken, the reward pool's currency.
    /// @param rewardPerOp_ tokens paid per sealed op.
    /// @param admin receives DEFAULT_ADMIN_ROLE, REGISTRAR_ROLE and REWARD_ADMIN_ROLE.
    constructor(IERC20 token_, uint256 rewardPerOp_, address admin) {
        token = token_;
        rewardPerOp = rewardPerOp_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGISTRAR_ROLE, admin);
        _grantRole(REWARD_ADMIN_ROLE, admin);
        emit RewardPerOpSet(rewardPerOp_);
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

    /// @notice Fork base model `baseModelId`; the caller owns the new user model.
    /// @return userModelId the fork's id (from 1).
    function forkModel(uint256 baseModelId) external returns (uint256 userModelId) {
        BaseModel storage b = _baseModel(baseModelId);
        userModelId = _forks.length + 1;
        bytes32 genesis = keccak256(
            abi.encode(
                GENESIS_TYPEHASH, block.chainid, address(this), userModelId, baseModelId, keccak256(bytes(b.cid)), msg.sender
            )
        );
        _forks.push(Fork(uint64(baseModelId), uint64(block.number), 0, msg.sender, genesis, genesis));
        _userForks[msg.sender].push(userModelId);
        emit ModelForked(userModelId, baseModelId, msg.sender, block.number, genesis);
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
    /// @param opHash the caller's op hash; must equal `computeOpHash` over the fork's current head.
    /// @return opId the op's global id (from 1).
    function recordTraining(
        uint256 userModelId,
        string calldata interactionCid,
        string calldata deltaCid,
        bytes32 deltaCommitment,
        bytes32 stateCommitment,
        bytes32 opHash
    ) external returns (uint256 opId) {
        Fork storage f = _recordableFork(userModelId);
        if (bytes(interactionCid).length == 0 || bytes(deltaCid).length == 0) revert EmptyCid();
        {
            uint256 existing = opIdByHash[opHash];
            if (existing != 0) revert OpAlreadyRecorded(opHash, existing);
        }
        Op memory o = Op(
            uint64(userModelId),
            f.opCount + 1,
            uint64(block.number),
            msg.sender,
            f.head,
            opHash,
            deltaCommitment,
            stateCommitment,
            interactionCid,
            deltaCid
        );
        bytes32 expected = _opHash(o);
        if (expected != opHash) revert OpHashMismatch(expected, opHash);
        opId = _append(f, o);
    }

    function _append(Fork storage f, Op memory o) private returns (uint256 opId) {
        _ops.push(o);
        opId = _ops.length;
        opIdByHash[o.opHash] = opId;
        f.opCount = o.seq;
        f.head = o.opHash;
        _forkOps[o.userModelId].push(opId);
        _userOps[f.owner].push(opId);
        emit TrainingRecorded(
            opId,
            o.userModelId,
            f.owner,
            o.seq,
            o.prevOpHash,
            o.opHash,
            o.interactionCid,
            o.deltaCid,
            o.deltaCommitment,
            o.stateCommitment,
            o.recorder
        );
    }

    function _opHash(Op memory o) private view returns (bytes32) {
        return _hashOp(
            o.userModelId,
            o.seq,
            o.prevOpHash,
            keccak256(bytes(o.interactionCid)),
            keccak256(bytes(o.deltaCid)),
            o.deltaCommitment,
            o.stateCommitment
        );
    }

    function _hashOp(
        uint256 userModelId,
        uint256 seq,
        bytes32 prevOpHash,
        bytes32 interactionCidHash,
        bytes32 deltaCidHash,
        bytes32 deltaCommitment,
        bytes32 stateCommitment
    ) private view returns (bytes32) {
        return keccak256(
            abi.encode(
                OP_TYPEHASH,
                block.chainid,
                address(this),
                userModelId,
                seq,
                prevOpHash,
                interactionCidHash,
                deltaCidHash,
                deltaCommitment,
                stateCommitment
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
            prevOpHash,
            keccak256(bytes(interactionCid)),
            keccak256(bytes(deltaCid)),
            deltaCommitment,
            stateCommitment
        );
    }

    // ------------------------------------------------------------------ sealing and proofs

    /// @notice Seal up to MAX_SEAL_BATCH unsealed ops, oldest first, into a new block. Anyone may call.
    /// @return blockId the new block's id (from 1).
    function sealBlock() external returns (uint256 blockId) {
        uint256 first = sealedOpCount + 1;
        uint256 pending = _ops.length - sealedOpCount;
        if (pending == 0) revert NothingToSeal();
        uint256 n = pending < MAX_SEAL_BATCH ? pending : MAX_SEAL_BATCH;
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            leaves[i] = OpMerkle.leaf(first + i, _ops[first + i - 1].opHash);
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
        if (opId == 0 || opId > _ops.length) revert UnknownOp(opId);
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

    // ------------------------------------------------------------------ export

    /// @notice Publish the CID of the encrypted adapter state at the fork's current head and emit
    /// it with the head op hash and the head's state commitment. Owner or authorised recorder.
    function exportModel(uint256 userModelId, string calldata stateCid) external {
        Fork storage f = _recordableFork(userModelId);
        if (f.opCount == 0) revert NothingToExport(userModelId);
        if (bytes(stateCid).length == 0) revert EmptyCid();
        bytes32 commitment = _ops[opIdByHash[f.head] - 1].stateCommitment;
        _exports[userModelId] = Export(stateCid, f.head, commitment, f.opCount);
        emit ModelExported(userModelId, f.owner, stateCid, f.head, commitment, f.opCount);
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

    /// @notice Pay the fork owner `rewardPerOp` for each listed sealed op of fork `userModelId`.
    /// Each op is paid at most once; only the fork's owner may claim.
    /// @return amount tokens transferred to the caller.
    function claimTrainingRewards(uint256 userModelId, uint256[] calldata opIds) external returns (uint256 amount) {
        Fork storage f = _fork(userModelId);
        if (f.owner != msg.sender) revert NotForkOwner(userModelId, msg.sender);
        uint256 n = opIds.length;
        if (n == 0 || n > MAX_CLAIM_BATCH) revert BatchSize(n, MAX_CLAIM_BATCH);
        for (uint256 i = 0; i < n; ++i) {
            uint256 opId = opIds[i];
            if (opId == 0 || opId > _ops.length) revert UnknownOp(opId);
            if (_ops[opId - 1].userModelId != userModelId) revert OpNotInFork(opId, userModelId);
            if (opId > sealedOpCount) revert OpNotSealed(opId);
            if (claimed[opId]) revert AlreadyClaimed(opId);
            claimed[opId] = true;
        }
        amount = n * rewardPerOp;
        if (amount > rewardPool) revert InsufficientRewardPool(amount, rewardPool);
        rewardPool -= amount;
        totalPaid += amount;
        emit TrainingRewardsClaimed(userModelId, msg.sender, opIds, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ views

    /// @notice Base model `baseModelId`.
    function baseModel(uint256 baseModelId) external view returns (BaseModel memory) {
        return _baseModel(baseModelId);
    }

    /// @notice Fork `userModelId` (owner, base, fork height, op count, genesis and head hashes).
    function getFork(uint256 userModelId) external view returns (Fork memory) {
        return _fork(userModelId);
    }

    /// @notice Op `opId` as recorded.
    function getOp(uint256 opId) public view returns (Op memory) {
        if (opId == 0 || opId > _ops.length) revert UnknownOp(opId);
        return _ops[opId - 1];
    }

    /// @notice Sealed block `blockId`.
    function getBlock(uint256 blockId) external view returns (SealedBlock memory) {
        if (blockId == 0 || blockId > _blocks.length) revert UnknownBlock(blockId);
        return _blocks[blockId - 1];
    }

    /// @notice The latest export of fork `userModelId` (empty before the first export).
    function latestExport(uint256 userModelId) external view returns (Export memory) {
        _fork(userModelId);
        return _exports[userModelId];
    }

    /// @notice Whether `recorder` may record on fork `userModelId` (the owner always may).
    function isRecorder(uint256 userModelId, address recorder) external view returns (bool) {
        return _fork(userModelId).owner == recorder || _recorders[userModelId][recorder];
    }

    /// @notice Counts of base models, forks, ops and sealed blocks.
    function counts() external view returns (uint256 baseModels, uint256 forks, uint256 ops, uint256 blocks) {
        return (_baseModels.length, _forks.length, _ops.length, _blocks.length);
    }

    /// @notice Forks owned by `user`.
    function forksOf(address user) external view returns (uint256[] memory) {
        return _userForks[user];
    }

    /// @notice A page of ops on forks owned by `user`, oldest first: ids and records from `offset`,
    /// at most `limit` (capped at MAX_PAGE), plus the user's total op count.
    function getUserHistory(address user, uint256 offset, uint256 limit)
        external
        view
        returns (uint256[] memory opIds, Op[] memory ops, uint256 total)
    {
        return _page(_userOps[user], offset, limit);
    }

    /// @notice A page of fork `userModelId`'s ops in chain order (same paging as getUserHistory).
    function getForkOps(uint256 userModelId, uint256 offset, uint256 limit)
        external
        view
        returns (uint256[] memory opIds, Op[] memory ops, uint256 total)
    {
        _fork(userModelId);
        return _page(_forkOps[userModelId], offset, limit);
    }

    // ------------------------------------------------------------------ internal

    function _page(uint256[] storage ids, uint256 offset, uint256 limit)
        private
        view
        returns (uint256[] memory opIds, Op[] memory ops, uint256 total)
    {
        total = ids.length;
        if (limit > MAX_PAGE) limit = MAX_PAGE;
        uint256 n = offset < total ? total - offset : 0; // no `offset + limit`: it could overflow
        if (n > limit) n = limit;
        opIds = new uint256[](n);
        ops = new Op[](n);
        for (uint256 i = 0; i < n; ++i) {
            opIds[i] = ids[offset + i];
            ops[i] = _ops[opIds[i] - 1];
        }
    }

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
