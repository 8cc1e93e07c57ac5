// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test, Vm} from "../utils/Test.sol";
import {PersonnelRegistry} from "../../contracts/dao/PersonnelRegistry.sol";
import {DaoModelRegistry} from "../../contracts/dao/DaoModelRegistry.sol";
import {HardwareRegistry} from "../../contracts/dao/HardwareRegistry.sol";
import {GasCredits} from "../../contracts/dao/GasCredits.sol";
import {OTKIssuer} from "../../contracts/dao/OTKIssuer.sol";
import {LoyalToken} from "../../contracts/core/LoyalToken.sol";

/// @dev Registries owned by this test contract (standing in for the governor, whose voting is
/// covered in DaoGovernor.t.sol), so each test exercises one rule.
abstract contract DaoComputeBase is Test {
    PersonnelRegistry personnel;
    DaoModelRegistry models;
    HardwareRegistry hardware;
    GasCredits credits;
    OTKIssuer issuer;
    LoyalToken token;
    address treasury = address(0x7EA5);

    uint256 constant HW_KEY = 0xB0A4D;
    address hwKey;
    address operator = address(0x0BE7);
    address inspector = address(0x1A5);
    bytes32 constant GOOD = keccak256("firmware-v1");
    bytes32 constant BAD = keccak256("tampered");
    uint256 modelId;
    uint256 hwId;

    function setUp() public virtual {
        vm.warp(1_000_000);
        hwKey = vm.addr(HW_KEY);
        personnel = new PersonnelRegistry(address(this));
        personnel.admit(inspector, PersonnelRegistry.Track.Safety, 2, bytes32("vet"));
        models = new DaoModelRegistry(address(this), 2);
        hardware = new HardwareRegistry(address(this), personnel, 3, 30 minutes);
        token = new LoyalToken(address(this), 0);
        credits = new GasCredits(address(this), token, treasury);
        issuer = new OTKIssuer(address(this), models, hardware, credits, 1 hours, 0);
        credits.setSpender(address(issuer), true);
        hardware.setChallenger(address(issuer), true);
        credits.setPriceRule(issuer.OP_OPEN_RUN(), 10, 0);
        credits.setPriceRule(issuer.OP_RATION(), 1, 1);
        credits.grant(operator, 1e30, bytes32("genesis"));

        modelId = models.submit(keccak256("weights"), "ipfs://model");
        models.approve(modelId, 2, DaoModelRegistry.Scope.Narrow, "triage", 10_000, uint64(block.timestamp + 30 days));
        vm.prank(operator);
        hwId = hardware.register(hwKey, GOOD, "rack-1");
        hardware.approve(hwId, 5_000);
    }

    function _sig(uint256 id, bytes32 measurement, uint64 at) internal view returns (bytes memory) {
        return _sigFor(id, measurement, at, hardware.getHardware(id).challenge);
    }

    function _sigFor(uint256 id, bytes32 measurement, uint64 at, bytes32 challenge) internal view returns (bytes memory) {
        uint64 nonce = hardware.getHardware(id).nonce;
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(HW_KEY, hardware.attestationDigest(id, nonce, measurement, at, challenge));
        return abi.encodePacked(r, s, v);
    }

    /// @dev Attest (answering the open challenge, if any).
    function _attest(bytes32 measurement) internal returns (bool) {
        uint64 at = uint64(block.timestamp);
        bytes32 challenge = hardware.getHardware(hwId).challenge;
        return hardware.attest(hwId, measurement, at, challenge, _sigFor(hwId, measurement, at, challenge));
    }

    function _spec(uint256 budget, uint256 ration) internal view returns (OTKIssuer.RunSpec memory) {
        return OTKIssuer.RunSpec({
            modelId: modelId,
            hardwareId: hwId,
            workloadHash: keccak256("job"),
            tier: 2,
            scope: DaoModelRegistry.Scope.Narrow,
            purpose: "triage",
            budget: budget,
            rationSize: ration,
            expiresAt: uint64(block.timestamp + 1 days),
            attestationInterval: 10 minutes
        });
    }

    function _open(uint256 budget, uint256 ration) internal returns (uint256 runId) {
        vm.prank(operator);
        runId = issuer.openRun(_spec(budget, ration));
    }

    function _drip(uint256 runId, bytes32 key) internal returns (uint256) {
        vm.prank(operator);
        return issuer.drip(runId, keccak256(abi.encodePacked(key)));
    }
}

