// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test, Vm} from "../utils/Test.sol";
import {LoyalToken} from "../../contracts/core/LoyalToken.sol";
import {Staking} from "../../contracts/core/Staking.sol";
import {TrainingLedger} from "../../contracts/ledger/TrainingLedger.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/// @dev Shared fixture and helpers: build op hashes like an agent does, and Merkle proofs like
/// `common/merkle.py` does (OpenZeppelin's StandardMerkleTree with unsorted leaves, OpMerkle's tree).
abstract contract LedgerBase is Test {
    LoyalToken token;
    Staking staking;
    TrainingLedger ledger;
    uint256 constant EVAL_KEY = 0xE7A1;
    address evaluator;
    address admin = address(0xA11CE);
    address alice = address(0xA);
    address bob = address(0xB);
    address agent = address(0xA6E);
    uint256 base;
    uint256 aliceFork;
    uint256 bobFork;
    /// What each recorded op's hash commits to, kept as an agent keeps it (from its event).
    mapping(uint256 opId => TrainingLedger.OpFields) recorded;
    mapping(uint256 opId => uint256) seqOf;

    function setUp() public virtual {
        token = new LoyalToken(admin, 0);
        staking = new Staking(token, 3 days, admin);
        ledger = new TrainingLedger(token, staking, 1 ether, TrainingLedger.QualityPolicy(100 ether, 1e6, 1 days, 2), admin);
        evaluator = vm.addr(EVAL_KEY);
        vm.startPrank(admin);
        staking.grantRole(staking.MODULE_ROLE(), address(ledger));
        staking.grantRole(staking.LOCKER_ROLE(), address(ledger));
        token.mint(admin, 1_000 ether);
        token.mint(evaluator, 500 ether);
        token.approve(address(ledger), type(uint256).max);
        ledger.fundRewards(100 ether);
        base = ledger.registerBaseModel("bafkreibase", "tiny-gpt2");
        vm.stopPrank();
        _stake(evaluator, 500 ether);
        vm.prank(alice);
        aliceFork = ledger.forkModel(base);
        vm.prank(bob);
        bobFork = ledger.forkModel(base);
    }

    function _cid(string memory kind, uint256 i) internal pure returns (string memory) {
        return string.concat("bafk", kind, vm.toString(i));
    }

    function _opHash(uint256 fork, string memory icid, string memory dcid, bytes32 dc, bytes32 sc)
        internal
        view
        returns (bytes32)
    {
        TrainingLedger.Fork memory f = ledger.getFork(fork);
        return ledger.computeOpHash(fork, uint256(f.opCount) + 1, f.head, icid, dcid, dc, sc);
    }

    /// Record op number `i` on `fork` as `who`; returns the op id.
    function _record(address who, uint256 fork, uint256 i) internal returns (uint256) {
        string memory icid = _cid("int", i);
        string memory dcid = _cid("delta", i);
        bytes32 dc = keccak256(abi.encode("delta", fork, i));
        bytes32 sc = keccak256(abi.encode("state", fork, i));
        bytes32 h = _opHash(fork, icid, dcid, dc, sc);
        TrainingLedger.Fork memory f = ledger.getFork(fork);
        vm.prank(who);
        uint256 opId = ledger.recordTraining(fork, icid, dcid, dc, sc, h);
        recorded[opId] = TrainingLedger.OpFields(f.head, keccak256(bytes(icid)), keccak256(bytes(dcid)), dc, sc);
        seqOf[opId] = uint256(f.opCount) + 1;
        return opId;
    }

    function _leaf(uint256 opId) internal view returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(opId, ledger.opHashOf(opId)))));
    }

    /// The head op's fields of `fork` (for exportModel): the last op recorded on it.
    function _headFields(uint256 fork, uint256 headOpId) internal view returns (TrainingLedger.OpFields memory) {
        assertEq(ledger.opHashOf(headOpId), ledger.getFork(fork).head, "helper: that op is the head");
        return recorded[headOpId];
    }

    /// OpenZeppelin's StandardMerkleTree array over `leaves` kept in order (npm `makeMerkleTree`, written
    /// out independently of OpMerkle): 2n-1 nodes, leaf i at 2n-2-i, node j = H(node 2j+1, node 2j+2).
    function _ozTree(bytes32[] memory leaves) internal pure returns (bytes32[] memory tree) {
        uint256 n = leaves.length;
        tree = new bytes32[](2 * n - 1);
        for (uint256 i = 0; i < n; ++i) tree[tree.length - 1 - i] = leaves[i];
        for (uint256 j = n - 1; j > 0; --j) {
            tree[j - 1] = Hashes.commutativeKeccak256(tree[2 * j - 1], tree[2 * j]);
        }
    }

    /// Sibling list for leaf `idx` of `leaves` in that tree (npm `getProof`).
    function _proof(bytes32[] memory leaves, uint256 idx) internal pure returns (bytes32[] memory) {
        bytes32[] memory tree = _ozTree(leaves);
        bytes32[] memory out = new bytes32[](8);
        uint256 m = 0;
        for (uint256 node = tree.length - 1 - idx; node > 0; node = (node - 1) / 2) {
            out[m++] = tree[node % 2 == 0 ? node - 1 : node + 1];
        }
        bytes32[] memory p = new bytes32[](m);
        for (uint256 i = 0; i < m; ++i) p[i] = out[i];
        return p;
    }

    function _blockLeaves(uint256 blockId) internal view returns (bytes32[] memory leaves) {
        TrainingLedger.SealedBlock memory b = ledger.getBlock(blockId);
        leaves = new bytes32[](b.opCount);
        for (uint256 i = 0; i < b.opCount; ++i) leaves[i] = _leaf(b.firstOpId + i);
    }

    function _blockProof(uint256 blockId, uint256 opId) internal view returns (bytes32[] memory) {
        return _proof(_blockLeaves(blockId), opId - ledger.getBlock(blockId).firstOpId);
    }

    function _opDigest(uint256 opId) internal view returns (bytes32) {
        return ledger.opHashOf(opId);
    }

    function _stake(address who, uint256 amount) internal {
        vm.startPrank(who);
        token.approve(address(staking), amount);
        staking.stake(amount);
        vm.stopPrank();
    }

    /// An attestation for ops `fromSeq..` of `fork` up to op `toOpId`, signed with `key`.
    function _attest(uint256 key, uint256 fork, uint256 fromSeq, uint256 toOpId, uint256 lossBefore, uint256 lossAfter)
        internal
        view
        returns (TrainingLedger.QualityAttestation memory a, bytes memory sig)
    {
        a = TrainingLedger.QualityAttestation(
            vm.addr(key), fork, fromSeq, seqOf[toOpId], ledger.opHashOf(toOpId), keccak256("bafkevaldata"), lossBefore, lossAfter
        );
        sig = _sign(key, a);
    }

    function _sign(uint256 key, TrainingLedger.QualityAttestation memory a) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s_) = vm.sign(key, ledger.attestationDigest(a));
        return abi.encodePacked(r, s_, v);
    }

    function _submit(address who, TrainingLedger.QualityAttestation memory a, bytes memory sig, uint256 toOpId)
        internal
        returns (uint256)
    {
        vm.prank(who);
        return ledger.submitRewardClaim(a, sig, "bafkevaldata", toOpId, recorded[toOpId]);
    }
}

