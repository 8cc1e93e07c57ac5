// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OmlBase} from "./OmlBase.sol";
import {ModelRegistry} from "../../contracts/oml/ModelRegistry.sol";
import {FingerprintFixture} from "./FingerprintFixture.sol";

contract ModelRegistryTest is OmlBase {

    function test_register_storesTermsAndEmits() public {
        vm.expectEmit(true, true, false, true, address(registry));
        emit ModelRegistry.ModelRegistered(2, address(0xBEEF), "cid2", bytes32(uint256(7)), 3, 4, 5, 0);
        vm.prank(address(0xBEEF));
        uint256 id = registry.registerModel("cid2", bytes32(uint256(7)), 3, 4, 5, 0);
        assertEq(id, 2, "second model id");
        ModelRegistry.Model memory m = registry.model(id);
        assertEq(m.community, address(0xBEEF), "community is the caller");
        assertEq(m.fingerprintRoot, bytes32(uint256(7)), "root");
        assertEq(m.feePerQuery, 3, "fee");
        assertEq(m.stakeRequired, 4, "stake");
        assertEq(m.licencePeriod, 5, "period");
        assertEq(registry.modelCount(), 2, "count");
    }

    function test_register_rejectsBadInput() public {
        vm.expectRevert(ModelRegistry.EmptyModelCid.selector);
        registry.registerModel("", bytes32(uint256(1)), 1, 1, 1, 1);
        vm.expectRevert(ModelRegistry.ZeroRoot.selector);
        registry.registerModel("cid", bytes32(0), 1, 1, 1, 1);
        vm.expectRevert(ModelRegistry.ZeroLicencePeriod.selector);
        registry.registerModel("cid", bytes32(uint256(1)), 1, 1, 0, 1);
        assertEq(registry.modelCount(), 1, "nothing registered");
    }

    function test_unknownModelReverts() public {
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownModel.selector, 9));
        registry.model(9);
    }

    /// @dev The on-chain check accepts exactly the proofs Python's FingerprintTree produces.
    function test_pythonFingerprintProofsVerifyOnChain() public view {
        for (uint256 i; i < FingerprintFixture.COUNT; ++i) {
            (string memory key, string memory response, bytes32[] memory proof) = FingerprintFixture.pair(i);
            assertTrue(registry.isFingerprint(modelId, key, response, proof), "python proof verifies");
            assertTrue(!registry.isFingerprint(modelId, key, string.concat(response, "."), proof), "altered response");
        }
    }

    function testFuzz_isFingerprint_rejectsForeignPairs(string calldata key, string calldata response) public view {
        (string memory k0, string memory r0, bytes32[] memory proof) = FingerprintFixture.pair(0);
        vm.assume(keccak256(bytes(key)) != keccak256(bytes(k0)) || keccak256(bytes(response)) != keccak256(bytes(r0)));
        assertTrue(!registry.isFingerprint(modelId, key, response, proof), "foreign pair rejected");
    }

    function test_hostSubsetRoot_tracesLeakToHost() public {
        (string memory key, string memory response,) = FingerprintFixture.pair(2);
        bytes32 subsetRoot = registry.fingerprintLeaf(key, response); // a one-pair subset
        vm.prank(community);
        registry.setHostSubsetRoot(modelId, host, subsetRoot);
        bytes32[] memory none = new bytes32[](0);
        assertTrue(registry.isHostSubsetFingerprint(modelId, host, key, response, none), "host's subset");
        assertTrue(!registry.isHostSubsetFingerprint(modelId, host2, key, response, none), "not host2's subset");
    }

    function test_hostSubsetRoot_onlyCommunity() public {
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.NotCommunity.selector, modelId, host));
        vm.prank(host);
        registry.setHostSubsetRoot(modelId, host, bytes32(uint256(1)));
    }
}