contract HardwareRegistryTest is DaoComputeBase {

    function test_attest_goodMeasurement_recorded() public {
        assertTrue(_attest(GOOD), "ok");
        (bool ok, uint64 at, uint32 failed) = hardware.attestationState(hwId);
        assertTrue(ok, "last ok");
        assertEq(at, block.timestamp, "time");
        assertEq(failed, 0, "no failures");
    }

    function test_attest_wrongKey_reverts() public {
        uint64 at = uint64(block.timestamp);
        uint256 other = 0x5EC0;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(other, hardware.attestationDigest(hwId, 0, GOOD, at, bytes32(0)));
        vm.expectRevert(abi.encodeWithSelector(HardwareRegistry.BadAttestationSigner.selector, hwId, vm.addr(other)));
        hardware.attest(hwId, GOOD, at, bytes32(0), abi.encodePacked(r, s, v));
    }

    function test_attest_replay_reverts() public {
        uint64 at = uint64(block.timestamp);
        bytes memory sig = _sig(hwId, BAD, at);
        hardware.attest(hwId, BAD, at, bytes32(0), sig);
        vm.expectRevert(); // nonce moved on: the old signature recovers to another address
        hardware.attest(hwId, BAD, at, bytes32(0), sig);
        (,, uint32 failed) = hardware.attestationState(hwId);
        assertEq(failed, 1, "replay not counted");
    }

    function test_attest_future_reverts() public {
        uint64 at = uint64(block.timestamp + 1);
        bytes memory sig = _sig(hwId, GOOD, at);
        vm.expectRevert(abi.encodeWithSelector(HardwareRegistry.AttestationFromFuture.selector, at));
        hardware.attest(hwId, GOOD, at, bytes32(0), sig);
    }

    function test_revokedAfterNFailedAttestations() public {
        assertTrue(!_attest(BAD), "fail 1");
        assertTrue(_attest(GOOD), "good in between");
        assertTrue(!_attest(BAD), "fail 2");
        assertEq(uint256(hardware.statusOf(hwId)), uint256(HardwareRegistry.Status.Approved), "still approved");
        vm.expectEmit(true, false, false, true, address(hardware));
        emit HardwareRegistry.HardwareRevoked(hwId, 3);
        _attest(BAD);
        assertEq(uint256(hardware.statusOf(hwId)), uint256(HardwareRegistry.Status.Pending), "revoked to pending");
        // a Pending unit cannot attest until re-approved; re-approval resets the counter
        uint64 at = uint64(block.timestamp);
        bytes memory sig = _sig(hwId, GOOD, at);
        vm.expectRevert(
            abi.encodeWithSelector(HardwareRegistry.WrongHardwareStatus.selector, hwId, HardwareRegistry.Status.Pending)
        );
        hardware.attest(hwId, GOOD, at, bytes32(0), sig);
        hardware.approve(hwId, 5_000);
        assertTrue(!_attest(BAD), "fail after re-approval");
        assertEq(uint256(hardware.statusOf(hwId)), uint256(HardwareRegistry.Status.Approved), "counter reset");
    }

    function testFuzz_revocationExactlyAtLimit(uint8 limit, uint8 fails) public {
        limit = uint8(bound(limit, 1, 10));
        fails = uint8(bound(fails, 0, 12));
        hardware.setFailureLimit(limit);
        for (uint256 i = 0; i < fails && hardware.statusOf(hwId) == HardwareRegistry.Status.Approved; ++i) {
            _attest(BAD);
        }
        bool revoked = hardware.statusOf(hwId) == HardwareRegistry.Status.Pending;
        assertTrue(revoked == (fails >= limit), "revoked iff fails >= limit");
    }

    function test_inspect_onlyPersonnel() public {
        vm.prank(inspector);
        hardware.inspect(hwId, true, keccak256("report"));
        vm.expectRevert(abi.encodeWithSelector(HardwareRegistry.NotPersonnel.selector, operator));
        vm.prank(operator);
        hardware.inspect(hwId, true, keccak256("report"));
    }

    function test_register_badInput() public {
        vm.expectRevert(HardwareRegistry.ZeroAddress.selector);
        hardware.register(address(0), GOOD, "x");
        vm.expectRevert(HardwareRegistry.EmptyMeasurement.selector);
        hardware.register(hwKey, bytes32(0), "x");
        vm.expectRevert(abi.encodeWithSelector(HardwareRegistry.UnknownHardware.selector, 99));
        hardware.approve(99, 1);
    }
}