contract TrainingLedgerTest is LedgerBase {

    // ---------------------------------------------------------------- registry and forks

    function test_registerBaseModel_onlyRegistrar() public {
        bytes32 role = ledger.REGISTRAR_ROLE();
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, role));
        vm.prank(alice);
        ledger.registerBaseModel("bafkx", "x");
    }

    function test_registerBaseModel_emptyCidReverts() public {
        vm.expectRevert(TrainingLedger.EmptyCid.selector);
        vm.prank(admin);
        ledger.registerBaseModel("", "x");
    }

    function test_fork_recordsOwnerHeightAndGenesis() public {
        vm.roll(77);
        bytes32 genesis = keccak256(
            abi.encode(
                keccak256(
                    "LoyalLedgerFork(uint256 chainId,address ledger,uint256 userModelId,uint256 baseModelId,"
                    "bytes32 baseModelCidHash,address owner,uint256 parentId,uint256 parentSeq,bytes32 parentOpHash,"
                    "uint256 generation)"
                ),
                block.chainid,
                address(ledger),
                uint256(3),
                base,
                keccak256("bafkreibase"),
                alice,
                uint256(0),
                uint256(0),
                bytes32(0),
                uint256(1)
            )
        );
        vm.expectEmit(true, true, true, true, address(ledger));
        emit TrainingLedger.ModelForked(3, base, alice, 77, genesis, 0, 0, 1);
        vm.prank(alice);
        uint256 id = ledger.forkModel(base);
        TrainingLedger.Fork memory f = ledger.getFork(id);
        assertEq(f.owner, alice, "owner");
        assertEq(f.forkedAtBlock, 77, "fork height");
        assertEq(f.head, genesis, "head starts at genesis");
        assertEq(f.opCount, 0, "no ops");
        assertEq(f.generation, 1, "generation 1");
        assertEq(f.parentId, 0, "no parent fork");
        assertEq(ledger.forksOf(alice).length, 2, "alice has two forks");
    }

    // ---------------------------------------------------------------- forks of forks

    function _exportHead(address who, uint256 fork, uint256 headOpId) internal {
        TrainingLedger.OpFields memory head = _headFields(fork, headOpId);
        vm.prank(who);
        ledger.exportModel(fork, "bafkstate", head);
    }

    function test_forkFromExport_recordsParentOpAndGeneration() public {
        _record(alice, aliceFork, 1);
        uint256 op2 = _record(alice, aliceFork, 2);
        _exportHead(alice, aliceFork, op2);
        _record(alice, aliceFork, 3); // the parent moves on; the child still starts at op 2
        bytes32 parentOpHash = ledger.opHashOf(op2);
        bytes32 genesis = keccak256(
            abi.encode(
                ledger.GENESIS_TYPEHASH(), block.chainid, address(ledger), uint256(3), base, keccak256("bafkreibase"), bob,
                aliceFork, uint256(2), parentOpHash, uint256(2)
            )
        );
        vm.expectEmit(true, true, true, true, address(ledger));
        emit TrainingLedger.ModelForked(3, base, bob, block.number, genesis, aliceFork, 2, 2);
        vm.prank(bob);
        uint256 child = ledger.forkFromExport(aliceFork, 2);
        TrainingLedger.Fork memory c = ledger.getFork(child);
        assertEq(c.owner, bob, "the forker owns it");
        assertEq(c.parentId, aliceFork, "parent");
        assertEq(c.parentSeq, 2, "fork point");
        assertEq(c.generation, 2, "generation");
        assertEq(c.baseModelId, base, "same base model");
        assertEq(c.head, genesis, "head starts at its genesis");
        // The child's ops chain from its own genesis; a grandchild is generation 3.
        uint256 cop = _record(bob, child, 1);
        assertEq(recorded[cop].prevOpHash, genesis, "child op 1 links to the child's genesis");
        _exportHead(bob, child, cop);
        vm.prank(alice);
        uint256 grandchild = ledger.forkFromExport(child, 1);
        assertEq(ledger.getFork(grandchild).generation, 3, "generation 3");
        assertEq(ledger.getFork(grandchild).parentId, child, "its parent");
    }

    function test_forkFromExport_badForkPointsRevertAndWriteNothing() public {
        uint256 op1 = _record(alice, aliceFork, 1);
        _record(alice, aliceFork, 2);
        (, uint256 forksBefore,,) = ledger.counts();
        vm.startPrank(bob);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.UnknownParentOp.selector, aliceFork, 3, 2));
        ledger.forkFromExport(aliceFork, 3); // an op that does not exist
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.UnknownParentOp.selector, aliceFork, 0, 2));
        ledger.forkFromExport(aliceFork, 0);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.NotExported.selector, aliceFork, 1));
        ledger.forkFromExport(aliceFork, 1); // exists, but no state was exported there
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.UnknownFork.selector, 99));
        ledger.forkFromExport(99, 1);
        vm.stopPrank();
        (, uint256 forksAfter,,) = ledger.counts();
        assertEq(forksAfter, forksBefore, "no fork created");
        assertEq(ledger.forksOf(bob).length, 1, "bob still has one fork");
        op1;
    }

    function test_fork_unknownBaseReverts() public {
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.UnknownBaseModel.selector, 9));
        vm.prank(alice);
        ledger.forkModel(9);
    }

    // ---------------------------------------------------------------- recording

    function test_record_chainsOpsAndEmits() public {
        TrainingLedger.Fork memory f = ledger.getFork(aliceFork);
        bytes32 dc = keccak256("d1");
        bytes32 sc = keccak256("s1");
        bytes32 h1 = ledger.computeOpHash(aliceFork, 1, f.genesis, "bafkint1", "bafkdelta1", dc, sc);
        vm.warp(1_700_000_123);
        vm.roll(55);
        vm.expectEmit(true, true, true, true, address(ledger));
        emit TrainingLedger.TrainingRecorded(
            1, aliceFork, alice, 1, f.genesis, h1, "bafkint1", "bafkdelta1", dc, sc, alice, 1_700_000_123
        );
        vm.prank(alice);
        uint256 op1 = ledger.recordTraining(aliceFork, "bafkint1", "bafkdelta1", dc, sc, h1);
        vm.roll(60);
        uint256 op2 = _record(alice, aliceFork, 2);
        assertEq(op1, 1, "first op id");
        assertEq(recorded[op2].prevOpHash, h1, "op 2 commits to op 1");
        assertEq(seqOf[op2], 2, "seq");
        TrainingLedger.Fork memory g = ledger.getFork(aliceFork);
        assertEq(g.head, ledger.opHashOf(op2), "head is op 2's hash");
        assertEq(g.opCount, 2, "op count");
        assertEq(g.lastOpBlock, 60, "block of the latest op: where its event is");
        assertEq(ledger.opHashOf(op1), h1, "op 1's hash stored");
        (,, uint256 ops,) = ledger.counts();
        assertEq(ops, 2, "two ops");
    }

    function test_record_opHashPreimageIsDocumented() public {
        TrainingLedger.Fork memory f = ledger.getFork(aliceFork);
        bytes32 expected = keccak256(
            abi.encode(
                keccak256(
                    "LoyalLedgerOp(uint256 chainId,address ledger,uint256 userModelId,uint256 seq,bytes32 prevOpHash,"
                    "bytes32 interactionCidHash,bytes32 deltaCidHash,bytes32 deltaCommitment,bytes32 stateCommitment)"
                ),
                block.chainid,
                address(ledger),
                aliceFork,
                uint256(1),
                f.genesis,
                keccak256("bafkint"),
                keccak256("bafkdelta"),
                bytes32(uint256(1)),
                bytes32(uint256(2))
            )
        );
        assertEq(
            ledger.computeOpHash(aliceFork, 1, f.genesis, "bafkint", "bafkdelta", bytes32(uint256(1)), bytes32(uint256(2))),
            expected,
            "preimage"
        );
    }

    function test_record_toAnotherUsersForkReverts() public {
        bytes32 h = _opHash(aliceFork, "bafki", "bafkd", bytes32(0), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.NotAuthorisedRecorder.selector, aliceFork, bob));
        vm.prank(bob);
        ledger.recordTraining(aliceFork, "bafki", "bafkd", bytes32(0), bytes32(0), h);
        (,, uint256 ops,) = ledger.counts();
        assertEq(ops, 0, "nothing written");
    }

    function test_record_authorisedRecorderThenRevoked() public {
        vm.prank(alice);
        ledger.setRecorder(aliceFork, agent, true);
        TrainingLedger.Fork memory f = ledger.getFork(aliceFork);
        bytes32 h1 = ledger.computeOpHash(aliceFork, 1, f.genesis, "bafki1", "bafkd1", bytes32(0), bytes32(0));
        vm.expectEmit(true, true, true, true, address(ledger));
        emit TrainingLedger.TrainingRecorded(
            1, aliceFork, alice, 1, f.genesis, h1, "bafki1", "bafkd1", bytes32(0), bytes32(0), agent, block.timestamp
        );
        vm.prank(agent);
        ledger.recordTraining(aliceFork, "bafki1", "bafkd1", bytes32(0), bytes32(0), h1);
        vm.prank(alice);
        ledger.setRecorder(aliceFork, agent, false);
        bytes32 h = _opHash(aliceFork, "bafki", "bafkd", bytes32(0), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.NotAuthorisedRecorder.selector, aliceFork, agent));
        vm.prank(agent);
        ledger.recordTraining(aliceFork, "bafki", "bafkd", bytes32(0), bytes32(0), h);
        assertEq(ledger.getFork(aliceFork).opCount, 1, "only the authorised op");
    }

    function test_setRecorder_onlyOwner() public {
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.NotForkOwner.selector, aliceFork, bob));
        vm.prank(bob);
        ledger.setRecorder(aliceFork, bob, true);
    }

    function test_record_deltaHashMismatchReverts() public {
        bytes32 h = _opHash(aliceFork, "bafki", "bafkd", keccak256("delta A"), bytes32(0));
        bytes32 expected = _opHash(aliceFork, "bafki", "bafkd", keccak256("delta B"), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.OpHashMismatch.selector, expected, h));
        vm.prank(alice);
        ledger.recordTraining(aliceFork, "bafki", "bafkd", keccak256("delta B"), bytes32(0), h);
        assertEq(ledger.getFork(aliceFork).opCount, 0, "nothing written");
    }

    function test_record_deltaCidSwapReverts() public {
        bytes32 h = _opHash(aliceFork, "bafki", "bafkdA", bytes32(0), bytes32(0));
        bytes32 expected = _opHash(aliceFork, "bafki", "bafkdB", bytes32(0), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.OpHashMismatch.selector, expected, h));
        vm.prank(alice);
        ledger.recordTraining(aliceFork, "bafki", "bafkdB", bytes32(0), bytes32(0), h);
    }

    function test_record_replayedOpReverts() public {
        TrainingLedger.Fork memory f = ledger.getFork(aliceFork);
        bytes32 h = ledger.computeOpHash(aliceFork, 1, f.genesis, "bafki", "bafkd", bytes32(0), bytes32(0));
        vm.startPrank(alice);
        ledger.recordTraining(aliceFork, "bafki", "bafkd", bytes32(0), bytes32(0), h);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.OpAlreadyRecorded.selector, h));
        ledger.recordTraining(aliceFork, "bafki", "bafkd", bytes32(0), bytes32(0), h);
        // the same op hash on another fork of the same owner is refused too: its hash names fork 1, seq 1
        uint256 second = ledger.forkModel(base);
        bytes32 onSecond = _opHash(second, "bafki", "bafkd", bytes32(0), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.OpHashMismatch.selector, onSecond, h));
        ledger.recordTraining(second, "bafki", "bafkd", bytes32(0), bytes32(0), h);
        // an older op replayed after the fork moved on: its seq and previous hash are gone
        vm.stopPrank();
        _record(alice, aliceFork, 2);
        vm.startPrank(alice);
        bytes32 now3 = _opHash(aliceFork, "bafki", "bafkd", bytes32(0), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.OpHashMismatch.selector, now3, h));
        ledger.recordTraining(aliceFork, "bafki", "bafkd", bytes32(0), bytes32(0), h);
        vm.stopPrank();
        assertEq(ledger.getFork(aliceFork).opCount, 2, "two ops");
        assertEq(ledger.getFork(second).opCount, 0, "nothing on the other fork");
        (,, uint256 ops,) = ledger.counts();
        assertEq(ops, 2, "no replayed op stored");
    }

    function test_record_staleHeadReverts() public {
        bytes32 stale = _opHash(aliceFork, "bafki", "bafkd", bytes32(0), bytes32(0));
        _record(alice, aliceFork, 1);
        bytes32 expected = _opHash(aliceFork, "bafki", "bafkd", bytes32(0), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.OpHashMismatch.selector, expected, stale));
        vm.prank(alice);
        ledger.recordTraining(aliceFork, "bafki", "bafkd", bytes32(0), bytes32(0), stale);
    }

    function test_record_emptyCidReverts() public {
        bytes32 h = _opHash(aliceFork, "", "bafkd", bytes32(0), bytes32(0));
        vm.expectRevert(TrainingLedger.EmptyCid.selector);
        vm.prank(alice);
        ledger.recordTraining(aliceFork, "", "bafkd", bytes32(0), bytes32(0), h);
    }

    function test_record_unknownForkReverts() public {
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.UnknownFork.selector, 42));
        vm.prank(alice);
        ledger.recordTraining(42, "a", "b", bytes32(0), bytes32(0), bytes32(0));
    }

    // ---------------------------------------------------------------- sealing and proofs

    function test_seal_everyOpProvable() public {
        for (uint256 i = 1; i <= 5; ++i) _record(i % 2 == 0 ? bob : alice, i % 2 == 0 ? bobFork : aliceFork, i);
        uint256 blockId = ledger.sealBlock();
        TrainingLedger.SealedBlock memory b = ledger.getBlock(blockId);
        assertEq(b.firstOpId, 1, "first");
        assertEq(b.opCount, 5, "count");
        // OpenZeppelin's layout for 5 leaves: leaf 4 pairs with the (0,1) node, it is not carried up alone.
        bytes32 l01 = Hashes.commutativeKeccak256(_leaf(1), _leaf(2));
        bytes32 l23 = Hashes.commutativeKeccak256(_leaf(3), _leaf(4));
        assertEq(b.root, Hashes.commutativeKeccak256(l23, Hashes.commutativeKeccak256(_leaf(5), l01)), "OZ tree shape");
        assertEq(b.root, _ozTree(_blockLeaves(blockId))[0], "OZ StandardMerkleTree root");
        for (uint256 op = 1; op <= 5; ++op) {
            bytes32[] memory p = _blockProof(blockId, op);
            assertTrue(MerkleProof.verify(p, b.root, _leaf(op)), "OZ MerkleProof accepts");
            assertTrue(ledger.verifyOpInclusion(blockId, op, ledger.opHashOf(op), p), "ledger accepts");
            assertEq(ledger.blockOfOp(op), blockId, "blockOfOp");
        }
    }

    function test_seal_boundedBatch() public {
        for (uint256 i = 1; i <= 70; ++i) _record(alice, aliceFork, i);
        vm.expectEmit(true, false, false, false, address(ledger));
        emit TrainingLedger.BlockSealed(1, 1, 64, bytes32(0));
        ledger.sealBlock();
        assertEq(ledger.sealedOpCount(), 64, "first batch is capped");
        ledger.sealBlock();
        assertEq(ledger.sealedOpCount(), 70, "rest");
        assertEq(ledger.getBlock(2).firstOpId, 65, "second block starts after the first");
        assertEq(ledger.blockOfOp(64), 1, "op 64 in block 1");
        assertEq(ledger.blockOfOp(65), 2, "op 65 in block 2");
        vm.expectRevert(TrainingLedger.NothingToSeal.selector);
        ledger.sealBlock();
    }

    function test_blockOfOp_unsealedReverts() public {
        _record(alice, aliceFork, 1);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.OpNotSealed.selector, 1));
        ledger.blockOfOp(1);
    }

    function test_forgedProofsFail() public {
        for (uint256 i = 1; i <= 6; ++i) _record(alice, aliceFork, i);
        ledger.sealBlock();
        for (uint256 i = 7; i <= 9; ++i) _record(alice, aliceFork, i);
        ledger.sealBlock();
        bytes32[] memory p = _blockProof(1, 3);
        bytes32 h3 = ledger.opHashOf(3);
        assertTrue(ledger.verifyOpInclusion(1, 3, h3, p), "genuine proof");
        assertTrue(!ledger.verifyOpInclusion(1, 3, keccak256("forged op"), p), "altered op hash");
        assertTrue(!ledger.verifyOpInclusion(1, 4, h3, p), "moved to another id");
        assertTrue(!ledger.verifyOpInclusion(2, 3, h3, p), "claimed in another block");
        bytes32[] memory q = _blockProof(1, 3);
        q[0] = keccak256("wrong sibling");
        assertTrue(!ledger.verifyOpInclusion(1, 3, h3, q), "altered sibling");
        bytes32[] memory shortP = new bytes32[](1);
        shortP[0] = p[0];
        assertTrue(!ledger.verifyOpInclusion(1, 3, h3, shortP), "truncated proof");
        // An inner node cannot pass as a leaf (double-hashed leaves).
        bytes32 inner = Hashes.commutativeKeccak256(_leaf(3), _leaf(4));
        bytes32[] memory upper = new bytes32[](p.length - 1);
        for (uint256 i = 1; i < p.length; ++i) upper[i - 1] = p[i];
        assertTrue(!ledger.verifyOpInclusion(1, 3, inner, upper), "inner node as op hash");
    }

    // ---------------------------------------------------------------- immutability

    /// Every state-changing function of the ledger, called after an op is recorded and sealed,
    /// leaves that op's stored hash, that block root and the fork's genesis byte-identical, and the
    /// chain only extends from the old head. (test_ledger_abi.py checks this list covers every
    /// non-view function in the ABI.)
    // What test_noFunctionModifiesARecordedOp snapshots (in storage: the test has too many calls for the stack).
    bytes32 snapOp;
    bytes32 snapRoot;
    bytes32 snapHead;
    bytes32 snapGenesis;
    TrainingLedger.QualityAttestation att;
    bytes attSig;

    function test_noFunctionModifiesARecordedOp() public {
        uint256 op = _record(alice, aliceFork, 1);
        ledger.sealBlock();
        snapOp = _opDigest(op);
        snapRoot = ledger.getBlock(1).root;
        snapHead = ledger.getFork(aliceFork).head;
        snapGenesis = ledger.getFork(aliceFork).genesis;

        vm.startPrank(admin);
        ledger.registerBaseModel("bafknew", "other");
        ledger.setRewardPerOp(2 ether);
        ledger.fundRewards(1 ether);
        ledger.grantRole(ledger.REGISTRAR_ROLE(), bob);
        ledger.revokeRole(ledger.REGISTRAR_ROLE(), bob);
        vm.stopPrank();
        vm.startPrank(alice);
        ledger.forkModel(base);
        ledger.setRecorder(aliceFork, agent, true);
        ledger.exportModel(aliceFork, "bafkstate", _headFields(aliceFork, op));
        ledger.forkFromExport(aliceFork, 1);
        (att, attSig) = _attest(EVAL_KEY, aliceFork, 1, op, 5e6, 1e6);
        ledger.submitRewardClaim(att, attSig, "bafkevaldata", op, recorded[op]);
        ledger.registerBlockKey(keccak256("alice ml-dsa key"), "bafkkey");
        ledger.submitBlockSignature(1, "bafksig");
        vm.stopPrank();
        uint256 op2 = _record(agent, aliceFork, 2);
        ledger.sealBlock();
        uint256 claimId = ledger.pendingClaimOf(aliceFork);
        vm.prank(admin);
        ledger.rejectRewardClaim(claimId, "re-check found the loss false");
        (att, attSig) = _attest(EVAL_KEY, aliceFork, 1, op, 6e6, 1e6);
        vm.prank(alice);
        ledger.submitRewardClaim(att, attSig, "bafkevaldata", op, recorded[op]);
        vm.warp(block.timestamp + 1 days);
        ledger.finalizeRewardClaim(ledger.pendingClaimOf(aliceFork));
        vm.startPrank(admin);
        ledger.setQualityPolicy(TrainingLedger.QualityPolicy(50 ether, 2e6, 2 days, 3));
        ledger.renounceRole(ledger.REWARD_ADMIN_ROLE(), admin);
        vm.stopPrank();

        assertEq(_opDigest(op), snapOp, "op unchanged");
        assertEq(ledger.getBlock(1).root, snapRoot, "block root unchanged");
        assertEq(recorded[op2].prevOpHash, snapHead, "chain extends, never rewrites");
        assertEq(ledger.getFork(aliceFork).genesis, snapGenesis, "genesis unchanged");
        assertEq(ledger.rewardedThroughSeq(aliceFork), 1, "the claim path ran");
    }

    function test_rerecordingSameSeqIsImpossible() public {
        // Recording "op 1 again" with different content fails: seq 1's prevOpHash is gone from the head.
        TrainingLedger.Fork memory f = ledger.getFork(aliceFork);
        uint256 op1 = _record(alice, aliceFork, 1);
        bytes32 kept = ledger.opHashOf(op1);
        bytes32 rewrite = ledger.computeOpHash(aliceFork, 1, f.genesis, "bafkevil", "bafkevil", bytes32(0), bytes32(0));
        bytes32 expected = _opHash(aliceFork, "bafkevil", "bafkevil", bytes32(0), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.OpHashMismatch.selector, expected, rewrite));
        vm.prank(alice);
        ledger.recordTraining(aliceFork, "bafkevil", "bafkevil", bytes32(0), bytes32(0), rewrite);
        assertEq(ledger.opHashOf(op1), kept, "op 1 kept");
        assertEq(ledger.getFork(aliceFork).opCount, 1, "no second op");
    }

    // ---------------------------------------------------------------- ML-DSA block keys and signatures

    function test_blockKey_boundOnceAndNeverReplaced() public {
        vm.roll(42);
        vm.expectEmit(true, false, false, true, address(ledger));
        emit TrainingLedger.BlockKeyRegistered(alice, keccak256("pk"), "bafkpk");
        vm.prank(alice);
        ledger.registerBlockKey(keccak256("pk"), "bafkpk");
        TrainingLedger.BlockKey memory k = ledger.blockKeyOf(alice);
        assertEq(k.keyHash, keccak256("pk"), "hash");
        assertEq(k.registeredAtBlock, 42, "block of the event");
        // Replacing it (an adversary who forges alice's Ethereum signature would try exactly this) is refused.
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.BlockKeyAlreadyRegistered.selector, alice, keccak256("pk")));
        vm.prank(alice);
        ledger.registerBlockKey(keccak256("attacker pk"), "bafkevil");
        assertEq(ledger.blockKeyOf(alice).keyHash, keccak256("pk"), "kept");
        vm.expectRevert(TrainingLedger.ZeroKeyHash.selector);
        vm.prank(bob);
        ledger.registerBlockKey(bytes32(0), "bafkpk");
        vm.expectRevert(TrainingLedger.EmptyCid.selector);
        vm.prank(bob);
        ledger.registerBlockKey(keccak256("pk"), "");
        assertEq(ledger.blockKeyOf(bob).keyHash, bytes32(0), "bob has none");
    }

    function test_blockSignature_pointsAtItsEventPerSigner() public {
        _record(alice, aliceFork, 1);
        uint256 blockId = ledger.sealBlock();
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.NoBlockKey.selector, alice));
        vm.prank(alice);
        ledger.submitBlockSignature(blockId, "bafksig");
        vm.prank(alice);
        ledger.registerBlockKey(keccak256("pk"), "bafkpk");
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.UnknownBlock.selector, 2));
        vm.prank(alice);
        ledger.submitBlockSignature(2, "bafksig");
        vm.expectRevert(TrainingLedger.EmptyCid.selector);
        vm.prank(alice);
        ledger.submitBlockSignature(blockId, "");
        vm.roll(77);
        vm.expectEmit(true, true, false, true, address(ledger));
        emit TrainingLedger.BlockSigned(blockId, alice, ledger.getBlock(blockId).root, "bafksig");
        vm.prank(alice);
        ledger.submitBlockSignature(blockId, "bafksig");
        assertEq(ledger.blockSignatureAt(blockId, alice), 77, "where alice's signature is");
        // Bob signing the same block does not move alice's pointer.
        vm.prank(bob);
        ledger.registerBlockKey(keccak256("bob pk"), "bafkbob");
        vm.roll(90);
        vm.prank(bob);
        ledger.submitBlockSignature(blockId, "bafkbobsig");
        assertEq(ledger.blockSignatureAt(blockId, alice), 77, "alice's kept");
        assertEq(ledger.blockSignatureAt(blockId, bob), 90, "bob's");
    }

    // ---------------------------------------------------------------- export

    function test_export_emitsHeadAndState() public {
        _record(alice, aliceFork, 1);
        uint256 op2 = _record(alice, aliceFork, 2);
        TrainingLedger.OpFields memory o = recorded[op2];
        bytes32 h2 = ledger.opHashOf(op2);
        vm.roll(321);
        vm.expectEmit(true, true, false, true, address(ledger));
        emit TrainingLedger.ModelExported(aliceFork, alice, "bafkstate", h2, o.stateCommitment, 2);
        vm.prank(alice);
        ledger.exportModel(aliceFork, "bafkstate", o);
        TrainingLedger.ExportPoint memory e = ledger.exportAt(aliceFork, 2);
        assertEq(e.headOpHash, h2, "head");
        assertEq(e.atBlock, 321, "block of the export's event");
        assertEq(ledger.latestExportSeq(aliceFork), 2, "latest export");
        assertEq(ledger.exportAt(aliceFork, 1).headOpHash, bytes32(0), "no export at op 1");
    }

    /// The exporter must show the head op's fields: another op's fields (or a forged state
    /// commitment) do not hash to the head, and nothing is written.
    function test_export_withFieldsOfAnotherOpReverts() public {
        uint256 op1 = _record(alice, aliceFork, 1);
        uint256 op2 = _record(alice, aliceFork, 2);
        TrainingLedger.OpFields memory old = recorded[op1];
        bytes32 h = ledger.computeOpHash(aliceFork, 2, old.prevOpHash, "bafkint1", "bafkdelta1", old.deltaCommitment, old.stateCommitment);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.NotTheOp.selector, aliceFork, 2, ledger.opHashOf(op2), h));
        vm.prank(alice);
        ledger.exportModel(aliceFork, "bafkstate", old);
        TrainingLedger.OpFields memory forged = recorded[op2];
        forged.stateCommitment = keccak256("a state alice never trained");
        vm.expectRevert();
        vm.prank(alice);
        ledger.exportModel(aliceFork, "bafkstate", forged);
        assertEq(ledger.latestExportSeq(aliceFork), 0, "nothing exported");
    }

    function test_export_emptyForkReverts() public {
        TrainingLedger.OpFields memory none;
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.NothingToExport.selector, aliceFork));
        vm.prank(alice);
        ledger.exportModel(aliceFork, "bafkstate", none);
    }

    function test_export_othersForkReverts() public {
        uint256 op = _record(alice, aliceFork, 1);
        TrainingLedger.OpFields memory head = _headFields(aliceFork, op);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.NotAuthorisedRecorder.selector, aliceFork, bob));
        vm.prank(bob);
        ledger.exportModel(aliceFork, "bafkstate", head);
    }

    // ---------------------------------------------------------------- history (moved to events)

    /// History lives in events; storage keeps what a reader needs to fetch it from a bounded block
    /// range: the fork's height and the block of its latest op, and the owner's forks.
    function test_history_boundsAreStored() public {
        vm.roll(100);
        vm.prank(alice);
        uint256 fork = ledger.forkModel(base);
        vm.roll(120);
        _record(alice, fork, 1);
        vm.roll(150);
        _record(alice, fork, 2);
        TrainingLedger.Fork memory f = ledger.getFork(fork);
        assertEq(f.forkedAtBlock, 100, "from");
        assertEq(f.lastOpBlock, 150, "to");
        uint256[] memory mine = ledger.forksOf(alice);
        assertEq(mine.length, 2, "alice's forks");
        assertEq(mine[1], fork, "in creation order");
        bytes32[] memory hashes = ledger.getOpHashes(1, 10);
        assertEq(hashes.length, 2, "capped at the last op");
        assertEq(hashes[1], f.head, "op 2 is the head");
        bytes32[] memory none = ledger.getOpHashes(2, 0);
        assertEq(none.length, 0, "empty page");
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.UnknownOp.selector, 3));
        ledger.getOpHashes(3, 1);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.UnknownOp.selector, 0));
        ledger.opHashOf(0);
    }

    // ---------------------------------------------------------------- rewards (quality-gated)

    function _sealedOps(uint256 n) internal returns (uint256[] memory ids) {
        ids = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) ids[i] = _record(alice, aliceFork, i + 1);
        ledger.sealBlock();
    }

    /// Gain 2.5e6 over 3 ops at 1e6 per op: 2 rewards; paid after the window; the bond is unlocked.
    function test_claim_paysMeasuredGainAfterTheWindow() public {
        uint256[] memory ids = _sealedOps(3);
        (TrainingLedger.QualityAttestation memory a, bytes memory sig) = _attest(EVAL_KEY, aliceFork, 1, ids[2], 4.5e6, 2e6);
        uint256 claimId = _submit(alice, a, sig, ids[2]);
        TrainingLedger.RewardClaim memory c = ledger.getRewardClaim(claimId);
        assertEq(c.amount, 2 ether, "2 rewards for 2.5 gain units over 3 ops");
        assertEq(c.bond, 4 ether, "bond = 2 x reward");
        assertEq(staking.lockedBy(address(ledger), evaluator), 4 ether, "evaluator's stake locked");
        assertEq(ledger.rewardPool(), 98 ether, "reserved out of the pool");
        assertEq(ledger.rewardsReserved(), 2 ether, "reserved");
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.ChallengeWindowOpen.selector, claimId, c.readyAt));
        ledger.finalizeRewardClaim(claimId);
        vm.warp(c.readyAt);
        vm.expectEmit(true, true, false, true, address(ledger));
        emit TrainingLedger.TrainingRewardsClaimed(aliceFork, alice, 1, 3, 2 ether);
        vm.prank(bob); // anyone may finalize; the owner is paid
        ledger.finalizeRewardClaim(claimId);
        assertEq(token.balanceOf(alice), 2 ether, "paid");
        assertEq(token.balanceOf(bob), 0, "not the caller");
        assertEq(ledger.rewardedThroughSeq(aliceFork), 3, "range consumed");
        assertEq(staking.lockedBy(address(ledger), evaluator), 0, "unlocked");
        assertEq(ledger.rewardsReserved(), 0, "nothing reserved");
        vm.expectRevert(
            abi.encodeWithSelector(TrainingLedger.ClaimNotPending.selector, claimId, TrainingLedger.ClaimStatus.Paid)
        );
        ledger.finalizeRewardClaim(claimId);
        // The same attestation again: its range is no longer the next one.
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.NotNextRange.selector, aliceFork, 1, 3, 4));
        _submit(alice, a, sig, ids[2]);
        assertEq(token.balanceOf(alice), 2 ether, "paid once");
    }

    /// Forged, altered, re-targeted, copied or replayed attestations pay nothing and reserve nothing.
    function test_claim_forgedOrCopiedAttestationsRevert() public {
        uint256[] memory ids = _sealedOps(2);
        (TrainingLedger.QualityAttestation memory a, bytes memory sig) = _attest(EVAL_KEY, aliceFork, 1, ids[1], 9e6, 1e6);
        TrainingLedger.QualityAttestation memory altered = a;
        altered.lossAfter = 0; // the owner inflates the gain after the evaluator signed
        vm.expectRevert();
        _submit(alice, altered, sig, ids[1]);
        // signed by a key that holds no stake
        (TrainingLedger.QualityAttestation memory byNobody, bytes memory nobodySig) = _attest(0xBAD, aliceFork, 1, ids[1], 9e6, 1e6);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.EvaluatorNotStaked.selector, vm.addr(0xBAD), 0, 100 ether));
        _submit(alice, byNobody, nobodySig, ids[1]);
        // claims the staked evaluator signed it, but another key did
        byNobody.evaluator = evaluator;
        vm.expectRevert();
        _submit(alice, byNobody, nobodySig, ids[1]);
        // bob copies alice's attestation: it names alice's fork, which bob does not own
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.NotForkOwner.selector, aliceFork, bob));
        _submit(bob, a, sig, ids[1]);
        // ... or points it at his own fork: the signature no longer matches
        uint256 bobOp = _record(bob, bobFork, 9);
        ledger.sealBlock();
        TrainingLedger.QualityAttestation memory moved = a;
        moved.userModelId = bobFork;
        moved.toSeq = 1;
        moved.toOpHash = ledger.opHashOf(bobOp);
        vm.expectRevert();
        _submit(bob, moved, sig, bobOp);
        // another ledger (another EIP-712 domain) does not accept it either
        TrainingLedger other = new TrainingLedger(token, staking, 1 ether, TrainingLedger.QualityPolicy(100 ether, 1e6, 1 days, 2), admin);
        assertTrue(other.attestationDigest(a) != ledger.attestationDigest(a), "domain-separated");
        assertEq(ledger.rewardsReserved(), 0, "nothing reserved");
        assertEq(ledger.pendingClaimOf(aliceFork), 0, "no claim");
        assertEq(staking.lockedOf(evaluator), 0, "no bond");
    }

    function test_claim_badRangesAndOpsRevert() public {
        uint256[] memory ids = _sealedOps(2);
        uint256 unsealed = _record(alice, aliceFork, 3);
        (TrainingLedger.QualityAttestation memory a, bytes memory sig) = _attest(EVAL_KEY, aliceFork, 2, ids[1], 9e6, 1e6);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.NotNextRange.selector, aliceFork, 2, 2, 1));
        _submit(alice, a, sig, ids[1]); // skips op 1
        (a, sig) = _attest(EVAL_KEY, aliceFork, 1, unsealed, 9e6, 1e6);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.OpNotSealed.selector, unsealed));
        _submit(alice, a, sig, unsealed);
        (a, sig) = _attest(EVAL_KEY, aliceFork, 1, ids[1], 9e6, 1e6);
        a.toOpHash = ledger.opHashOf(ids[0]); // attests another op than the one shown
        sig = _sign(EVAL_KEY, a);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.AttestedOpMismatch.selector, a.toOpHash, ledger.opHashOf(ids[1])));
        _submit(alice, a, sig, ids[1]);
        (a, sig) = _attest(EVAL_KEY, aliceFork, 1, ids[1], 9e6, 1e6);
        vm.expectRevert(); // data CID other than the attested one
        vm.prank(alice);
        ledger.submitRewardClaim(a, sig, "bafkotherdata", ids[1], recorded[ids[1]]);
        uint256 claimId = _submit(alice, a, sig, ids[1]);
        (TrainingLedger.QualityAttestation memory again, bytes memory sig2) = _attest(EVAL_KEY, aliceFork, 1, ids[0], 8e6, 1e6);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.ClaimPending.selector, aliceFork, claimId));
        _submit(alice, again, sig2, ids[0]);
    }

    function test_claim_noGainNoReward() public {
        uint256[] memory ids = _sealedOps(2);
        (TrainingLedger.QualityAttestation memory a, bytes memory sig) = _attest(EVAL_KEY, aliceFork, 1, ids[1], 2e6, 3e6);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.LossGotWorse.selector, 2e6, 3e6));
        _submit(alice, a, sig, ids[1]);
        (a, sig) = _attest(EVAL_KEY, aliceFork, 1, ids[1], 2e6, 2e6);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.GainBelowMinimum.selector, 0, 1e6));
        _submit(alice, a, sig, ids[1]); // junk that did no harm: no reward either
        (a, sig) = _attest(EVAL_KEY, aliceFork, 1, ids[1], 2e6 + 999_999, 2e6);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.GainBelowMinimum.selector, 999_999, 1e6));
        _submit(alice, a, sig, ids[1]);
        // An owner as its own evaluator: refused even when staked.
        address carl = vm.addr(0xCA71);
        vm.prank(admin);
        token.mint(carl, 200 ether);
        _stake(carl, 200 ether);
        vm.prank(carl);
        uint256 carlFork = ledger.forkModel(base);
        uint256 carlOp = _record(carl, carlFork, 1);
        ledger.sealBlock();
        (a, sig) = _attest(0xCA71, carlFork, 1, carlOp, 9e6, 1e6);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.SelfAttestation.selector, carl));
        _submit(carl, a, sig, carlOp);
        assertEq(ledger.rewardsReserved(), 0, "nothing reserved");
    }

    /// A rejected claim returns its reserve to the pool, slashes the bond into it, and the same
    /// attestation cannot be used again.
    function test_reject_slashesTheBondIntoThePool() public {
        uint256[] memory ids = _sealedOps(3);
        (TrainingLedger.QualityAttestation memory a, bytes memory sig) = _attest(EVAL_KEY, aliceFork, 1, ids[2], 9e6, 1e6);
        uint256 claimId = _submit(alice, a, sig, ids[2]);
        TrainingLedger.RewardClaim memory c = ledger.getRewardClaim(claimId);
        assertEq(c.amount, 3 ether, "3 ops");
        bytes32 referee = ledger.REFEREE_ROLE();
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, bob, referee));
        vm.prank(bob);
        ledger.rejectRewardClaim(claimId, "bob says so");
        uint256 poolBefore = ledger.rewardPool();
        vm.expectEmit(true, true, true, true, address(ledger));
        emit TrainingLedger.RewardClaimRejected(claimId, aliceFork, evaluator, 6 ether, "loss after is 4.2, not 0.001");
        vm.prank(admin);
        ledger.rejectRewardClaim(claimId, "loss after is 4.2, not 0.001");
        assertEq(staking.stakeOf(evaluator), 494 ether, "bond slashed");
        assertEq(staking.lockedOf(evaluator), 0, "nothing left locked");
        assertEq(ledger.rewardPool(), poolBefore + 3 ether + 6 ether, "reserve back + slash");
        assertEq(token.balanceOf(address(ledger)), ledger.rewardPool() + ledger.rewardsReserved(), "pool backed");
        assertEq(ledger.rewardedThroughSeq(aliceFork), 0, "ops not paid");
        vm.expectRevert(
            abi.encodeWithSelector(TrainingLedger.ClaimNotPending.selector, claimId, TrainingLedger.ClaimStatus.Rejected)
        );
        ledger.finalizeRewardClaim(claimId);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.AttestationAlreadyUsed.selector, ledger.attestationDigest(a)));
        _submit(alice, a, sig, ids[2]);
        // Late: a claim whose window has closed can no longer be rejected.
        (a, sig) = _attest(EVAL_KEY, aliceFork, 1, ids[2], 8e6, 1e6);
        claimId = _submit(alice, a, sig, ids[2]);
        vm.warp(block.timestamp + 1 days);
        vm.expectRevert();
        vm.prank(admin);
        ledger.rejectRewardClaim(claimId, "too late");
        ledger.finalizeRewardClaim(claimId);
        assertEq(token.balanceOf(alice), 3 ether, "paid once, after the window");
    }

    /// The Sybil: many forks full of junk ops. An honest evaluator measures no gain, so no claim
    /// passes; a staked evaluator the Sybil controls can attest a false gain, and a re-check
    /// rejects it: the Sybil's side (owner + evaluator) ends with less than it started.
    function test_sybil_junkOpsCannotProfit() public {
        address sybil = address(0x5B11);
        uint256 sybilEvalKey = 0x5E7A1;
        address sybilEval = vm.addr(sybilEvalKey);
        vm.prank(admin);
        token.mint(sybilEval, 130 ether);
        _stake(sybilEval, 130 ether);
        uint256[] memory forks = new uint256[](3);
        uint256[] memory lastOps = new uint256[](3);
        for (uint256 k = 0; k < 3; ++k) {
            vm.prank(sybil);
            forks[k] = ledger.forkModel(base);
            for (uint256 i = 1; i <= 10; ++i) lastOps[k] = _record(sybil, forks[k], 1000 * k + i);
        }
        ledger.sealBlock();
        uint256 sideBefore = token.balanceOf(sybil) + staking.stakeOf(sybilEval);
        // Honest evaluator: junk leaves held-out loss where it was (or worse).
        for (uint256 k = 0; k < 3; ++k) {
            (TrainingLedger.QualityAttestation memory a, bytes memory sig) = _attest(EVAL_KEY, forks[k], 1, lastOps[k], 4e9, 4e9);
            vm.expectRevert(abi.encodeWithSelector(TrainingLedger.GainBelowMinimum.selector, 0, 1e6));
            _submit(sybil, a, sig, lastOps[k]);
        }
        // Its own evaluator lies; a re-check rejects each claim within the window.
        for (uint256 k = 0; k < 3; ++k) {
            (TrainingLedger.QualityAttestation memory a, bytes memory sig) = _attest(sybilEvalKey, forks[k], 1, lastOps[k], 4e9, 1e9);
            if (k == 2) {
                // two slashes later its stake is below the minimum: it cannot even attest any more
                vm.expectRevert(abi.encodeWithSelector(TrainingLedger.EvaluatorNotStaked.selector, sybilEval, 90 ether, 100 ether));
                _submit(sybil, a, sig, lastOps[k]);
                continue;
            }
            uint256 claimId = _submit(sybil, a, sig, lastOps[k]);
            vm.prank(admin);
            ledger.rejectRewardClaim(claimId, "re-check: no gain on the evaluator's data");
        }
        uint256 sideAfter = token.balanceOf(sybil) + staking.stakeOf(sybilEval);
        assertEq(token.balanceOf(sybil), 0, "the Sybil was paid nothing");
        assertEq(sideBefore - sideAfter, 40 ether, "two rejected claims of 10 rewards each: 2 x 20 slashed");
        for (uint256 k = 0; k < 3; ++k) assertEq(ledger.rewardedThroughSeq(forks[k]), 0, "no junk op paid");
    }

    function test_setQualityPolicy_onlyRewardAdminAndSane() public {
        bytes32 role = ledger.REWARD_ADMIN_ROLE();
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, bob, role));
        vm.prank(bob);
        ledger.setQualityPolicy(TrainingLedger.QualityPolicy(0, 1, 0, 1));
        vm.startPrank(admin);
        vm.expectRevert(TrainingLedger.BadPolicy.selector);
        ledger.setQualityPolicy(TrainingLedger.QualityPolicy(0, 0, 0, 1)); // every op would earn with no gain
        vm.expectRevert(TrainingLedger.BadPolicy.selector);
        ledger.setQualityPolicy(TrainingLedger.QualityPolicy(0, 1, 0, 0)); // nothing at stake
        vm.stopPrank();
        (uint256 minStake,,,) = ledger.qualityPolicy();
        assertEq(minStake, 100 ether, "unchanged");
    }

    function test_claim_poolTooSmallReverts() public {
        uint256[] memory ids = _sealedOps(2);
        vm.prank(admin);
        ledger.setRewardPerOp(60 ether);
        (TrainingLedger.QualityAttestation memory a, bytes memory sig) = _attest(EVAL_KEY, aliceFork, 1, ids[1], 9e6, 1e6);
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.InsufficientRewardPool.selector, 120 ether, 100 ether));
        _submit(alice, a, sig, ids[1]);
        assertEq(ledger.rewardsReserved(), 0, "nothing reserved");
    }

    function test_fund_zeroReverts() public {
        vm.expectRevert(TrainingLedger.ZeroAmount.selector);
        vm.prank(admin);
        ledger.fundRewards(0);
    }

    // ---------------------------------------------------------------- fuzz

    function testFuzz_everyOpInAnyBatchIsProvable(uint256 n, uint256 pick) public {
        n = bound(n, 1, 64);
        for (uint256 i = 1; i <= n; ++i) _record(alice, aliceFork, i);
        uint256 blockId = ledger.sealBlock();
        assertEq(ledger.getBlock(blockId).root, _ozTree(_blockLeaves(blockId))[0], "OZ StandardMerkleTree root");
        uint256 op = bound(pick, 1, n);
        bytes32[] memory p = _blockProof(blockId, op);
        assertTrue(ledger.verifyOpInclusion(blockId, op, ledger.opHashOf(op), p), "proof");
        assertTrue(MerkleProof.verify(p, ledger.getBlock(blockId).root, _leaf(op)), "OZ proof");
    }

    function testFuzz_forgedOpHashNeverProves(uint256 n, uint256 pick, bytes32 forged) public {
        n = bound(n, 1, 64);
        for (uint256 i = 1; i <= n; ++i) _record(alice, aliceFork, i);
        ledger.sealBlock();
        uint256 op = bound(pick, 1, n);
        vm.assume(forged != ledger.opHashOf(op));
        assertTrue(!ledger.verifyOpInclusion(1, op, forged, _blockProof(1, op)), "forged op hash");
    }

    function testFuzz_wrongCommitmentReverts(bytes32 dc, bytes32 other) public {
        vm.assume(dc != other);
        bytes32 h = _opHash(aliceFork, "bafki", "bafkd", dc, bytes32(0));
        bytes32 expected = _opHash(aliceFork, "bafki", "bafkd", other, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.OpHashMismatch.selector, expected, h));
        vm.prank(alice);
        ledger.recordTraining(aliceFork, "bafki", "bafkd", other, bytes32(0), h);
    }

    function testFuzz_strangerCannotRecord(address stranger) public {
        vm.assume(stranger != alice);
        bytes32 h = _opHash(aliceFork, "bafki", "bafkd", bytes32(0), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(TrainingLedger.NotAuthorisedRecorder.selector, aliceFork, stranger));
        vm.prank(stranger);
        ledger.recordTraining(aliceFork, "bafki", "bafkd", bytes32(0), bytes32(0), h);
    }
}

