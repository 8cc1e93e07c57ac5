// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {HostAgreements} from "./HostAgreements.sol";

/// @title UsageLedger
/// @notice Usage accounting for licensed hosts. The platform signs a permission σ(q) for every
/// query q a host serves (EIP-712 over the query hash, host, model, nonce and expiry). Hosts either
/// redeem single permissions on-chain or post batches (query count + Merkle root of permission
/// digests); both pay `feePerQuery` per query in LoyalToken straight to the model's community.
/// @dev The EIP-712 domain binds a permission to this contract and chain id; `host` and `modelId`
/// bind it to one licence; `nonce` (per host) makes on-chain redemption single-use; `expiry` bounds
/// it in time; `issuedBlock` is the chain head when the platform signed it, which lets `Claims` tell
/// whether a permission existed before the block a claim was committed in (a timestamp cannot:
/// several blocks may share one).
/// Batches are not checked permission by permission on-chain (that is what makes them cheap): the
/// platform, which issued the permissions, audits the posted roots off-chain.
contract UsageLedger is EIP712, AccessControl {
    using SafeERC20 for IERC20;

    /// @notice Role of the platform keys whose signatures count as permissions.
    bytes32 public constant PLATFORM_ROLE = keccak256("PLATFORM_ROLE");
    bytes32 public constant PERMISSION_TYPEHASH = keccak256(
        "Permission(bytes32 queryHash,address host,uint256 modelId,uint256 nonce,uint64 expiry,uint64 issuedBlock)"
    );

    /// @notice σ(q): the platform's permission for `host` to serve query `queryHash` of `modelId`.
    struct Permission {
        bytes32 queryHash; // keccak256 of the query's UTF-8 bytes
        address host;
        uint256 modelId;
        uint256 nonce;
        uint64 expiry;
        uint64 issuedBlock; // the chain head when the platform signed; Claims accepts σ only from before the commit block
    }

    /// @notice A posted usage batch.
    struct Batch {
        uint256 modelId;
        address host;
        uint64 count;
        uint64 postedAt;
        bytes32 root; // Merkle root over usageLeaf(permission digest) of the batch's queries
        uint256 feePaid;
        uint64 postedBlock; // Claims accepts a batch as a defence only if posted before the commit block
    }

    IERC20 public immutable token;
    ModelRegistry public immutable registry;
    HostAgreements public immutable agreements;
    /// @notice Lifetime of every permission the platform issues (expiry = issue time + ttl).
    uint64 public immutable permissionTtl;

    mapping(address host => mapping(uint256 nonce => bool)) public nonceUsed;
    /// @notice Queries counted against the licence that started at `licenceStart`.
    mapping(uint256 modelId => mapping(address host => mapping(uint64 licenceStart => uint256))) public queriesUsed;
    uint256 public batchCount;
    mapping(uint256 batchId => Batch) private _batches;

    event PermissionRedeemed(
        bytes32 indexed digest, uint256 indexed modelId, address indexed host, uint256 nonce, uint256 fee
    );
    event UsagePosted(
        uint256 indexed batchId, uint256 indexed modelId, address indexed host, uint64 count, bytes32 root, uint256 fee
    );

    error NotHost(address caller, address host);
    error PermissionExpired(uint64 expiry);
    error InvalidPermissionSignature(address recovered);
    error PermissionAlreadyUsed(address host, uint256 nonce);
    error NotLicensed(uint256 modelId, address host);
    error QueryBudgetExceeded(uint256 modelId, address host, uint256 used, uint256 budget);
    error EmptyBatch();
    error ZeroRoot();
    error UnknownBatch(uint256 batchId);
    error ZeroTtl();

    /// @param admin receives DEFAULT_ADMIN_ROLE (grants and revokes PLATFORM_ROLE).
    constructor(
        IERC20 token_,
        ModelRegistry registry_,
        HostAgreements agreements_,
        uint64 permissionTtl_,
        address admin
    ) EIP712("Loyal OML UsageLedger", "1") {
        if (permissionTtl_ == 0) revert ZeroTtl();
        token = token_;
        registry = registry_;
        agreements = agreements_;
        permissionTtl = permissionTtl_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Redeem one platform permission on-chain (single use) and pay its fee.
    /// @dev Caller must be `p.host` and hold a running licence; needs a LoyalToken approval.
    function redeem(Permission calldata p, bytes calldata signature) external {
        if (msg.sender != p.host) revert NotHost(msg.sender, p.host);
        if (block.timestamp > p.expiry) revert PermissionExpired(p.expiry);
        bytes32 digest = permissionDigest(p);
        address signer = _recover(digest, signature);
        if (!hasRole(PLATFORM_ROLE, signer)) revert InvalidPermissionSignature(signer);
        if (nonceUsed[p.host][p.nonce]) revert PermissionAlreadyUsed(p.host, p.nonce);
        (address community, uint256 fee) = _count(p.modelId, p.host, 1);
        nonceUsed[p.host][p.nonce] = true;
        emit PermissionRedeemed(digest, p.modelId, p.host, p.nonce, fee);
        if (fee != 0) token.safeTransferFrom(p.host, community, fee);
    }

    /// @notice Post a batch of `count` served queries of `modelId` and pay their fees.
    /// @param root Merkle root over `usageLeaf(permissionDigest(p))` of every permission in the batch.
    /// @return batchId id of the batch (ids start at 1).
    function postUsage(uint256 modelId, uint64 count, bytes32 root) external returns (uint256 batchId) {
        if (count == 0) revert EmptyBatch();
        if (root == bytes32(0)) revert ZeroRoot();
        (address community, uint256 fee) = _count(modelId, msg.sender, count);
        batchId = ++batchCount;
        _batches[batchId] = Batch(modelId, msg.sender, count, uint64(block.timestamp), root, fee, uint64(block.number));
        emit UsagePosted(batchId, modelId, msg.sender, count, root, fee);
        if (fee != 0) token.safeTransferFrom(msg.sender, community, fee);
    }

    /// @notice EIP-712 digest of a permission (what the platform signs; the "permission hash").
    function permissionDigest(Permission calldata p) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(PERMISSION_TYPEHASH, p.queryHash, p.host, p.modelId, p.nonce, p.expiry, p.issuedBlock))
        );
    }

    /// @notice Whether `signature` over `p` comes from a current platform key (ignores expiry and use).
    function isPlatformPermission(Permission calldata p, bytes calldata signature) external view returns (bool) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(permissionDigest(p), signature);
        return err == ECDSA.RecoverError.NoError && hasRole(PLATFORM_ROLE, signer);
    }

    /// @notice Whether the permission digest `digest` is committed in batch `batchId`.
    function isInBatch(uint256 batchId, bytes32 digest, bytes32[] calldata proof) external view returns (bool) {
        return MerkleProof.verifyCalldata(proof, batch(batchId).root, usageLeaf(digest));
    }

    /// @notice A posted batch; reverts for an unknown id.
    function batch(uint256 batchId) public view returns (Batch memory b) {
        b = _batches[batchId];
        if (b.postedAt == 0) revert UnknownBatch(batchId);
    }

    /// @notice Leaf of a permission digest in a usage root (OpenZeppelin StandardMerkleTree double hash).
    function usageLeaf(bytes32 digest) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(digest))));
    }

    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address signer) {
        ECDSA.RecoverError err;
        (signer, err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError) revert InvalidPermissionSignature(address(0));
    }

    /// @dev Checks the licence and budget, counts `n` queries; returns the payee and the fee owed.
    function _count(uint256 modelId, address host, uint64 n) private returns (address community, uint256 fee) {
        HostAgreements.Licence memory l = agreements.licenceOf(modelId, host);
        if (block.timestamp >= l.endsAt) revert NotLicensed(modelId, host);
        uint256 used = queriesUsed[modelId][host][l.startsAt] + n;
        if (l.queryBudget != 0 && used > l.queryBudget) {
            revert QueryBudgetExceeded(modelId, host, used, l.queryBudget);
        }
        queriesUsed[modelId][host][l.startsAt] = used;
        ModelRegistry.Model memory m = registry.model(modelId);
        return (m.community, m.feePerQuery * n);
    }
}