contract OTKIssuerTest is DaoComputeBase {

    function test_drip_issuesRationsUpToRunBudget() public {
        _attest(GOOD);
        uint256 runId = _open(250, 100);
        assertEq(_drip(runId, "k0"), 100, "ration 1");
        assertEq(_drip(runId, "k1"), 100, "ration 2");
        assertEq(_drip(runId, "k2"), 50, "last ration is the remainder");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.RunBudgetExhausted.selector, runId));
        issuer.drip(runId, keccak256("k3"));
        assertEq(issuer.getRun(runId).issued, 250, "issued == budget");
        assertEq(issuer.hardwareIssued(hwId), 250, "hardware usage");
    }

    function test_openRun_beyondHardwareBudget_reverts() public {
        OTKIssuer.RunSpec memory spec = _spec(5_001, 100);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.BudgetExceeded.selector, 5_001, 5_000));
        issuer.openRun(spec);
    }

    function test_concurrentRuns_shareHardwareBudget() public {
        _attest(GOOD);
        uint256 a = _open(4_000, 4_000);
        uint256 b = _open(4_000, 4_000);
        assertEq(_drip(a, "a0"), 4_000, "first run");
        assertEq(_drip(b, "b0"), 1_000, "second run capped by hardware remainder");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.RunBudgetExhausted.selector, b));
        issuer.drip(b, keccak256("b1"));
    }

    function test_consume_once() public {
        _attest(GOOD);
        uint256 runId = _open(250, 100);
        _drip(runId, "secret");
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.NotRunOperator.selector, runId, address(this)));
        issuer.consume("secret"); // someone who saw the key cannot burn it
        vm.prank(operator);
        (uint256 r, uint256 amount) = issuer.consume("secret");
        assertEq(r, runId, "run");
        assertEq(amount, 100, "amount");
        bytes32 h = keccak256(abi.encodePacked(bytes32("secret")));
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.KeyAlreadyConsumed.selector, h));
        issuer.consume("secret");
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.UnknownKey.selector, keccak256(abi.encodePacked(bytes32("nope")))));
        issuer.consume("nope");
    }

    function test_drip_sameKeyHashTwice_reverts() public {
        _attest(GOOD);
        uint256 runId = _open(250, 100);
        _drip(runId, "k");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.KeyHashTaken.selector, keccak256(abi.encodePacked(bytes32("k")))));
        issuer.drip(runId, keccak256(abi.encodePacked(bytes32("k"))));
    }

    function test_key_expires() public {
        _attest(GOOD);
        uint256 runId = _open(250, 100);
        _drip(runId, "k");
        vm.warp(block.timestamp + 1 hours + 1);
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                OTKIssuer.KeyExpired.selector, keccak256(abi.encodePacked(bytes32("k"))), uint64(block.timestamp - 1)
            )
        );
        issuer.consume("k");
    }

    function test_drip_needsFreshAttestation() public {
        uint256 runId = _open(250, 100);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.AttestationRequired.selector, hwId, 0, 600));
        issuer.drip(runId, keccak256("k"));
        _attest(GOOD);
        _drip(runId, "k");
        vm.warp(block.timestamp + 601);
        vm.prank(operator);
        vm.expectRevert();
        issuer.drip(runId, keccak256("k2"));
        _attest(GOOD);
        assertEq(_drip(runId, "k2"), 100, "fresh attestation resumes");
    }

    function test_failedAttestation_haltsRun_andVoidsKeys() public {
        _attest(GOOD);
        uint256 runId = _open(1_000, 100);
        _drip(runId, "k0");
        _attest(BAD);
        _attest(GOOD); // a later good attestation does not un-halt
        vm.expectEmit(true, false, false, true, address(issuer));
        emit OTKIssuer.RunHalted(runId, OTKIssuer.HaltReason.AttestationFailed);
        assertEq(_drip(runId, "k1"), 0, "no ration");
        assertEq(uint256(issuer.getRun(runId).status), uint256(OTKIssuer.RunStatus.Halted), "halted");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.RunNotActive.selector, runId, OTKIssuer.RunStatus.Halted));
        issuer.consume("k0");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.RunNotActive.selector, runId, OTKIssuer.RunStatus.Halted));
        issuer.drip(runId, keccak256("k2"));
    }

    function test_revokedHardware_haltByAnyone() public {
        _attest(GOOD);
        uint256 runId = _open(1_000, 100);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.RunHealthy.selector, runId));
        issuer.halt(runId);
        _attest(BAD);
        _attest(BAD);
        _attest(BAD);
        vm.expectEmit(true, false, false, true, address(issuer));
        emit OTKIssuer.RunHalted(runId, OTKIssuer.HaltReason.HardwareRevoked);
        issuer.halt(runId);
    }

    function test_openRun_guards() public {
        OTKIssuer.RunSpec memory spec = _spec(100, 10);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.NotHardwareOperator.selector, hwId, address(this)));
        issuer.openRun(spec);
        vm.startPrank(operator);
        spec.rationSize = 101;
        vm.expectRevert(OTKIssuer.InvalidRunParameters.selector);
        issuer.openRun(spec);
        spec.rationSize = 10;
        spec.modelId = 77;
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.ModelNotCertified.selector, 77));
        issuer.openRun(spec);
        vm.stopPrank();
        spec.modelId = modelId;
        credits.setPriceRule(issuer.OP_OPEN_RUN(), 1e30, 1e30);
        vm.prank(operator);
        vm.expectRevert(); // InsufficientCredits: nothing is written
        issuer.openRun(spec);
        assertEq(issuer.runCount(), 0, "no run");
    }

    function test_drip_chargesCredits() public {
        _attest(GOOD);
        uint256 before = credits.balanceOf(operator);
        (bytes32 opOpen, bytes32 opRation) = (issuer.OP_OPEN_RUN(), issuer.OP_RATION());
        uint256 nextRun = issuer.runCount() + 1;
        vm.expectEmit(true, true, true, true, address(credits));
        emit GasCredits.CreditsCharged(operator, opOpen, nextRun, 250, 10, address(issuer));
        uint256 runId = _open(250, 100);
        vm.expectEmit(true, true, true, true, address(credits));
        emit GasCredits.CreditsCharged(operator, opRation, runId, 100, 1 + 100, address(issuer));
        _drip(runId, "k");
        assertEq(before - credits.balanceOf(operator), 10 + (1 + 100), "open 10 + ration 1+100");
    }

    function test_reclaim_expiredKey_returnsUnitsToEveryBudget() public {
        _attest(GOOD);
        uint256 runId = _open(250, 100);
        _drip(runId, "k0");
        _drip(runId, "k1");
        bytes32 h0 = keccak256(abi.encodePacked(bytes32("k0")));
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.KeyStillUsable.selector, h0, uint64(block.timestamp + 1 hours)));
        issuer.reclaim(h0);
        vm.prank(operator);
        issuer.consume("k1");
        vm.warp(block.timestamp + 1 hours + 1);
        vm.expectEmit(true, true, false, true, address(issuer));
        emit OTKIssuer.OTKReclaimed(runId, h0, 100);
        assertEq(issuer.reclaim(h0), 100, "units returned");
        assertEq(issuer.getRun(runId).issued, 100, "run keeps only the consumed key");
        assertEq(issuer.hardwareIssued(hwId), 100, "hardware budget freed");
        assertEq(issuer.modelIssued(modelId), 100, "model budget freed");
        assertTrue(issuer.getKey(h0).reclaimed, "marked");
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.KeyReclaimed.selector, h0));
        issuer.reclaim(h0);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.KeyReclaimed.selector, h0));
        issuer.consume("k0");
        bytes32 h1 = keccak256(abi.encodePacked(bytes32("k1")));
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.KeyAlreadyConsumed.selector, h1));
        issuer.reclaim(h1);
        vm.expectRevert(abi.encodeWithSelector(OTKIssuer.UnknownKey.selector, bytes32("nope")));
        issuer.reclaim(bytes32("nope"));
        _attest(GOOD);
        assertEq(_drip(runId, "k2"), 100, "the run can draw the returned units again");
    }

    function test_reclaim_haltedRunKey_beforeExpiry() public {
        _attest(GOOD);
        uint256 runId = _open(1_000, 100);
        _drip(runId, "k0");
        _attest(BAD);
        issuer.halt(runId);
        assertEq(issuer.reclaim(keccak256(abi.encodePacked(bytes32("k0")))), 100, "void key reclaimed at once");
        assertEq(issuer.hardwareIssued(hwId), 0, "hardware budget whole again");
    }

    /// @dev Fuzz: whatever the budgets and ration size, issued units never exceed the run budget
    /// nor the hardware budget, and the drip stops exactly at the smaller of the two.
    function testFuzz_noOTKBeyondBudget(uint256 budget, uint256 ration, uint256 hwBudget) public {
        hwBudget = bound(hwBudget, 1, 5_000);
        vm.prank(operator);
        uint256 hw2 = hardware.register(hwKey, GOOD, "rack-2");
        hardware.approve(hw2, hwBudget);
        hwId = hw2;
        budget = bound(budget, 1, hwBudget);
        ration = bound(ration, 1, budget);
        _attest(GOOD);
        uint256 runId = _open(budget, ration);
        uint256 total;
        for (uint256 i = 0; i < 64; ++i) {
            vm.prank(operator);
            try issuer.drip(runId, keccak256(abi.encode(i))) returns (uint256 amount) {
                assertLe(amount, ration, "ration size");
                total += amount;
            } catch {
                break;
            }
        }
        assertLe(total, budget, "run budget");
        assertLe(issuer.hardwareIssued(hw2), hwBudget, "hardware budget");
        if (budget / ration < 64) assertEq(total, budget, "drip reaches budget exactly");
    }
}

