// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OmlBase} from "./OmlBase.sol";
import {HostAgreements} from "../../contracts/oml/HostAgreements.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {Staking} from "../../contracts/core/Staking.sol";

contract HostAgreementsTest is OmlBase {
    uint256 newHostKey = 0x4057C;
    address newHost;



    function setUp() public override {
        super.setUp();
        newHost = vm.addr(newHostKey);
        vm.prank(admin);
        token.mint(newHost, 1_000 ether);
        _approveAndStake(newHost, STAKE);
    }

    function test_sign_recordsLicenceAndEmits() public {
        HostAgreements.Agreement memory a = _agreement(newHost, modelId);
        bytes memory sig = _sig(newHostKey, agreements.agreementDigest(a));
        uint64 t = uint64(block.timestamp);
        vm.expectEmit(true, true, false, true, address(agreements));
        emit HostAgreements.AgreementSigned(modelId, newHost, t, t + PERIOD, BUDGET, 0);
        vm.prank(address(0x5E1A7)); // any relayer may submit
        agreements.sign(a, sig);
        HostAgreements.Licence memory l = agreements.licenceOf(modelId, newHost);
        assertEq(l.endsAt, t + PERIOD, "ends after period");
        assertEq(l.queryBudget, BUDGET, "budget");
        assertTrue(agreements.isLicensed(modelId, newHost), "licensed");
        assertEq(agreements.nonces(newHost), 1, "nonce used");
    }

    function test_sign_signatureReplayAfterExpiryReverts() public {
        HostAgreements.Agreement memory a = _agreement(newHost, modelId);
        a.deadline = block.timestamp + 365 days;
        bytes memory sig = _sig(newHostKey, agreements.agreementDigest(a));
        agreements.sign(a, sig);
        vm.expectRevert(
            abi.encodeWithSelector(HostAgreements.LicenceStillActive.selector, modelId, newHost, block.timestamp + PERIOD)
        );
        agreements.sign(a, sig);
        vm.warp(block.timestamp + PERIOD);
        assertTrue(!agreements.isLicensed(modelId, newHost), "expired");
        vm.expectRevert(abi.encodeWithSelector(Nonces.InvalidAccountNonce.selector, newHost, 1));
        agreements.sign(a, sig);
        _signAgreement(newHostKey, modelId); // a fresh signature renews
        assertTrue(agreements.isLicensed(modelId, newHost), "renewed");
    }

    function test_sign_wrongSignerReverts() public {
        HostAgreements.Agreement memory a = _agreement(newHost, modelId);
        bytes memory sig = _sig(hostKey, agreements.agreementDigest(a));
        vm.expectRevert(abi.encodeWithSelector(HostAgreements.InvalidHostSignature.selector, newHost));
        agreements.sign(a, sig);
    }

    function test_sign_wrongChainIdReverts() public {
        HostAgreements.Agreement memory a = _agreement(newHost, modelId);
        uint256 chain = block.chainid;
        vm.chainId(chain + 1);
        bytes memory sig = _sig(newHostKey, agreements.agreementDigest(a));
        vm.chainId(chain);
        vm.expectRevert(abi.encodeWithSelector(HostAgreements.InvalidHostSignature.selector, newHost));
        agreements.sign(a, sig);
    }

    function test_sign_termsMismatchReverts() public {
        HostAgreements.Agreement memory a = _agreement(newHost, modelId);
        a.feePerQuery = FEE - 1;
        bytes memory sig = _sig(newHostKey, agreements.agreementDigest(a));
        vm.expectRevert(abi.encodeWithSelector(HostAgreements.TermsMismatch.selector, modelId));
        agreements.sign(a, sig);
    }

    function test_sign_expiredDeadlineReverts() public {
        HostAgreements.Agreement memory a = _agreement(newHost, modelId);
        bytes memory sig = _sig(newHostKey, agreements.agreementDigest(a));
        vm.warp(a.deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(HostAgreements.SignatureExpired.selector, a.deadline));
        agreements.sign(a, sig);
    }

    function testFuzz_sign_needsStake(uint256 staked) public {
        staked = bound(staked, 1, STAKE - 1);
        uint256 k = 0x4057D;
        address h = vm.addr(k);
        vm.prank(admin);
        token.mint(h, staked);
        _approveAndStake(h, staked);
        HostAgreements.Agreement memory a = _agreement(h, modelId);
        bytes memory sig = _sig(k, agreements.agreementDigest(a));
        vm.expectRevert(abi.encodeWithSelector(HostAgreements.InsufficientHostStake.selector, h, STAKE, staked));
        agreements.sign(a, sig);
        assertTrue(!agreements.hasSigned(modelId, h), "no licence written");
    }

    function test_licenceLocksStake_untilReleasedAfterEnd() public {
        assertEq(staking.lockedOf(host), STAKE, "signing locked the required stake");
        assertEq(agreements.lockedStake(modelId, host), STAKE, "recorded per licence");
        vm.expectRevert(abi.encodeWithSelector(Staking.StakeIsLocked.selector, host, 1, 0));
        vm.prank(host);
        staking.requestUnstake(1);
        uint64 endsAt = agreements.licenceOf(modelId, host).endsAt;
        vm.expectRevert(abi.encodeWithSelector(HostAgreements.LicenceStillActive.selector, modelId, host, endsAt));
        agreements.release(modelId, host);
        vm.warp(endsAt);
        vm.expectEmit(true, true, false, true, address(agreements));
        emit HostAgreements.StakeReleased(modelId, host, STAKE);
        agreements.release(modelId, host);
        assertEq(staking.lockedOf(host), 0, "unlocked");
        vm.expectRevert(abi.encodeWithSelector(HostAgreements.NothingLocked.selector, modelId, host));
        agreements.release(modelId, host);
        vm.prank(host);
        staking.requestUnstake(STAKE);
        assertEq(staking.stakeOf(host), 0, "free to leave after the licence");
    }

    function test_renewal_movesTheLock() public {
        vm.warp(agreements.licenceOf(modelId, host).endsAt);
        _signAgreement(hostKey, modelId); // renew without releasing first
        assertEq(staking.lockedOf(host), STAKE, "one lock, not two");
        assertEq(agreements.lockedStake(modelId, host), STAKE, "recorded");
    }

    function test_secondLicenceNeedsItsOwnStake() public {
        vm.prank(community);
        uint256 other = registry.registerModel(CID, bytes32(uint256(1)), FEE, STAKE, PERIOD, BUDGET);
        HostAgreements.Agreement memory a = _agreement(host, other);
        bytes memory sig = _sig(hostKey, agreements.agreementDigest(a));
        vm.expectRevert(abi.encodeWithSelector(HostAgreements.InsufficientHostStake.selector, host, STAKE, 0));
        agreements.sign(a, sig);
        vm.prank(host);
        staking.stake(STAKE);
        agreements.sign(a, sig);
        assertEq(staking.lockedOf(host), 2 * STAKE, "two licences, two locks");
    }

    function test_slashedHostCannotRenewWithoutRestaking() public {
        bytes32 role = staking.MODULE_ROLE();
        vm.prank(admin);
        staking.grantRole(role, admin);
        vm.prank(admin);
        staking.slash(host, STAKE, "test");
        vm.warp(agreements.licenceOf(modelId, host).endsAt);
        HostAgreements.Agreement memory a = _agreement(host, modelId);
        bytes memory sig = _sig(hostKey, agreements.agreementDigest(a));
        vm.expectRevert(abi.encodeWithSelector(HostAgreements.InsufficientHostStake.selector, host, STAKE, 0));
        agreements.sign(a, sig);
    }
}