/// @dev Drives random record/seal/fund/claim sequences for the reward invariants.
contract LedgerHandler {
    Vm constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    LoyalToken public token;
    TrainingLedger public ledger;
    address public funder;
    address[2] public owners = [address(0x2001), address(0x2002)];
    uint256[2] public forks;
    mapping(uint256 opId => uint256) public timesPaid;
    mapping(uint256 opId => bytes32) public opDigestAtRecord;
    mapping(uint256 blockId => bytes32) public rootAtSeal;
    /// What each op was recorded with (as its event tells an agent).
    mapping(uint256 opId => uint256) public forkIndexOf;
    mapping(uint256 opId => uint256) public seqOf;
    mapping(uint256 opId => string) public cidOf;
    mapping(uint256 opId => TrainingLedger.OpFields) internal fieldsOf;
    mapping(uint256 k => mapping(uint256 seq => uint256 opId)) public opIdAt;
    uint256 public paidSum;
    uint256 public nonce;
    uint256 public replaysAccepted;

    constructor(LoyalToken t, TrainingLedger l, address f, uint256 base) {
        token = t;
        ledger = l;
        funder = f;
        for (uint256 i = 0; i < 2; ++i) {
            vm.prank(owners[i]);
            forks[i] = l.forkModel(base);
        }
    }

    function record(uint256 who) external {
        uint256 k = who % 2;
        TrainingLedger.Fork memory f = ledger.getFork(forks[k]);
        string memory cid = string.concat("bafk", vm.toString(++nonce));
        uint256 seq = uint256(f.opCount) + 1;
        bytes32 h = ledger.computeOpHash(forks[k], seq, f.head, cid, cid, bytes32(nonce), bytes32(0));
        vm.prank(owners[k]);
        uint256 opId = ledger.recordTraining(forks[k], cid, cid, bytes32(nonce), bytes32(0), h);
        opDigestAtRecord[opId] = ledger.opHashOf(opId);
        forkIndexOf[opId] = k;
        seqOf[opId] = seq;
        cidOf[opId] = cid;
        fieldsOf[opId] = TrainingLedger.OpFields(f.head, keccak256(bytes(cid)), keccak256(bytes(cid)), bytes32(nonce), bytes32(0));
        opIdAt[k][seq] = opId;
    }

    /// Re-record (replay) an existing op, as its own fork's owner, on its fork or the other: must always revert.
    function replay(uint256 pick, bool otherFork) external {
        (,, uint256 ops,) = ledger.counts();
        if (ops == 0) return;
        uint256 opId = (pick % ops) + 1;
        uint256 k = forkIndexOf[opId];
        uint256 target = otherFork ? forks[1 - k] : forks[k];
        TrainingLedger.OpFields memory o = fieldsOf[opId];
        vm.prank(owners[otherFork ? 1 - k : k]);
        try ledger.recordTraining(target, cidOf[opId], cidOf[opId], o.deltaCommitment, o.stateCommitment, opDigestAtRecord[opId]) {
            replaysAccepted += 1; // fail_on_revert is off, so record it for the invariant instead of reverting
        } catch {}
    }

    function setRecorder(uint256 who, address r, bool allowed) external {
        vm.prank(owners[who % 2]);
        ledger.setRecorder(forks[who % 2], r, allowed);
    }

    function exportState(uint256 who) external {
        uint256 k = who % 2;
        uint256 n = ledger.getFork(forks[k]).opCount;
        if (n == 0) return;
        vm.prank(owners[k]);
        ledger.exportModel(forks[k], "bafkstate", fieldsOf[opIdAt[k][n]]);
    }

    /// Register a block key (once; later tries must fail) and publish a "signature" of a block.
    function signBlock(uint256 who, uint256 pick) external {
        uint256 k = who % 2;
        if (ledger.blockKeyOf(owners[k]).keyHash == bytes32(0)) {
            vm.prank(owners[k]);
            ledger.registerBlockKey(keccak256(abi.encode(owners[k])), "bafkkey");
        }
        (,,, uint256 blocks) = ledger.counts();
        if (blocks == 0) return;
        vm.prank(owners[k]);
        ledger.submitBlockSignature((pick % blocks) + 1, "bafksig");
    }

    /// Fork an owner's fork at an arbitrary (possibly missing or unexported) op: only successes count.
    function forkChild(uint256 who, uint256 seq) external {
        uint256 k = who % 2;
        vm.prank(owners[1 - k]);
        try ledger.forkFromExport(forks[k], seq % 5) {} catch {}
    }

    function seal() external {
        (,, uint256 ops,) = ledger.counts();
        if (ops == ledger.sealedOpCount()) return;
        uint256 blockId = ledger.sealBlock();
        rootAtSeal[blockId] = ledger.getBlock(blockId).root;
    }

    function fund(uint256 amount) external {
        amount = (amount % 5 ether) + 1;
        vm.prank(funder);
        ledger.fundRewards(amount);
    }

    uint256 public constant EVAL_KEY = 0xE7A1;
    uint256 public paidClaims;

    /// Claims up to an arbitrary op (possibly another's, unsealed or already paid) with that op's
    /// fields, a lying seq or a random gain, attested by the staked evaluator; only successes count.
    function claim(uint256 who, uint256 pick, uint256 seqLie, uint256 gain) external {
        uint256 k = who % 2;
        (,, uint256 ops,) = ledger.counts();
        if (ops == 0) return;
        uint256 opId = (pick % ops) + 1;
        uint256 seq = seqLie % 4 == 0 ? seqOf[opId] + (seqLie % 3) : seqOf[opId];
        TrainingLedger.QualityAttestation memory a = TrainingLedger.QualityAttestation(
            vm.addr(EVAL_KEY), forks[k], ledger.rewardedThroughSeq(forks[k]) + 1, seq, opDigestAtRecord[opId],
            keccak256("bafkdata"), 5e9, 5e9 - (gain % 5e7)
        );
        (uint8 v, bytes32 r, bytes32 s_) = vm.sign(EVAL_KEY, ledger.attestationDigest(a));
        vm.prank(owners[k]);
        try ledger.submitRewardClaim(a, abi.encodePacked(r, s_, v), "bafkdata", opId, fieldsOf[opId]) {
            require(forkIndexOf[opId] == k && seqOf[opId] == seq, "accepted a claim for an op that is not the claimed one");
        } catch {}
    }

    /// Finalize or reject (as the referee) the pending claim of a fork, after or before its window.
    function settle(uint256 who, bool reject, uint256 wait) external {
        uint256 k = who % 2;
        uint256 id = ledger.pendingClaimOf(forks[k]);
        if (id == 0) return;
        vm.warp(block.timestamp + (wait % 2 days));
        TrainingLedger.RewardClaim memory c = ledger.getRewardClaim(id);
        uint256 before = token.balanceOf(owners[k]);
        if (reject) {
            vm.prank(address(0xA11CE));
            try ledger.rejectRewardClaim(id, "re-check") {} catch {}
            return;
        }
        try ledger.finalizeRewardClaim(id) {
            for (uint256 s = c.fromSeq; s <= c.toSeq; ++s) timesPaid[opIdAt[k][s]] += 1;
            paidSum += c.amount;
            paidClaims += 1;
            require(token.balanceOf(owners[k]) - before == c.amount, "paid amount");
            require(c.amount <= (uint256(c.toSeq) - c.fromSeq + 1) * ledger.rewardPerOp(), "more than one reward per op");
        } catch {}
    }
}

