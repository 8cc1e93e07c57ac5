// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {Staking} from "../core/Staking.sol";

/// @title HostAgreements
/// @notice A host that wants to serve an OMLized model signs its licence terms as EIP-712 typed
/// data while holding the required stake in `Staking`; the signed agreement is recorded here.
/// @dev Anyone may submit the host's signature (the platform usually relays it). The signature
/// covers the terms as registered, so a community cannot change them under a host; the host's
/// nonce makes each signature usable once. Hosts may be contracts (ERC-1271) via SignatureChecker.
/// Signing locks `stakeRequired` of the host's stake in `Staking` (needs Staking.LOCKER_ROLE), so
/// the host cannot request it out while the licence runs; each licence is backed by its own stake.
/// After the licence ends anyone may `release` the lock (a renewal releases the old lock itself).
contract HostAgreements is EIP712, Nonces {
    /// @notice The typed data a host signs.
    struct Agreement {
        uint256 modelId;
        address host;
        uint256 feePerQuery;
        uint256 stakeRequired;
        uint64 licencePeriod;
        uint64 queryBudget;
        uint256 nonce;
        uint256 deadline; // last timestamp the signature may be submitted
    }

    /// @notice A recorded agreement.
    struct Licence {
        uint64 startsAt;
        uint64 endsAt;
        uint64 queryBudget; // 0 = no query limit
    }

    bytes32 public constant AGREEMENT_TYPEHASH = keccak256(
        "Agreement(uint256 modelId,address host,uint256 feePerQuery,uint256 stakeRequired,uint64 licencePeriod,uint64 queryBudget,uint256 nonce,uint256 deadline)"
    );

    ModelRegistry public immutable registry;
    Staking public immutable staking;

    mapping(uint256 modelId => mapping(address host => Licence)) private _licences;
    /// @notice Stake locked in `Staking` for the host's current or last licence of a model.
    mapping(uint256 modelId => mapping(address host => uint256)) public lockedStake;

    event AgreementSigned(
        uint256 indexed modelId, address indexed host, uint64 startsAt, uint64 endsAt, uint64 queryBudget, uint256 nonce
    );

    error SignatureExpired(uint256 deadline);
    error TermsMismatch(uint256 modelId);
    error InvalidHostSignature(address host);
    error InsufficientHostStake(address host, uint256 required, uint256 active);
    error LicenceStillActive(uint256 modelId, address host, uint64 endsAt);
    error NothingLocked(uint256 modelId, address host);

    event StakeReleased(uint256 indexed modelId, address indexed host, uint256 amount);

    constructor(ModelRegistry registry_, Staking staking_) EIP712("Loyal OML HostAgreements", "1") {
        registry = registry_;
        staking = staking_;
    }

    /// @notice Record `a`, signed by `a.host`, as the host's licence for `a.modelId`.
    /// @dev Reverts if the terms differ from the registry, the signature is invalid or past its
    /// deadline, the nonce is not the host's next one, the host lacks the stake, or an earlier
    /// licence of the host for this model is still running (renew only after it ends).
    /// Locks `stakeRequired` of the host's stake until the licence ends; the host needs that much
    /// active stake not locked by other licences (InsufficientHostStake otherwise).
    function sign(Agreement calldata a, bytes calldata signature) external {
        if (block.timestamp > a.deadline) revert SignatureExpired(a.deadline);
        ModelRegistry.Model memory m = registry.model(a.modelId);
        if (
            a.feePerQuery != m.feePerQuery || a.stakeRequired != m.stakeRequired || a.licencePeriod != m.licencePeriod
                || a.queryBudget != m.queryBudget
        ) revert TermsMismatch(a.modelId);
        if (!SignatureChecker.isValidSignatureNow(a.host, agreementDigest(a), signature)) {
            revert InvalidHostSignature(a.host);
        }
        Licence storage l = _licences[a.modelId][a.host];
        if (block.timestamp < l.endsAt) revert LicenceStillActive(a.modelId, a.host, l.endsAt);
        uint256 old = _checkFreeStake(a.modelId, a.host, m.stakeRequired);
        _useCheckedNonce(a.host, a.nonce);
        uint64 startsAt = uint64(block.timestamp);
        uint64 endsAt = startsAt + m.licencePeriod;
        _licences[a.modelId][a.host] = Licence(startsAt, endsAt, m.queryBudget);
        lockedStake[a.modelId][a.host] = m.stakeRequired;
        emit AgreementSigned(a.modelId, a.host, startsAt, endsAt, m.queryBudget, a.nonce);
        if (old != 0) {
            emit StakeReleased(a.modelId, a.host, old);
            staking.unlock(a.host, old);
        }
        if (m.stakeRequired != 0) staking.lock(a.host, m.stakeRequired);
    }

    /// @dev The host's active stake not locked by other licences must cover `required` (the old
    /// lock of this licence is released by the caller); returns that old lock.
    function _checkFreeStake(uint256 modelId, address host, uint256 required) private view returns (uint256 old) {
        old = lockedStake[modelId][host];
        uint256 active = staking.stakeOf(host);
        uint256 otherLocks = staking.lockedOf(host) - old;
        uint256 free = active > otherLocks ? active - otherLocks : 0;
        if (free < required) revert InsufficientHostStake(host, required, free);
    }

    /// @notice Release the stake locked for `host`'s licence of `modelId` once that licence has ended.
    /// @dev Anyone may call it; reverts LicenceStillActive before the end, NothingLocked if released.
    function release(uint256 modelId, address host) external {
        Licence storage l = _licences[modelId][host];
        if (block.timestamp < l.endsAt) revert LicenceStillActive(modelId, host, l.endsAt);
        uint256 amount = lockedStake[modelId][host];
        if (amount == 0) revert NothingLocked(modelId, host);
        lockedStake[modelId][host] = 0;
        emit StakeReleased(modelId, host, amount);
        staking.unlock(host, amount);
    }

    /// @notice EIP-712 digest the host signs for `a`.
    function agreementDigest(Agreement calldata a) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    AGREEMENT_TYPEHASH,
                    a.modelId,
                    a.host,
                    a.feePerQuery,
                    a.stakeRequired,
                    a.licencePeriod,
                    a.queryBudget,
                    a.nonce,
                    a.deadline
                )
            )
        );
    }

    /// @notice The recorded licence of `host` for `modelId` (all zero if it never signed).
    function licenceOf(uint256 modelId, address host) external view returns (Licence memory) {
        return _licences[modelId][host];
    }

    /// @notice Whether `host` has signed for `modelId` (now or in the past).
    function hasSigned(uint256 modelId, address host) external view returns (bool) {
        return _licences[modelId][host].startsAt != 0;
    }

    /// @notice Whether `host`'s licence for `modelId` covers the current time.
    function isLicensed(uint256 modelId, address host) external view returns (bool) {
        Licence storage l = _licences[modelId][host];
        return block.timestamp < l.endsAt;
    }
}
