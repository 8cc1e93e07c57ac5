// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OmlBase} from "./OmlBase.sol";
import {UsageLedger} from "../../contracts/oml/UsageLedger.sol";

contract UsageLedgerTest is OmlBase {

    function test_redeem_paysCommunityAndCounts() public {
        UsageLedger.Permission memory p = _permission("hello", host, 7);
        bytes memory sig = _platformSig(p);
        bytes32 digest = usage.permissionDigest(p);
        vm.expectEmit(true, true, true, true, address(usage));
        emit UsageLedger.PermissionRedeemed(digest, modelId, host, 7, FEE);
        vm.prank(host);
        usage.redeem(p, sig);
        assertEq(token.balanceOf(community), FEE, "fee to community");
        assertTrue(usage.nonceUsed(host, 7), "nonce spent");
        assertTrue(usage.isPlatformPermission(p, sig), "platform permission");
    }

    function test_redeem_signatureReplayReverts() public {
        UsageLedger.Permission memory p = _permission("hello", host, 7);
        bytes memory sig = _platformSig(p);
        vm.startPrank(host);
        usage.redeem(p, sig);
        vm.expectRevert(abi.encodeWithSelector(UsageLedger.PermissionAlreadyUsed.selector, host, 7));
        usage.redeem(p, sig);
        vm.stopPrank();
        assertEq(token.balanceOf(community), FEE, "paid once");
    }

    function test_redeem_wrongChainIdReverts() public {
        UsageLedger.Permission memory p = _permission("hello", host, 1);
        uint256 chain = block.chainid;
        vm.chainId(chain + 1);
        bytes memory sig = _platformSig(p);
        assertTrue(usage.isPlatformPermission(p, sig), "valid on the other chain");
        vm.chainId(chain);
        assertTrue(!usage.isPlatformPermission(p, sig), "not on this chain");
        vm.expectRevert(); // recovers some unrelated address
        vm.prank(host);
        usage.redeem(p, sig);
        assertTrue(!usage.nonceUsed(host, 1), "nothing written");
    }

    function test_redeem_expiredReverts() public {
        UsageLedger.Permission memory p = _permission("hello", host, 1);
        bytes memory sig = _platformSig(p);
        vm.warp(p.expiry + 1);
        vm.expectRevert(abi.encodeWithSelector(UsageLedger.PermissionExpired.selector, p.expiry));
        vm.prank(host);
        usage.redeem(p, sig);
    }

    function test_redeem_nonPlatformSignerReverts() public {
        UsageLedger.Permission memory p = _permission("hello", host, 1);
        bytes memory sig = _sig(hostKey, usage.permissionDigest(p)); // host signs its own permission
        vm.expectRevert(abi.encodeWithSelector(UsageLedger.InvalidPermissionSignature.selector, host));
        vm.prank(host);
        usage.redeem(p, sig);
    }

    function test_redeem_otherHostCannotUsePermission() public {
        UsageLedger.Permission memory p = _permission("hello", host, 1);
        bytes memory sig = _platformSig(p);
        vm.expectRevert(abi.encodeWithSelector(UsageLedger.NotHost.selector, host2, host));
        vm.prank(host2);
        usage.redeem(p, sig);
        p.host = host2; // re-addressed: the signature no longer matches
        vm.expectRevert();
        vm.prank(host2);
        usage.redeem(p, sig);
    }

    function testFuzz_redeem_tamperedFieldRejected(uint8 field, uint256 delta) public view {
        delta = bound(delta, 1, type(uint64).max);
        UsageLedger.Permission memory p = _permission("hello", host, 5);
        bytes memory sig = _platformSig(p);
        field = field % 3;
        if (field == 0) p.queryHash = bytes32(uint256(p.queryHash) ^ delta);
        else if (field == 1) p.nonce = p.nonce + delta;
        else p.modelId = p.modelId + delta;
        assertTrue(!usage.isPlatformPermission(p, sig), "tampered permission is not the platform's");
    }

    function testFuzz_redeem_replayAlwaysReverts(uint256 nonce) public {
        UsageLedger.Permission memory p = _permission("q", host, nonce);
        bytes memory sig = _platformSig(p);
        vm.startPrank(host);
        usage.redeem(p, sig);
        vm.expectRevert(abi.encodeWithSelector(UsageLedger.PermissionAlreadyUsed.selector, host, nonce));
        usage.redeem(p, sig);
        vm.stopPrank();
    }

    function test_postUsage_recordsBatchAndProvesInclusion() public {
        UsageLedger.Permission memory p1 = _permission("a", host, 1);
        UsageLedger.Permission memory p2 = _permission("b", host, 2);
        bytes32 l1 = usage.usageLeaf(usage.permissionDigest(p1));
        bytes32 l2 = usage.usageLeaf(usage.permissionDigest(p2));
        bytes32 root = l1 < l2 ? keccak256(abi.encode(l1, l2)) : keccak256(abi.encode(l2, l1));
        vm.prank(host);
        uint256 batchId = usage.postUsage(modelId, 2, root);
        assertEq(token.balanceOf(community), 2 * FEE, "fees paid");
        UsageLedger.Batch memory b = usage.batch(batchId);
        assertEq(b.count, 2, "count");
        assertEq(b.host, host, "host");
        bytes32[] memory proof = new bytes32[](1);
        proof[0] = l2;
        assertTrue(usage.isInBatch(batchId, usage.permissionDigest(p1), proof), "p1 in batch");
        proof[0] = l1;
        assertTrue(!usage.isInBatch(batchId, usage.permissionDigest(_permission("c", host, 3)), proof), "c not");
    }

    function testFuzz_postUsage_feesAndBudget(uint64 count) public {
        count = uint64(bound(count, 1, BUDGET));
        vm.prank(admin);
        token.mint(host, BUDGET * FEE);
        vm.prank(host);
        usage.postUsage(modelId, count, bytes32(uint256(1)));
        assertEq(token.balanceOf(community), count * FEE, "fee = count * feePerQuery");
        uint64 over = BUDGET - count + 1;
        vm.expectRevert(
            abi.encodeWithSelector(UsageLedger.QueryBudgetExceeded.selector, modelId, host, BUDGET + 1, BUDGET)
        );
        vm.prank(host);
        usage.postUsage(modelId, over, bytes32(uint256(1)));
    }

    function test_postUsage_rejectsBadInputAndUnlicensed() public {
        vm.startPrank(host);
        vm.expectRevert(UsageLedger.EmptyBatch.selector);
        usage.postUsage(modelId, 0, bytes32(uint256(1)));
        vm.expectRevert(UsageLedger.ZeroRoot.selector);
        usage.postUsage(modelId, 1, bytes32(0));
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(UsageLedger.NotLicensed.selector, modelId, address(this)));
        usage.postUsage(modelId, 1, bytes32(uint256(1)));
        vm.warp(block.timestamp + PERIOD);
        vm.expectRevert(abi.encodeWithSelector(UsageLedger.NotLicensed.selector, modelId, host));
        vm.prank(host);
        usage.postUsage(modelId, 1, bytes32(uint256(1)));
        assertEq(usage.batchCount(), 0, "no batch written");
    }
}