contract TrainingLedgerInvariantTest is Test {
    LoyalToken token;
    TrainingLedger ledger;
    LedgerHandler handler;
    address admin = address(0xA11CE);

    function setUp() public {
        token = new LoyalToken(admin, 0);
        Staking staking = new Staking(token, 3 days, admin);
        ledger = new TrainingLedger(token, staking, 1 ether, TrainingLedger.QualityPolicy(100 ether, 1e6, 1 days, 2), admin);
        vm.startPrank(admin);
        staking.grantRole(staking.MODULE_ROLE(), address(ledger));
        staking.grantRole(staking.LOCKER_ROLE(), address(ledger));
        uint256 base = ledger.registerBaseModel("bafkreibase", "tiny");
        token.mint(admin, 1_000_000 ether);
        token.approve(address(ledger), type(uint256).max);
        ledger.fundRewards(3 ether);
        address evaluator = vm.addr(0xE7A1);
        token.mint(evaluator, 1_000 ether);
        vm.stopPrank();
        vm.startPrank(evaluator);
        token.approve(address(staking), 1_000 ether);
        staking.stake(1_000 ether);
        vm.stopPrank();
        handler = new LedgerHandler(token, ledger, admin, base);
        targetContract(address(handler));
    }

    function invariant_paidNeverExceedsFunded() public view {
        assertLe(ledger.totalPaid(), ledger.totalFunded(), "paid <= funded");
        assertEq(ledger.totalPaid(), handler.paidSum(), "paid matches successful claims");
        assertEq(token.balanceOf(address(ledger)), ledger.rewardPool() + ledger.rewardsReserved(), "pool is backed");
        assertEq(ledger.totalFunded() - ledger.totalPaid(), ledger.rewardPool() + ledger.rewardsReserved(), "pool accounting");
    }

    /// Under any sequence of calls, no recorded op and no sealed block root ever changes.
    function invariant_recordedOpsAndRootsNeverChange() public view {
        (,, uint256 ops, uint256 blocks) = ledger.counts();
        for (uint256 op = 1; op <= ops; ++op) {
            assertEq(ledger.opHashOf(op), handler.opDigestAtRecord(op), "op changed");
        }
        for (uint256 b = 1; b <= blocks; ++b) {
            assertEq(ledger.getBlock(b).root, handler.rootAtSeal(b), "root changed");
        }
        assertEq(handler.replaysAccepted(), 0, "a replayed op was accepted");
    }

    function invariant_eachOpPaidAtMostOnce() public view {
        (,, uint256 ops,) = ledger.counts();
        for (uint256 op = 1; op <= ops; ++op) {
            assertLe(handler.timesPaid(op), 1, "op paid twice");
            uint256 fork = handler.forks(handler.forkIndexOf(op));
            assertTrue(handler.timesPaid(op) == 0 || ledger.rewardedThroughSeq(fork) >= handler.seqOf(op), "paid op is marked");
            assertTrue(handler.timesPaid(op) == 1 || ledger.rewardedThroughSeq(fork) < handler.seqOf(op), "marked op was paid");
        }
    }
}