/// @dev Random drip / consume / attest / time sequences against one issuer.
contract OTKHandler is Test {
    OTKIssuer issuer;
    HardwareRegistry hardware;
    address operator;
    uint256 hwKeyPk;
    uint256 public hwId;
    uint256[] public runs;
    bytes32[] public keys;
    mapping(bytes32 => uint256) public consumedCount;
    mapping(bytes32 => bool) public reclaimed;
    mapping(bytes32 => uint256) public amountOf;
    uint256 public doubleConsumes;
    uint256 public reclaimedThenConsumed;
    /// @dev Units of keys issued and not reclaimed: what the issuer must count against the hardware.
    uint256 public outstandingUnits;

    constructor(OTKIssuer issuer_, HardwareRegistry hardware_, address operator_, uint256 pk, uint256 hwId_) {
        issuer = issuer_;
        hardware = hardware_;
        operator = operator_;
        hwKeyPk = pk;
        hwId = hwId_;
    }

    function open(uint256 budget, uint256 ration, uint256 modelId) external {
        budget = bound(budget, 1, 2_000);
        ration = bound(ration, 1, budget);
        OTKIssuer.RunSpec memory spec = OTKIssuer.RunSpec({
            modelId: bound(modelId, 1, 1),
            hardwareId: hwId,
            workloadHash: keccak256("w"),
            tier: 1,
            scope: DaoModelRegistry.Scope.Narrow,
            purpose: "triage",
            budget: budget,
            rationSize: ration,
            expiresAt: uint64(block.timestamp + 1 days),
            attestationInterval: 1 hours
        });
        vm.prank(operator);
        try issuer.openRun(spec) returns (uint256 id) {
            runs.push(id);
        } catch {}
    }

    function drip(uint256 runSeed, uint256 keySeed) external {
        if (runs.length == 0) return;
        bytes32 key = keccak256(abi.encode(keySeed, keys.length));
        vm.prank(operator);
        try issuer.drip(runs[runSeed % runs.length], keccak256(abi.encodePacked(key))) returns (uint256 amount) {
            if (amount > 0) {
                keys.push(key);
                amountOf[key] = amount;
                outstandingUnits += amount;
            }
        } catch {}
    }

    function consume(uint256 keySeed) external {
        if (keys.length == 0) return;
        bytes32 key = keys[keySeed % keys.length];
        vm.prank(operator);
        try issuer.consume(key) {
            if (++consumedCount[key] > 1) doubleConsumes++;
            if (reclaimed[key]) reclaimedThenConsumed++;
        } catch {}
    }

    function reclaim(uint256 keySeed) external {
        if (keys.length == 0) return;
        bytes32 key = keys[keySeed % keys.length];
        try issuer.reclaim(keccak256(abi.encodePacked(key))) returns (uint256 amount) {
            reclaimed[key] = true;
            outstandingUnits -= amount;
        } catch {}
    }

    function attest(bool good) external {
        bytes32 m = good ? keccak256("firmware-v1") : keccak256("tampered");
        uint64 at = uint64(block.timestamp);
        if (hardware.statusOf(hwId) != HardwareRegistry.Status.Approved) return;
        HardwareRegistry.Hardware memory h = hardware.getHardware(hwId);
        if (h.challenge != bytes32(0) && block.timestamp > h.challengeDeadline) {
            hardware.expireChallenge(hwId);
            if (hardware.statusOf(hwId) != HardwareRegistry.Status.Approved) return;
        }
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(hwKeyPk, hardware.attestationDigest(hwId, h.nonce, m, at, h.challenge));
        hardware.attest(hwId, m, at, h.challenge, abi.encodePacked(r, s, v));
    }

    function wait(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 1, 30 minutes));
    }

    function runCount() external view returns (uint256) {
        return runs.length;
    }
}

