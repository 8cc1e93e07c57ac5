// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test, Vm} from "../utils/Test.sol";
import {LoyalToken} from "../../contracts/core/LoyalToken.sol";
import {Staking} from "../../contracts/core/Staking.sol";
import {ModelRegistry} from "../../contracts/oml/ModelRegistry.sol";
import {HostAgreements} from "../../contracts/oml/HostAgreements.sol";
import {UsageLedger} from "../../contracts/oml/UsageLedger.sol";
import {Claims} from "../../contracts/oml/Claims.sol";
import {HostAnswers} from "../../contracts/oml/HostAnswers.sol";
import {FingerprintFixture} from "./FingerprintFixture.sol";

/// @notice The whole OML suite deployed from source, one model registered with the Python-built
/// fingerprint root, two staked hosts that signed its licence, three staked verifiers, a prover.
abstract contract OmlBase is Test {
    LoyalToken token;
    Staking staking;
    ModelRegistry registry;
    HostAgreements agreements;
    UsageLedger usage;
    Claims claims;

    address admin = address(0xA11CE);
    address community = address(0xC0FFEE);
    address prover = address(0xF00D);
    uint256 platformKey = 0xB1A7F0;
    uint256 hostKey = 0x4057A;
    uint256 host2Key = 0x4057B;
    address platform;
    address host;
    address host2;
    address[3] verifiers = [address(0xE1), address(0xE2), address(0xE3)];
    uint256 modelId;

    uint256 constant FEE = 1 ether;
    uint256 constant STAKE = 100 ether;
    uint64 constant PERIOD = 30 days;
    uint64 constant BUDGET = 1_000;
    uint64 constant TTL = 1 hours;
    uint256 constant BOND = 10 ether;
    uint256 constant VSTAKE = 50 ether;
    uint64 constant REVEAL = 1 days;
    uint64 constant CHALLENGE = 1 days;
    uint64 constant VOTING = 1 days;
    uint16 constant SHARE_BPS = 2_000;
    uint16 constant VSHARE_BPS = 600;
    uint256 constant PENALTY = 5 ether;
    string constant CID = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am";

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        vm.roll(100);
        platform = vm.addr(platformKey);
        host = vm.addr(hostKey);
        host2 = vm.addr(host2Key);
        token = new LoyalToken(admin, 0);
        staking = new Staking(token, 7 days, admin);
        registry = new ModelRegistry();
        agreements = new HostAgreements(registry, staking);
        usage = new UsageLedger(token, registry, agreements, TTL, admin);
        claims = new Claims(
            token,
            staking,
            registry,
            agreements,
            usage,
            [BOND, VSTAKE, PENALTY],
            [REVEAL, CHALLENGE, VOTING],
            [SHARE_BPS, VSHARE_BPS]
        );
        vm.startPrank(admin);
        staking.grantRole(staking.MODULE_ROLE(), address(claims));
        staking.grantRole(staking.LOCKER_ROLE(), address(agreements));
        staking.grantRole(staking.LOCKER_ROLE(), address(claims));
        usage.grantRole(usage.PLATFORM_ROLE(), platform);
        token.mint(host, 1_000 ether);
        token.mint(host2, 1_000 ether);
        token.mint(prover, 1_000 ether);
        for (uint256 i; i < 3; ++i) {
            token.mint(verifiers[i], 1_000 ether);
        }
        vm.stopPrank();

        _approveAndStake(host, STAKE);
        _approveAndStake(host2, STAKE);
        for (uint256 i; i < 3; ++i) {
            _approveAndStake(verifiers[i], VSTAKE);
            vm.prank(verifiers[i]);
            claims.registerVerifier();
        }
        vm.prank(prover);
        token.approve(address(claims), type(uint256).max);

        vm.prank(community);
        modelId = registry.registerModel(CID, FingerprintFixture.ROOT, FEE, STAKE, PERIOD, BUDGET);
        _signAgreement(hostKey, modelId);
        _signAgreement(host2Key, modelId);
        vm.roll(block.number + 1);
        vm.warp(block.timestamp + 12);
    }

    function _approveAndStake(address who, uint256 amount) internal {
        vm.startPrank(who);
        token.approve(address(staking), type(uint256).max);
        token.approve(address(usage), type(uint256).max);
        staking.stake(amount);
        vm.stopPrank();
    }

    function _agreement(address who, uint256 id) internal view returns (HostAgreements.Agreement memory a) {
        ModelRegistry.Model memory m = registry.model(id);
        a = HostAgreements.Agreement({
            modelId: id,
            host: who,
            feePerQuery: m.feePerQuery,
            stakeRequired: m.stakeRequired,
            licencePeriod: m.licencePeriod,
            queryBudget: m.queryBudget,
            nonce: agreements.nonces(who),
            deadline: block.timestamp + 1 hours
        });
    }

    function _sig(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _signAgreement(uint256 key, uint256 id) internal {
        HostAgreements.Agreement memory a = _agreement(vm.addr(key), id);
        agreements.sign(a, _sig(key, agreements.agreementDigest(a)));
    }

    function _permission(string memory query, address who, uint256 nonce)
        internal
        view
        returns (UsageLedger.Permission memory p)
    {
        p = UsageLedger.Permission({
            queryHash: keccak256(bytes(query)),
            host: who,
            modelId: modelId,
            nonce: nonce,
            expiry: uint64(block.timestamp) + TTL,
            issuedBlock: uint64(block.number)
        });
    }

    function _platformSig(UsageLedger.Permission memory p) internal view returns (bytes memory) {
        return _sig(platformKey, usage.permissionDigest(p));
    }

    function _keyOf(address who) internal view returns (uint256) {
        return who == host ? hostKey : host2Key;
    }

    /// @dev The answer `who` signs when it serves `completion` for `prompt` (no permission named).
    function _answer(string memory prompt, string memory completion, address who)
        internal
        view
        returns (HostAnswers.Answer memory)
    {
        return HostAnswers.Answer({
            modelId: modelId,
            host: who,
            licenceStart: agreements.licenceOf(modelId, who).startsAt,
            promptHash: keccak256(bytes(prompt)),
            completionHash: keccak256(bytes(completion)),
            permissionDigest: bytes32(0),
            time: uint64(block.timestamp)
        });
    }

    function _answerSig(HostAnswers.Answer memory a, uint256 signerKey) internal view returns (bytes memory) {
        return _sig(signerKey, claims.answers().answerDigest(a));
    }

    /// @dev The reveal of fingerprint `i` against `target`, with `target`'s signed answer (the
    /// response followed by more text).
    function _signedReveal(uint256 i, address target, bytes32 salt)
        internal
        view
        returns (Claims.SignedReveal memory r)
    {
        (string memory key, string memory response, bytes32[] memory proof) = FingerprintFixture.pair(i);
        string memory completion = string.concat(response, " and so on");
        HostAnswers.Answer memory a = _answer(key, completion, target);
        r = Claims.SignedReveal({
            modelId: modelId,
            host: target,
            key: key,
            response: response,
            salt: salt,
            proof: proof,
            answer: a,
            completion: completion,
            signature: _answerSig(a, _keyOf(target))
        });
    }

    function _commitFor(Claims.SignedReveal memory r) internal {
        bytes32 c = claims.claimCommitment(r.key, r.response, r.host, r.salt);
        vm.prank(prover);
        claims.commit(c);
    }

    /// @dev Commit, advance one block, reveal fingerprint `i` against `target`; returns the claim id.
    function _claimFingerprint(uint256 i, address target) internal returns (uint256 claimId) {
        Claims.SignedReveal memory r = _signedReveal(i, target, keccak256(abi.encode("salt", i, target)));
        vm.roll(block.number + 1); // the prover commits in a later block than the query it was served
        _commitFor(r);
        vm.roll(block.number + 1);
        vm.warp(block.timestamp + 12);
        vm.prank(prover);
        claimId = claims.reveal(r);
    }

    function _voteAll(uint256 claimId, bool confirm) internal {
        for (uint256 i; i < 3; ++i) {
            vm.prank(verifiers[i]);
            claims.vote(claimId, confirm);
        }
    }
}
