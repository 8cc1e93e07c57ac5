// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test, Vm} from "../utils/Test.sol";
import {PersonnelRegistry} from "../../contracts/dao/PersonnelRegistry.sol";
import {DaoGovernor} from "../../contracts/dao/DaoGovernor.sol";
import {DaoModelRegistry} from "../../contracts/dao/DaoModelRegistry.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

abstract contract DaoGovernorBase is Test {
    PersonnelRegistry personnel;
    DaoGovernor gov;
    DaoModelRegistry models;

    // Safety track s1..s3, Policy track p1..p3 (tier = index); keys let us sign ballots.
    uint256[7] pk;
    address s1;
    address s2;
    address s3;
    address p1;
    address p2;
    address p3;
    address outsider = address(0xBAD);

    uint8 constant SAFETY = 4; // 1 << Track.Safety
    uint8 constant BOTH = 6;
    uint16 constant RULE_QUORUM = 6667;
    uint16 constant RULE_THRESHOLD = 7500;


    function setUp() public virtual {
        vm.warp(1_000_000);
        personnel = new PersonnelRegistry(address(this));
        for (uint256 i = 1; i <= 6; ++i) {
            pk[i] = 0xA000 + i;
        }
        s1 = vm.addr(pk[1]);
        s2 = vm.addr(pk[2]);
        s3 = vm.addr(pk[3]);
        p1 = vm.addr(pk[4]);
        p2 = vm.addr(pk[5]);
        p3 = vm.addr(pk[6]);
        personnel.admit(s1, PersonnelRegistry.Track.Safety, 1, bytes32("v1"));
        personnel.admit(s2, PersonnelRegistry.Track.Safety, 2, bytes32("v2"));
        personnel.admit(s3, PersonnelRegistry.Track.Safety, 3, bytes32("v3"));
        personnel.admit(p1, PersonnelRegistry.Track.Policy, 1, bytes32("v4"));
        personnel.admit(p2, PersonnelRegistry.Track.Policy, 2, bytes32("v5"));
        personnel.admit(p3, PersonnelRegistry.Track.Policy, 3, bytes32("v6"));

        DaoGovernor.TypeConfig[4] memory c;
        c[0] = DaoGovernor.TypeConfig(1, 12, SAFETY, 5000, 5000, 1 hours, 3 days, 7 days); // Safety: safety tiers 2,3
        c[1] = DaoGovernor.TypeConfig(1, 14, BOTH, 3000, 5000, 1 hours, 2 days, 7 days); // Review: everyone
        c[2] = DaoGovernor.TypeConfig(2, 12, BOTH, 5000, 6667, 1 days, 5 days, 14 days); // System: tiers 2,3, more than 2/3
        c[3] = DaoGovernor.TypeConfig(3, 8, BOTH, 5000, 5000, 0, 1 hours, 1 days); // Emergency: tier 3, 1 h
        gov = new DaoGovernor(personnel, c, RULE_QUORUM, RULE_THRESHOLD);
        personnel.transferOwnership(address(gov));
        models = new DaoModelRegistry(address(gov), 2);
        DaoGovernor.AllowedAction[] memory allow = new DaoGovernor.AllowedAction[](6);
        allow[0] = DaoGovernor.AllowedAction(DaoGovernor.ProposalType.Review, address(models), DaoModelRegistry.approve.selector);
        allow[1] = DaoGovernor.AllowedAction(DaoGovernor.ProposalType.Safety, address(models), DaoModelRegistry.approve.selector);
        allow[2] = DaoGovernor.AllowedAction(DaoGovernor.ProposalType.System, address(personnel), PersonnelRegistry.admit.selector);
        allow[3] = DaoGovernor.AllowedAction(DaoGovernor.ProposalType.Emergency, address(personnel), PersonnelRegistry.admit.selector);
        allow[4] = DaoGovernor.AllowedAction(DaoGovernor.ProposalType.Emergency, address(models), DaoModelRegistry.revoke.selector);
        allow[5] = DaoGovernor.AllowedAction(DaoGovernor.ProposalType.System, address(personnel), PersonnelRegistry.remove.selector);
        gov.bootstrapAllow(allow);
        gov.sealBootstrap();
        vm.warp(block.timestamp + 1);
    }

    // ---------------------------------------------------------------- helpers

    function _approveModelCall(uint256 modelId) internal view returns (address[] memory t, uint256[] memory v, bytes[] memory d) {
        t = new address[](1);
        v = new uint256[](1);
        d = new bytes[](1);
        t[0] = address(models);
        d[0] = abi.encodeCall(
            DaoModelRegistry.approve, (modelId, 2, DaoModelRegistry.Scope.Narrow, "triage", 1000, uint64(block.timestamp + 365 days))
        );
    }

    function _admitCall(address who, uint8 tier) internal view returns (address[] memory t, uint256[] memory v, bytes[] memory d) {
        t = new address[](1);
        v = new uint256[](1);
        d = new bytes[](1);
        t[0] = address(personnel);
        d[0] = abi.encodeCall(PersonnelRegistry.admit, (who, PersonnelRegistry.Track.Policy, tier, bytes32("vet")));
    }

    function _propose(address proposer, DaoGovernor.ProposalType pt, address[] memory t, uint256[] memory v, bytes[] memory d, string memory desc)
        internal
        returns (uint256 id)
    {
        vm.prank(proposer);
        id = gov.proposeTyped(pt, t, v, d, desc);
    }

    function _vote(address voter, uint256 id, uint8 support) internal {
        vm.prank(voter);
        gov.castVote(id, support);
    }

    function _ballotDigest(uint256 id, uint8 support, address voter, uint256 nonce) internal view returns (bytes32) {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("LoyalDAO"),
                keccak256("1"),
                block.chainid,
                address(gov)
            )
        );
        bytes32 structHash = keccak256(abi.encode(gov.BALLOT_TYPEHASH(), id, support, voter, nonce));
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

}