contract OTKIssuerInvariantTest is DaoComputeBase {
    OTKHandler handler;

    function setUp() public override {
        super.setUp();
        handler = new OTKHandler(issuer, hardware, operator, HW_KEY, hwId);
        issuer.setChallengeOdds(3); // challenges at random rations: answered, or missed while time passes
        targetContract(address(handler));
    }

    function invariant_issuedWithinEveryBudget() public view {
        assertLe(issuer.hardwareIssued(hwId), hardware.budgetOf(hwId), "hardware budget");
        assertLe(issuer.modelIssued(modelId), models.computeBudget(modelId), "model budget");
        uint256 n = handler.runCount();
        for (uint256 i = 0; i < n; ++i) {
            OTKIssuer.Run memory r = issuer.getRun(handler.runs(i));
            assertLe(r.issued, r.budget, "run budget");
        }
    }

    function invariant_noKeyConsumedTwice() public view {
        assertEq(handler.doubleConsumes(), 0, "double consume");
        assertEq(handler.reclaimedThenConsumed(), 0, "a reclaimed key was consumed");
    }

    function invariant_budgetCountsExactlyTheUnreclaimedKeys() public view {
        assertEq(issuer.hardwareIssued(hwId), handler.outstandingUnits(), "hardware usage");
    }
}
