// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title ModelRegistry
/// @notice Communities register OMLized models here: where the weights live (content id), the
/// Merkle root committing to the model's secret fingerprints, and the licence terms hosts sign.
/// @dev One registry for every model (singleton). Fingerprints stay off-chain; only the root is
/// public. A leaf is `keccak256(bytes.concat(keccak256(abi.encode(keccak256(key), keccak256(response)))))`
/// with sorted-pair inner hashing, exactly the tree built by `ml/oml/commitment.py`.
contract ModelRegistry {
    /// @notice Licence terms and commitment of one model.
    struct Model {
        address community; // owner of the model, receives fees and slashed stake
        bytes32 fingerprintRoot; // Merkle root over every fingerprint pair of the model
        uint256 feePerQuery; // LoyalToken (wei) a host pays the community per served query
        uint256 stakeRequired; // active stake a host must hold in Staking to sign the licence
        uint64 licencePeriod; // seconds an agreement lasts (> 0); a host re-signs after it ends
        uint64 queryBudget; // queries one agreement covers; 0 = no query limit
        string modelCid; // content id of the OMLized weights
    }

    uint256 public modelCount;
    mapping(uint256 modelId => Model) private _models;
    /// @notice Optional root over the fingerprint subset shipped to one host, so a leak is traceable.
    mapping(uint256 modelId => mapping(address host => bytes32)) public hostSubsetRoot;

    event ModelRegistered(
        uint256 indexed modelId,
        address indexed community,
        string modelCid,
        bytes32 fingerprintRoot,
        uint256 feePerQuery,
        uint256 stakeRequired,
        uint64 licencePeriod,
        uint64 queryBudget
    );
    event HostSubsetRootSet(uint256 indexed modelId, address indexed host, bytes32 root);

    error EmptyModelCid();
    error ZeroRoot();
    error ZeroLicencePeriod();
    error UnknownModel(uint256 modelId);
    error NotCommunity(uint256 modelId, address caller);
    error ZeroAddress();

    /// @notice Register a model; the caller becomes its community (owner and payee).
    /// @param modelCid content id of the OMLized weights.
    /// @param fingerprintRoot Merkle root of all fingerprint pairs (see contract docs for the leaf).
    /// @param feePerQuery fee per served query, in LoyalToken wei (may be 0 for a free licence).
    /// @param stakeRequired active stake a host must hold to sign (and that a proven leak can slash).
    /// @param licencePeriod agreement length in seconds (must be > 0; hosts re-sign to renew).
    /// @param queryBudget queries one agreement covers (0 = unlimited within the period).
    /// @return modelId id of the new model (ids start at 1).
    function registerModel(
        string calldata modelCid,
        bytes32 fingerprintRoot,
        uint256 feePerQuery,
        uint256 stakeRequired,
        uint64 licencePeriod,
        uint64 queryBudget
    ) external returns (uint256 modelId) {
        if (bytes(modelCid).length == 0) revert EmptyModelCid();
        if (fingerprintRoot == bytes32(0)) revert ZeroRoot();
        if (licencePeriod == 0) revert ZeroLicencePeriod();
        modelId = ++modelCount;
        _models[modelId] = Model({
            community: msg.sender,
            fingerprintRoot: fingerprintRoot,
            feePerQuery: feePerQuery,
            stakeRequired: stakeRequired,
            licencePeriod: licencePeriod,
            queryBudget: queryBudget,
            modelCid: modelCid
        });
        emit ModelRegistered(
            modelId, msg.sender, modelCid, fingerprintRoot, feePerQuery, stakeRequired, licencePeriod, queryBudget
        );
    }

    /// @notice Record the root of the fingerprint subset embedded in `host`'s copy of the model.
    /// @dev Only the model's community. Every pair of the subset must also be in the model root.
    function setHostSubsetRoot(uint256 modelId, address host, bytes32 root) external {
        Model storage m = _model(modelId);
        if (msg.sender != m.community) revert NotCommunity(modelId, msg.sender);
        if (host == address(0)) revert ZeroAddress();
        if (root == bytes32(0)) revert ZeroRoot();
        hostSubsetRoot[modelId][host] = root;
        emit HostSubsetRootSet(modelId, host, root);
    }

    /// @notice Full record of a model; reverts for an unknown id.
    function model(uint256 modelId) external view returns (Model memory) {
        return _model(modelId);
    }

    /// @notice Whether (key, response) is a fingerprint committed in the model's root.
    function isFingerprint(uint256 modelId, string calldata key, string calldata response, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        return MerkleProof.verifyCalldata(proof, _model(modelId).fingerprintRoot, fingerprintLeaf(key, response));
    }

    /// @notice Whether (key, response) belongs to the subset shipped to `host` (leak tracing).
    function isHostSubsetFingerprint(
        uint256 modelId,
        address host,
        string calldata key,
        string calldata response,
        bytes32[] calldata proof
    ) external view returns (bool) {
        _model(modelId);
        bytes32 root = hostSubsetRoot[modelId][host];
        return root != bytes32(0) && MerkleProof.verifyCalldata(proof, root, fingerprintLeaf(key, response));
    }

    /// @notice The Merkle leaf of one fingerprint pair (OpenZeppelin StandardMerkleTree double hash).
    function fingerprintLeaf(string calldata key, string calldata response) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(keccak256(bytes(key)), keccak256(bytes(response))))));
    }

    function _model(uint256 modelId) private view returns (Model storage m) {
        m = _models[modelId];
        if (m.community == address(0)) revert UnknownModel(modelId);
    }
}