contract DaoGovernorTest is DaoGovernorBase {
    // ---------------------------------------------------------------- lifecycle

    function test_reviewProposal_fullLifecycle_executesModelApproval() public {
        uint256 modelId = models.submit(keccak256("weights"), "ipfs://m");
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _approveModelCall(modelId);

        vm.expectEmit(true, false, false, true, address(gov));
        emit DaoGovernor.ProposalTyped(gov.hashProposal(t, v, d, keccak256("approve m1")), DaoGovernor.ProposalType.Review);
        uint256 id = _propose(p1, DaoGovernor.ProposalType.Review, t, v, d, "approve m1");

        assertEq(uint256(gov.state(id)), uint256(IGovernor.ProposalState.Pending), "pending");
        assertEq(gov.proposalDeadline(id) - gov.proposalSnapshot(id), 2 days, "review period");
        vm.warp(block.timestamp + 1 hours + 1);
        assertEq(uint256(gov.state(id)), uint256(IGovernor.ProposalState.Active), "active");
        // 6 eligible, 30% quorum -> 2 votes.
        assertEq(gov.proposalQuorum(id), 2, "quorum");
        _vote(s1, id, 1);
        _vote(p2, id, 1);
        _vote(s3, id, 0);

        vm.expectRevert(); // not succeeded yet: still Active
        gov.execute(t, v, d, keccak256("approve m1"));

        vm.warp(gov.proposalDeadline(id) + 1);
        assertEq(uint256(gov.state(id)), uint256(IGovernor.ProposalState.Succeeded), "succeeded");
        gov.execute(t, v, d, keccak256("approve m1"));
        assertEq(uint256(gov.state(id)), uint256(IGovernor.ProposalState.Executed), "executed");
        assertTrue(models.isCertified(modelId), "model approved by vote");
    }

    function test_defeated_whenThresholdMissed_cannotExecute() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _admitCall(address(0xC0FFEE), 1);
        uint256 id = _propose(p2, DaoGovernor.ProposalType.System, t, v, d, "admit");
        vm.warp(block.timestamp + 1 days + 1);
        // System: For must exceed 66.67% of For+Against; 2 for vs 1 against = 66.66% -> defeated.
        _vote(s2, id, 1);
        _vote(p3, id, 1);
        _vote(s3, id, 0);
        vm.warp(gov.proposalDeadline(id) + 1);
        assertEq(uint256(gov.state(id)), uint256(IGovernor.ProposalState.Defeated), "defeated");
        expectExecuteRefused(id, IGovernor.ProposalState.Defeated);
        gov.execute(t, v, d, keccak256("admit"));
        assertTrue(!personnel.isActive(address(0xC0FFEE)), "not admitted");
    }

    function test_defeated_withoutQuorum() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _admitCall(address(0xC0FFEE), 1);
        uint256 id = _propose(p2, DaoGovernor.ProposalType.System, t, v, d, "admit");
        vm.warp(block.timestamp + 1 days + 1);
        _vote(s2, id, 1); // 1 of 4 eligible; quorum 2
        vm.warp(gov.proposalDeadline(id) + 1);
        assertEq(uint256(gov.state(id)), uint256(IGovernor.ProposalState.Defeated), "no quorum");
    }

    function test_systemProposal_admitsPersonnelAndChangesTier() public {
        address newcomer = address(0xC0FFEE);
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _admitCall(newcomer, 1);
        uint256 id = _propose(p2, DaoGovernor.ProposalType.System, t, v, d, "admit");
        vm.warp(block.timestamp + 1 days + 1);
        _vote(s2, id, 1);
        _vote(p3, id, 1);
        _vote(s3, id, 1);
        vm.warp(gov.proposalDeadline(id) + 1);
        gov.execute(t, v, d, keccak256("admit"));
        (PersonnelRegistry.Track track, uint8 tier) = personnel.roleOf(newcomer);
        assertEq(uint256(track), uint256(PersonnelRegistry.Track.Policy), "track");
        assertEq(tier, 1, "tier");
    }

    // ---------------------------------------------------------------- eligibility

    function test_vote_unregistered_reverts() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _approveModelCall(1);
        uint256 id = _propose(p1, DaoGovernor.ProposalType.Review, t, v, d, "x");
        vm.warp(block.timestamp + 1 hours + 1);
        vm.expectRevert(
            abi.encodeWithSelector(DaoGovernor.VoterNotEligible.selector, id, outsider, PersonnelRegistry.Track.None, 0)
        );
        _vote(outsider, id, 1);
    }

    function test_vote_wrongTier_reverts() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _approveModelCall(1);
        uint256 id = _propose(s1, DaoGovernor.ProposalType.Safety, t, v, d, "safety");
        vm.warp(block.timestamp + 1 hours + 1);
        vm.expectRevert(
            abi.encodeWithSelector(DaoGovernor.VoterNotEligible.selector, id, s1, PersonnelRegistry.Track.Safety, 1)
        );
        _vote(s1, id, 1); // tier 1 may propose Safety but not vote on it
    }

    function test_vote_wrongTrack_reverts() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _approveModelCall(1);
        uint256 id = _propose(s1, DaoGovernor.ProposalType.Safety, t, v, d, "safety");
        vm.warp(block.timestamp + 1 hours + 1);
        vm.expectRevert(
            abi.encodeWithSelector(DaoGovernor.VoterNotEligible.selector, id, p3, PersonnelRegistry.Track.Policy, 3)
        );
        _vote(p3, id, 1); // Policy tier 3 is not on the Safety track
    }

    function test_vote_admittedAfterSnapshot_reverts() public {
        // Admit `late` through an emergency vote, after a Review proposal's snapshot.
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _approveModelCall(1);
        uint256 review = _propose(p1, DaoGovernor.ProposalType.Review, t, v, d, "review");
        vm.warp(block.timestamp + 1 hours + 1);
        address late = address(0x1A7E);
        (address[] memory t2, uint256[] memory v2, bytes[] memory d2) = _admitCall(late, 3);
        uint256 em = _propose(s3, DaoGovernor.ProposalType.Emergency, t2, v2, d2, "admit late");
        vm.warp(block.timestamp + 1);
        _vote(s3, em, 1);
        vm.warp(gov.proposalDeadline(em) + 1);
        gov.execute(t2, v2, d2, keccak256("admit late"));
        assertTrue(personnel.isActive(late), "admitted");
        vm.expectRevert(
            abi.encodeWithSelector(DaoGovernor.VoterNotEligible.selector, review, late, PersonnelRegistry.Track.None, 0)
        );
        _vote(late, review, 1);
    }

    function test_propose_tierTooLow_reverts() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _admitCall(address(0xC0FFEE), 1);
        vm.expectRevert(abi.encodeWithSelector(DaoGovernor.ProposerTierTooLow.selector, p2, 2, 3));
        _propose(p2, DaoGovernor.ProposalType.Emergency, t, v, d, "e");
    }

    function test_propose_unregistered_reverts() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _admitCall(address(0xC0FFEE), 1);
        vm.expectRevert(abi.encodeWithSelector(IGovernor.GovernorInsufficientProposerVotes.selector, outsider, 0, 1));
        _propose(outsider, DaoGovernor.ProposalType.Review, t, v, d, "e");
    }

    function test_doubleVote_reverts() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _approveModelCall(1);
        uint256 id = _propose(p1, DaoGovernor.ProposalType.Review, t, v, d, "x");
        vm.warp(block.timestamp + 1 hours + 1);
        _vote(p1, id, 1);
        vm.expectRevert(abi.encodeWithSelector(IGovernor.GovernorAlreadyCastVote.selector, p1));
        _vote(p1, id, 1);
    }

    // ---------------------------------------------------------------- emergency window

    function test_emergency_shortWindow() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _admitCall(address(0xC0FFEE), 2);
        uint256 id = _propose(p3, DaoGovernor.ProposalType.Emergency, t, v, d, "urgent");
        assertEq(gov.proposalSnapshot(id), block.timestamp, "no delay");
        assertEq(gov.proposalDeadline(id), block.timestamp + 1 hours, "1 h window");
        vm.warp(block.timestamp + 1);
        _vote(p3, id, 1);
        vm.warp(block.timestamp + 1 hours);
        vm.expectRevert(); // voting closed after the short window
        _vote(s3, id, 1);
        assertEq(uint256(gov.state(id)), uint256(IGovernor.ProposalState.Succeeded), "1 of 2 tier-3 = 50% quorum");
        gov.execute(t, v, d, keccak256("urgent"));
        assertTrue(personnel.isActive(address(0xC0FFEE)), "executed");
    }

    function test_succeeded_notExecutedInWindow_expires() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _admitCall(address(0xC0FFEE), 2);
        uint256 id = _propose(p3, DaoGovernor.ProposalType.Emergency, t, v, d, "too late");
        vm.warp(block.timestamp + 1);
        _vote(p3, id, 1);
        vm.warp(gov.proposalDeadline(id) + 1 days);
        assertEq(uint256(gov.state(id)), uint256(IGovernor.ProposalState.Succeeded), "last second of the window");
        vm.warp(gov.proposalDeadline(id) + 1 days + 1);
        assertEq(uint256(gov.state(id)), uint256(IGovernor.ProposalState.Expired), "expired");
        expectExecuteRefused(id, IGovernor.ProposalState.Expired);
        gov.execute(t, v, d, keccak256("too late"));
        assertTrue(!personnel.isActive(address(0xC0FFEE)), "not admitted");
    }

    function test_plainPropose_isSystemType() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _admitCall(address(0xC0FFEE), 2);
        vm.prank(p2);
        uint256 id = gov.propose(t, v, d, "plain");
        assertEq(uint256(gov.proposalType(id)), uint256(DaoGovernor.ProposalType.System), "system");
        assertEq(gov.proposalDeadline(id) - gov.proposalSnapshot(id), 5 days, "system period");
        assertEq(gov.votingPeriod(), 5 days, "default period outside proposals");
    }

    // ---------------------------------------------------------------- vote by signature

    function test_castVoteBySig_countsSignerOnce() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _approveModelCall(1);
        uint256 id = _propose(p1, DaoGovernor.ProposalType.Review, t, v, d, "sig");
        vm.warp(block.timestamp + 1 hours + 1);
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(pk[2], _ballotDigest(id, 1, s2, gov.nonces(s2)));
        bytes memory sig = abi.encodePacked(r, s, sv);
        vm.prank(outsider); // anyone relays
        gov.castVoteBySig(id, 1, s2, sig);
        assertTrue(gov.hasVoted(id, s2), "signer voted");
        (, uint256 forVotes,) = gov.proposalVotes(id);
        assertEq(forVotes, 1, "one vote");
        vm.expectRevert(); // replay: nonce consumed
        gov.castVoteBySig(id, 1, s2, sig);
    }

    function test_castVoteBySig_wrongSigner_reverts() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _approveModelCall(1);
        uint256 id = _propose(p1, DaoGovernor.ProposalType.Review, t, v, d, "sig");
        vm.warp(block.timestamp + 1 hours + 1);
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(pk[3], _ballotDigest(id, 1, s2, 0));
        vm.expectRevert(abi.encodeWithSelector(IGovernor.GovernorInvalidSignature.selector, s2));
        gov.castVoteBySig(id, 1, s2, abi.encodePacked(r, s, sv));
    }

    function test_castVoteBySig_unregisteredSigner_reverts() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _approveModelCall(1);
        uint256 id = _propose(p1, DaoGovernor.ProposalType.Review, t, v, d, "sig");
        vm.warp(block.timestamp + 1 hours + 1);
        uint256 key = 0xDEAD;
        address stranger = vm.addr(key);
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(key, _ballotDigest(id, 1, stranger, 0));
        vm.expectRevert(
            abi.encodeWithSelector(DaoGovernor.VoterNotEligible.selector, id, stranger, PersonnelRegistry.Track.None, 0)
        );
        gov.castVoteBySig(id, 1, stranger, abi.encodePacked(r, s, sv));
    }

    // ---------------------------------------------------------------- registry guards

    function test_registry_onlyGovernance() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        personnel.admit(address(0xC0FFEE), PersonnelRegistry.Track.Policy, 1, bytes32(0));
        vm.prank(p3);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, p3));
        personnel.setRole(p1, PersonnelRegistry.Track.Policy, 3);
    }

    function _oneCall(address target, bytes memory data)
        internal
        pure
        returns (address[] memory t, uint256[] memory v, bytes[] memory d)
    {
        t = new address[](1);
        v = new uint256[](1);
        d = new bytes[](1);
        t[0] = target;
        d[0] = data;
    }

    /// @dev A System proposal voted For by s2, s3, p2, p3 (4 of the 4 tiers 2-3), then executed.
    function _passSystem(address[] memory t, uint256[] memory v, bytes[] memory d, string memory desc) internal {
        uint256 id = _propose(p2, DaoGovernor.ProposalType.System, t, v, d, desc);
        vm.warp(block.timestamp + 1 days + 1);
        _vote(s2, id, 1);
        _vote(s3, id, 1);
        _vote(p2, id, 1);
        _vote(p3, id, 1);
        vm.warp(gov.proposalDeadline(id) + 1);
        gov.execute(t, v, d, keccak256(bytes(desc)));
    }

    function test_setTypeConfig_onlyBySystemProposal_andValidated() public {
        DaoGovernor.TypeConfig memory bad = DaoGovernor.TypeConfig(1, 1, BOTH, 5000, 5000, 0, 1 hours, 1 days); // tier 0 bit
        vm.expectRevert(abi.encodeWithSelector(IGovernor.GovernorOnlyExecutor.selector, address(this)));
        gov.setTypeConfig(DaoGovernor.ProposalType.Review, bad);
        vm.prank(address(gov)); // the governor's address, but no System proposal executing
        vm.expectRevert(DaoGovernor.RuleChangeOutsideSystem.selector);
        gov.setTypeConfig(DaoGovernor.ProposalType.Review, bad);
        (address[] memory t, uint256[] memory v, bytes[] memory d) =
            _oneCall(address(gov), abi.encodeCall(DaoGovernor.setTypeConfig, (DaoGovernor.ProposalType.Review, bad)));
        uint256 id = _propose(p2, DaoGovernor.ProposalType.System, t, v, d, "bad rules");
        vm.warp(block.timestamp + 1 days + 1);
        _vote(s2, id, 1);
        _vote(s3, id, 1);
        _vote(p2, id, 1);
        _vote(p3, id, 1);
        vm.warp(gov.proposalDeadline(id) + 1);
        vm.expectRevert(
            abi.encodeWithSelector(DaoGovernor.InvalidTypeConfig.selector, DaoGovernor.ProposalType.Review)
        );
        gov.execute(t, v, d, keccak256("bad rules"));
    }

    function test_ruleChange_appliesOnlyToLaterProposals() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _approveModelCall(1);
        uint256 before = _propose(p1, DaoGovernor.ProposalType.Review, t, v, d, "before");
        // by a System vote: Review becomes tier-3 only
        (address[] memory t2, uint256[] memory v2, bytes[] memory d2) = _oneCall(
            address(gov),
            abi.encodeCall(
                DaoGovernor.setTypeConfig,
                (DaoGovernor.ProposalType.Review, DaoGovernor.TypeConfig(1, 8, BOTH, 3000, 5000, 1 hours, 2 days, 7 days))
            )
        );
        _passSystem(t2, v2, d2, "review: tier 3 only");
        uint256 afterId = _propose(p1, DaoGovernor.ProposalType.Review, t, v, d, "after");
        vm.warp(block.timestamp + 1 hours + 1);
        vm.expectRevert(
            abi.encodeWithSelector(DaoGovernor.VoterNotEligible.selector, afterId, p1, PersonnelRegistry.Track.Policy, 1)
        );
        _vote(p1, afterId, 1);
        assertEq(gov.proposalRules(before).tierMask, 14, "kept rules");
        assertEq(gov.proposalRules(afterId).tierMask, 8, "new rules");
    }

    function test_whistleblower_anyoneReports_emptyRejected() public {
        vm.prank(outsider);
        assertEq(personnel.fileReport(bytes32("model-7"), keccak256("report body")), 1, "report id");
        vm.expectRevert(PersonnelRegistry.EmptyReport.selector);
        personnel.fileReport(bytes32("model-7"), bytes32(0));
    }

    function test_eligibleCount_followsCheckpoints() public {
        uint256 before = block.timestamp;
        vm.warp(before + 10);
        vm.prank(address(gov));
        personnel.remove(s2, bytes32("left"));
        assertEq(personnel.eligibleCount(12, SAFETY, before), 2, "s2, s3 at snapshot");
        assertEq(personnel.eligibleCount(12, SAFETY, block.timestamp), 1, "s3 now");
        (, uint8 tierThen) = personnel.roleAt(s2, before);
        assertEq(tierThen, 2, "past tier kept");
    }

    /// @dev Fuzz: whoever votes, only addresses holding an eligible role at the snapshot are counted,
    /// and For+Against+Abstain never exceeds the number of eligible personnel.
    function testFuzz_onlyEligibleCounted(uint256 seed) public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _approveModelCall(1);
        uint256 id = _propose(s1, DaoGovernor.ProposalType.Safety, t, v, d, "fuzz");
        vm.warp(block.timestamp + 1 hours + 1);
        address[7] memory cands = [s1, s2, s3, p1, p2, p3, address(uint160(seed | 1))];
        for (uint256 i = 0; i < 7; ++i) {
            address who = cands[(seed >> (i * 8)) % 7];
            uint8 support = uint8((seed >> (i * 8 + 4)) % 3);
            vm.prank(who);
            try gov.castVote(id, support) {
                assertTrue(who == s2 || who == s3, "only safety tiers 2-3 count");
            } catch {}
        }
        (uint256 a, uint256 f, uint256 ab) = gov.proposalVotes(id);
        assertLe(a + f + ab, 2, "votes <= eligible");
    }

    // ---------------------------------------------------------------- types bind actions

    function test_propose_actionOutsideType_reverts() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _admitCall(address(0xC0FFEE), 3);
        vm.expectRevert(
            abi.encodeWithSelector(
                DaoGovernor.ActionNotAllowed.selector,
                DaoGovernor.ProposalType.Review,
                address(personnel),
                PersonnelRegistry.admit.selector
            )
        );
        _propose(p1, DaoGovernor.ProposalType.Review, t, v, d, "admit by review");
    }

    function test_emergencyAction_byNonEmergencyProposal_reverts() public {
        (address[] memory t, uint256[] memory v, bytes[] memory d) =
            _oneCall(address(models), abi.encodeCall(DaoModelRegistry.revoke, (1, bytes32("unsafe"))));
        for (uint8 i = 0; i < 3; ++i) { // Safety, Review, System
            vm.expectRevert(
                abi.encodeWithSelector(
                    DaoGovernor.ActionNotAllowed.selector, DaoGovernor.ProposalType(i), address(models), DaoModelRegistry.revoke.selector
                )
            );
            _propose(p3, DaoGovernor.ProposalType(i), t, v, d, "revoke");
        }
        _propose(p3, DaoGovernor.ProposalType.Emergency, t, v, d, "revoke"); // the one type that may
    }

    function test_ruleSetters_onlySystem_neverListable() public {
        DaoGovernor.TypeConfig memory loose = DaoGovernor.TypeConfig(1, 14, BOTH, 1, 0, 0, 1 hours, 1 days);
        bytes memory widen = abi.encodeCall(DaoGovernor.setTypeConfig, (DaoGovernor.ProposalType.Emergency, loose));
        bytes memory list = abi.encodeCall(
            DaoGovernor.setActionAllowed,
            (DaoGovernor.ProposalType.Review, address(personnel), PersonnelRegistry.admit.selector, true)
        );
        for (uint8 i = 0; i < 4; ++i) {
            if (i == uint8(DaoGovernor.ProposalType.System)) continue;
            (address[] memory t, uint256[] memory v, bytes[] memory d) = _oneCall(address(gov), widen);
            vm.expectRevert(
                abi.encodeWithSelector(
                    DaoGovernor.ActionNotAllowed.selector, DaoGovernor.ProposalType(i), address(gov), DaoGovernor.setTypeConfig.selector
                )
            );
            _propose(p3, DaoGovernor.ProposalType(i), t, v, d, "widen");
            (t, v, d) = _oneCall(address(gov), list);
            vm.expectRevert(
                abi.encodeWithSelector(
                    DaoGovernor.ActionNotAllowed.selector, DaoGovernor.ProposalType(i), address(gov), DaoGovernor.setActionAllowed.selector
                )
            );
            _propose(p3, DaoGovernor.ProposalType(i), t, v, d, "list");
        }
        // relay would escape every list: no type may call it, not even System
        (address[] memory t3, uint256[] memory v3, bytes[] memory d3) =
            _oneCall(address(gov), abi.encodeCall(gov.relay, (address(personnel), 0, "")));
        vm.expectRevert(
            abi.encodeWithSelector(
                DaoGovernor.ActionNotAllowed.selector, DaoGovernor.ProposalType.System, address(gov), gov.relay.selector
            )
        );
        _propose(p3, DaoGovernor.ProposalType.System, t3, v3, d3, "relay");
        // and no vote can put a governor function on a list
        (t3, v3, d3) = _oneCall(
            address(gov),
            abi.encodeCall(DaoGovernor.setActionAllowed, (DaoGovernor.ProposalType.Review, address(gov), gov.relay.selector, true))
        );
        uint256 id = _propose(p2, DaoGovernor.ProposalType.System, t3, v3, d3, "list relay");
        vm.warp(block.timestamp + 1 days + 1);
        _vote(s2, id, 1);
        _vote(s3, id, 1);
        _vote(p2, id, 1);
        _vote(p3, id, 1);
        vm.warp(gov.proposalDeadline(id) + 1);
        vm.expectRevert(abi.encodeWithSelector(DaoGovernor.GovernorActionNotListable.selector, gov.relay.selector));
        gov.execute(t3, v3, d3, keccak256("list relay"));
        assertTrue(!gov.isActionAllowed(DaoGovernor.ProposalType.Review, address(gov), gov.relay.selector), "not listed");
    }

    function test_ruleChange_needsItsOwnSupermajority() public {
        bytes memory list = abi.encodeCall(
            DaoGovernor.setActionAllowed,
            (DaoGovernor.ProposalType.Review, address(personnel), PersonnelRegistry.admit.selector, true)
        );
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _oneCall(address(gov), list);
        uint256 rules = _propose(p2, DaoGovernor.ProposalType.System, t, v, d, "review may admit");
        (address[] memory t2, uint256[] memory v2, bytes[] memory d2) = _admitCall(address(0xC0FFEE), 1);
        uint256 plain = _propose(p2, DaoGovernor.ProposalType.System, t2, v2, d2, "admit");
        assertTrue(gov.proposalChangesRules(rules) && !gov.proposalChangesRules(plain), "flagged");
        vm.warp(block.timestamp + 1 days + 1);
        // 3 For, 1 Against = 75%: enough for System (> 66.67%), not for a rule change (> 75%)
        for (uint256 i = 0; i < 2; ++i) {
            uint256 id = i == 0 ? rules : plain;
            _vote(s2, id, 1);
            _vote(s3, id, 1);
            _vote(p3, id, 1);
            _vote(p2, id, 0);
        }
        vm.warp(gov.proposalDeadline(rules) + 1);
        assertEq(uint256(gov.state(plain)), uint256(IGovernor.ProposalState.Succeeded), "plain System passes");
        assertEq(uint256(gov.state(rules)), uint256(IGovernor.ProposalState.Defeated), "rule change needs more");
        expectExecuteRefused(rules, IGovernor.ProposalState.Defeated);
        gov.execute(t, v, d, keccak256("review may admit"));
        assertTrue(!gov.isActionAllowed(DaoGovernor.ProposalType.Review, address(personnel), PersonnelRegistry.admit.selector), "unchanged");
    }

    function test_narrowedList_stopsProposalsCreatedBefore() public {
        uint256 modelId = models.submit(keccak256("w"), "ipfs://m");
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _approveModelCall(modelId);
        uint256 review = _propose(p1, DaoGovernor.ProposalType.Review, t, v, d, "approve");
        (address[] memory t2, uint256[] memory v2, bytes[] memory d2) = _oneCall(
            address(gov),
            abi.encodeCall(
                DaoGovernor.setActionAllowed,
                (DaoGovernor.ProposalType.Review, address(models), DaoModelRegistry.approve.selector, false)
            )
        );
        uint256 sys = _propose(p2, DaoGovernor.ProposalType.System, t2, v2, d2, "narrow review");
        vm.warp(block.timestamp + 1 days + 1);
        _vote(p1, review, 1);
        _vote(p2, review, 1);
        _vote(s2, sys, 1);
        _vote(s3, sys, 1);
        _vote(p2, sys, 1);
        _vote(p3, sys, 1);
        vm.warp(gov.proposalDeadline(sys) + 1);
        gov.execute(t2, v2, d2, keccak256("narrow review"));
        assertEq(uint256(gov.state(review)), uint256(IGovernor.ProposalState.Succeeded), "review passed");
        vm.expectRevert(
            abi.encodeWithSelector(
                DaoGovernor.ActionNotAllowed.selector, DaoGovernor.ProposalType.Review, address(models), DaoModelRegistry.approve.selector
            )
        );
        gov.execute(t, v, d, keccak256("approve"));
        assertTrue(!models.isCertified(modelId), "not approved");
    }

    function test_vote_unknownProposal_namedNonexistent() public {
        vm.expectRevert(abi.encodeWithSelector(IGovernor.GovernorNonexistentProposal.selector, 42));
        _vote(p3, 42, 1);
    }

    function test_bootstrap_deployerOnly_once() public {
        DaoGovernor.AllowedAction[] memory allow = new DaoGovernor.AllowedAction[](1);
        allow[0] = DaoGovernor.AllowedAction(DaoGovernor.ProposalType.Review, address(personnel), PersonnelRegistry.admit.selector);
        vm.expectRevert(DaoGovernor.BootstrapClosed.selector);
        gov.bootstrapAllow(allow);
        vm.prank(p3);
        vm.expectRevert(abi.encodeWithSelector(DaoGovernor.NotBootstrapper.selector, p3));
        gov.bootstrapAllow(allow);
        vm.expectRevert(DaoGovernor.BootstrapClosed.selector);
        gov.sealBootstrap();
    }

    /// @dev Fuzz: whatever a non-System proposal calls on the governor, it is refused at propose.
    function testFuzz_nonSystemNeverCallsTheGovernor(uint8 typeSeed, bytes4 selector, bytes calldata tail) public {
        DaoGovernor.ProposalType pt = DaoGovernor.ProposalType([0, 1, 3][typeSeed % 3]);
        (address[] memory t, uint256[] memory v, bytes[] memory d) = _oneCall(address(gov), abi.encodePacked(selector, tail));
        vm.expectRevert(abi.encodeWithSelector(DaoGovernor.ActionNotAllowed.selector, pt, address(gov), selector));
        _propose(p3, pt, t, v, d, "fuzz");
    }

    /// @dev The next `execute` must revert because the proposal is in `state`, not Succeeded.
    function expectExecuteRefused(uint256 id, IGovernor.ProposalState state) internal {
        vm.expectRevert(
            abi.encodeWithSelector(
                IGovernor.GovernorUnexpectedProposalState.selector,
                id,
                state,
                bytes32(uint256(1 << uint8(IGovernor.ProposalState.Succeeded)))
            )
        );
    }
}

/// @dev Random non-System proposals (any type but System, any action from a pool that includes the
/// governor's rule setters, relay and emergency powers), votes by everyone eligible, time, execution.
contract NonSystemHandler is Test {
    DaoGovernor gov;
    address[] voters;
    address[] targets;
    bytes[] datas;
    uint256[] public proposals;
    mapping(uint256 => address[]) pTargets;
    mapping(uint256 => bytes[]) pDatas;
    mapping(uint256 => string) pDesc;
    uint256 public created;
    uint256 public executed;

    constructor(DaoGovernor gov_, address[] memory voters_, address[] memory targets_, bytes[] memory datas_) {
        gov = gov_;
        voters = voters_;
        targets = targets_;
        datas = datas_;
    }

    function propose(uint8 typeSeed, uint256 actionSeed, uint8 proposerSeed) external {
        DaoGovernor.ProposalType pt = DaoGovernor.ProposalType([0, 1, 3][typeSeed % 3]);
        uint256 n = 1 + actionSeed % 2;
        address[] memory t = new address[](n);
        uint256[] memory v = new uint256[](n);
        bytes[] memory d = new bytes[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 k = (actionSeed >> (8 * (i + 1))) % targets.length;
            t[i] = targets[k];
            d[i] = datas[k];
        }
        string memory desc = vm.toString(created + 1000 * actionSeed);
        vm.prank(voters[proposerSeed % voters.length]);
        try gov.proposeTyped(pt, t, v, d, desc) returns (uint256 id) {
            proposals.push(id);
            pTargets[id] = t;
            pDatas[id] = d;
            pDesc[id] = desc;
            created++;
        } catch {}
    }

    function voteAll(uint256 seed) external {
        if (proposals.length == 0) return;
        uint256 id = proposals[seed % proposals.length];
        for (uint256 i = 0; i < voters.length; ++i) {
            vm.prank(voters[i]);
            try gov.castVote(id, 1) {} catch {}
        }
    }

    function wait(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 1, 3 days));
    }

    function execute(uint256 seed) external {
        if (proposals.length == 0) return;
        uint256 id = proposals[seed % proposals.length];
        uint256[] memory v = new uint256[](pTargets[id].length);
        try gov.execute(pTargets[id], v, pDatas[id], keccak256(bytes(pDesc[id]))) {
            executed++;
        } catch {}
    }
}

contract NonSystemCannotWidenInvariantTest is DaoGovernorBase {
    NonSystemHandler handler;
    address[] candTargets;
    bytes4[] candSelectors;
    mapping(uint256 => bool) initiallyAllowed; // (type * 64 + candidate)
    bytes32[4] initialConfigs;

    function setUp() public override {
        super.setUp();
        address[] memory voters = new address[](6);
        (voters[0], voters[1], voters[2], voters[3], voters[4], voters[5]) = (s1, s2, s3, p1, p2, p3);
        DaoGovernor.TypeConfig memory loose = DaoGovernor.TypeConfig(1, 14, BOTH, 1, 0, 0, 1 hours, 30 days);
        address[] memory t = new address[](8);
        bytes[] memory d = new bytes[](8);
        t[0] = address(gov);
        d[0] = abi.encodeCall(DaoGovernor.setTypeConfig, (DaoGovernor.ProposalType.Review, loose));
        t[1] = address(gov);
        d[1] = abi.encodeCall(
            DaoGovernor.setActionAllowed, (DaoGovernor.ProposalType.Review, address(personnel), PersonnelRegistry.admit.selector, true)
        );
        t[2] = address(gov);
        d[2] = abi.encodeCall(
            gov.relay,
            (address(gov), 0, abi.encodeCall(DaoGovernor.setTypeConfig, (DaoGovernor.ProposalType.Emergency, loose)))
        );
        t[3] = address(personnel);
        d[3] = abi.encodeCall(PersonnelRegistry.admit, (address(0xBEEF), PersonnelRegistry.Track.Policy, 3, bytes32("x")));
        t[4] = address(models);
        d[4] = abi.encodeCall(DaoModelRegistry.revoke, (1, bytes32("x")));
        t[5] = address(personnel);
        d[5] = abi.encodeCall(PersonnelRegistry.remove, (s3, bytes32("x")));
        t[6] = address(models);
        d[6] = abi.encodeCall(
            DaoModelRegistry.approve, (1, 3, DaoModelRegistry.Scope.General, "x", 10, uint64(block.timestamp + 400 days))
        );
        t[7] = address(gov);
        d[7] = abi.encodeCall(
            DaoGovernor.setActionAllowed, (DaoGovernor.ProposalType.Emergency, address(models), DaoModelRegistry.approve.selector, true)
        );
        models.submit(keccak256("m"), "ipfs://m");
        handler = new NonSystemHandler(gov, voters, t, d);
        for (uint256 i = 0; i < t.length; ++i) {
            candTargets.push(t[i]);
            candSelectors.push(bytes4(d[i]));
        }
        candTargets.push(address(personnel));
        candSelectors.push(PersonnelRegistry.admit.selector);
        candTargets.push(address(models));
        candSelectors.push(DaoModelRegistry.approve.selector);
        for (uint8 pt = 0; pt < 4; ++pt) {
            initialConfigs[pt] = keccak256(abi.encode(gov.typeConfig(DaoGovernor.ProposalType(pt))));
            for (uint256 c = 0; c < candTargets.length; ++c) {
                initiallyAllowed[uint256(pt) * 64 + c] =
                    gov.isActionAllowed(DaoGovernor.ProposalType(pt), candTargets[c], candSelectors[c]);
            }
        }
        targetContract(address(handler));
    }

    /// @dev The handler does reach execution (an allowed Emergency admission), so the invariant runs
    /// over executed proposals, not only refused ones.
    function test_handlerPassesAnAllowedProposal() public {
        handler.propose(2, 3 << 8, 5); // Emergency, action 3 (PersonnelRegistry.admit), proposed by p3
        assertEq(handler.created(), 1, "created");
        handler.wait(1);
        handler.voteAll(0);
        handler.wait(2 hours);
        handler.execute(0);
        assertEq(handler.executed(), 1, "executed");
        assertTrue(personnel.isActive(address(0xBEEF)), "admitted");
        invariant_noTypeGainsPowers();
    }

    function invariant_noTypeGainsPowers() public view {
        for (uint8 pt = 0; pt < 4; ++pt) {
            assertEq(keccak256(abi.encode(gov.typeConfig(DaoGovernor.ProposalType(pt)))), initialConfigs[pt], "rules");
            for (uint256 c = 0; c < candTargets.length; ++c) {
                bool now_ = gov.isActionAllowed(DaoGovernor.ProposalType(pt), candTargets[c], candSelectors[c]);
                assertTrue(!now_ || initiallyAllowed[uint256(pt) * 64 + c], "a type gained a power");
            }
        }
    }
}
