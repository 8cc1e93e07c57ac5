"""Datacenter agent: runs a workload on approved hardware under the OTK drip.

Per ration it (1) presents an integrity attestation signed by the hardware's own key when the last
one is stale, (2) asks the OTKIssuer for the next ration, registering the hash of a one-time key
it derives off-chain, (3) answers the attestation challenge the issuer opens at semi-random
rations (an attestation over the challenge's seed, within the response window), (4) does that
ration of work and consumes the key on-chain (revealing it once). It stops when the drip stops:
the run halted (failed attestation, missed challenge, revoked hardware or model, emergency vote),
its budget is spent, or it expired.

Two drivers share these steps: `Datacenter.run` (the demo: one ration per interval, `fail_from`
fault injection reports a tampered measurement from that interval on) and `DatacenterDaemon`
(`loyal dao datacenter`: the daemon loop on `run_daemon`, challenges and issued keys from the
resumable follower, its progress in the cursor file, so a SIGKILL loses nothing and repeats
nothing: each step checks the chain first).

OTKs are *derived*, never sent: key_i = HMAC-SHA256(run secret, runId || i). Only keccak256(key_i)
goes on-chain at issuance; the key itself appears on-chain only when it is consumed (once).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from agents.core.chain import Chain
from agents.core.views import read
from common.errors import Reverted
from common.typed_data import Domain, StructType, typed_data

TAMPERED = keccak(text="tampered-firmware")
NO_CHALLENGE = b"\0" * 32
NARROW, GENERAL = 0, 1  # DaoModelRegistry.Scope
SCOPES = {"narrow": NARROW, "general": GENERAL}

ATTESTATION = StructType("Attestation", (
    ("hardwareId", "uint256"), ("nonce", "uint64"), ("measurement", "bytes32"), ("observedAt", "uint64"),
    ("challenge", "bytes32")))

HALT_REASONS = ("None", "HardwareRevoked", "AttestationFailed", "ModelNotCertified", "ModelRevoked",
                "ChallengeMissed", "OutsideApproval", "HaltedByVote")  # OTKIssuer.HaltReason


def attestation_typed_data(chain_id: int, registry: str, hardware_id: int, nonce: int, measurement: bytes,
                           observed_at: int, challenge: bytes = NO_CHALLENGE) -> dict:
    """The EIP-712 Attestation the HardwareRegistry (domain "LoyalHardwareRegistry", "1") checks."""
    return typed_data(Domain("LoyalHardwareRegistry", "1", chain_id, registry), ATTESTATION,
                      {"hardwareId": hardware_id, "nonce": nonce, "measurement": measurement,
                       "observedAt": observed_at, "challenge": challenge})


def sha256_workload(units: int, seed: bytes) -> bytes:
    """A real, deterministic CPU workload: `units` x 1000 chained SHA-256 rounds."""
    h = seed
    for _ in range(units * 1000):
        h = hashlib.sha256(h).digest()
    return h


def run_secret(operator: LocalAccount) -> bytes:
    """The operator's OTK secret, derived from its key: the same after any restart, never on-chain."""
    return hmac.new(bytes(operator.key), b"loyal-dao-otk-secret", hashlib.sha256).digest()


@dataclass(frozen=True)
class RunRequest:
    """What a run is (its model's approval must cover it) and its budget shape."""
    model_id: int
    workload: bytes
    budget: int
    ration: int
    duration_s: int
    interval_s: int
    tier: int = 1
    scope: int = NARROW
    purpose: str = ""


@dataclass
class RunReport:
    run_id: int
    rations: int = 0
    units: int = 0
    attestations: list[bool] = field(default_factory=list)
    challenges: int = 0
    stop_reason: str = ""
    result: bytes = b""
    gas: dict[str, list[int]] = field(default_factory=lambda: {"attest": [], "drip": [], "consume": []})


class Datacenter:
    def __init__(self, chain: Chain, operator: LocalAccount, hardware_key: LocalAccount, hardware_id: int,
                 measurement: bytes, *, secret: bytes | None = None):
        if len(measurement) != 32:
            raise ValueError(f"measurement must be 32 bytes, got {len(measurement)}")
        self.chain = chain
        self.operator = operator
        self.hardware_key = hardware_key
        self.hardware_id = hardware_id
        self.measurement = measurement
        self.secret = secret if secret is not None else os.urandom(32)
        self.hardware = chain.contract("HardwareRegistry")
        self.issuer = chain.contract("OTKIssuer")

    def derive_key(self, run_id: int, index: int) -> bytes:
        return hmac.new(self.secret, run_id.to_bytes(32, "big") + index.to_bytes(4, "big"), hashlib.sha256).digest()

    def health(self):
        return read(self.chain, self.hardware.functions.health(self.hardware_id))

    def attest(self, *, tampered: bool = False) -> tuple[bool, dict]:
        """Sign and submit one attestation (answering the open challenge, if any); returns
        (measurement matched, receipt)."""
        h = read(self.chain, self.hardware.functions.getHardware(self.hardware_id))
        observed_at = self.chain.w3.eth.get_block("latest")["timestamp"]
        measurement = TAMPERED if tampered else self.measurement
        challenge = bytes(h.challenge)
        data = attestation_typed_data(self.chain.chain_id, self.hardware.address, self.hardware_id, h.nonce,
                                      measurement, observed_at, challenge)
        sig = self.hardware_key.sign_message(encode_typed_data(full_message=data)).signature
        receipt = self.chain.transact(self.operator, self.hardware.functions.attest(
            self.hardware_id, measurement, observed_at, challenge, bytes(sig)))
        ev = next(e for e in self.chain.decode_events(receipt) if e.name == "AttestationRecorded")
        return ev.args["ok"], receipt

    def open_run(self, model_id: int, workload: bytes, budget: int, ration: int, duration_s: int,
                 interval_s: int, *, tier: int = 1, scope: int = NARROW, purpose: str = "") -> int:
        return self.open(RunRequest(model_id, workload, budget, ration, duration_s, interval_s, tier, scope, purpose))

    def open(self, req: RunRequest) -> int:
        """Open a run; the purpose defaults to the model's approved one."""
        purpose = req.purpose or read(self.chain, self.chain.contract("DaoModelRegistry").functions.getModel(
            req.model_id)).purpose
        expires = self.chain.w3.eth.get_block("latest")["timestamp"] + req.duration_s
        spec = (req.model_id, self.hardware_id, keccak(req.workload), req.tier, req.scope, purpose, req.budget,
                req.ration, expires, req.interval_s)
        receipt = self.chain.transact(self.operator, self.issuer.functions.openRun(spec))
        return next(e for e in self.chain.decode_events(receipt) if e.name == "RunOpened").args["runId"]

    def run(self, run_id: int, *, interval_s: int, max_intervals: int = 1000, fail_from: int | None = None,
            wait: Callable[[int], None] | None = None, work: Callable[[int, bytes], bytes] = sha256_workload,
            log: Callable[[str], None] = lambda s: None) -> RunReport:
        """Drive run `run_id`, one ration per interval, until the drip stops. `wait(seconds)` moves
        time between intervals (on the dev chain: `chain.advance_time`; default: real sleep)."""
        wait = wait or time.sleep
        report = RunReport(run_id)
        state = self.secret
        for i in range(max_intervals):
            tampered = fail_from is not None and i >= fail_from
            try:
                ok, r = self.attest(tampered=tampered)
            except Reverted.named("WrongHardwareStatus"):
                report.stop_reason = "hardware revoked"
                break
            report.attestations.append(ok)
            report.gas["attest"].append(r["gasUsed"])
            index = report.rations
            key = self.derive_key(run_id, index)
            try:
                r = self.chain.transact(self.operator, self.issuer.functions.drip(run_id, keccak(key)))
            except Reverted.named("RunBudgetExhausted"):
                report.stop_reason = "budget spent"
                break
            except Reverted.named("RunExpired"):
                report.stop_reason = "run expired"
                break
            except Reverted.named("RunNotActive"):
                report.stop_reason = "run not active"
                break
            events = {e.name: e for e in self.chain.decode_events(r)}
            if "RunHalted" in events:
                report.stop_reason = f"drip halted ({HALT_REASONS[events['RunHalted'].args['reason']]})"
                log(f"interval {i}: attestation {'ok' if ok else 'FAILED'}; drip halted")
                break
            report.gas["drip"].append(r["gasUsed"])
            amount = events["OTKIssued"].args["amount"]
            if "AttestationChallenged" in events:  # a semi-random challenge: answer it within the window
                ok, _ = self.attest(tampered=tampered)
                report.challenges += 1
                report.attestations.append(ok)
                log(f"interval {i}: challenged; answered ({'ok' if ok else 'FAILED'})")
            try:
                r = self.chain.transact(self.operator, self.issuer.functions.consume(key))
            except Reverted.named("RunUnhealthy") as e:
                report.stop_reason = f"drip halted ({HALT_REASONS[e.error_args['reason']]})"
                break
            report.gas["consume"].append(r["gasUsed"])
            state = work(amount, state)
            report.rations += 1
            report.units += amount
            log(f"interval {i}: attestation {'ok' if ok else 'FAILED'}; OTK #{index} for {amount} units consumed")
            wait(interval_s)
        else:
            report.stop_reason = "max intervals"
        report.result = state
        return report


class DatacenterDaemon:
    """`loyal dao datacenter`: one run driven to its end as a daemon step (see the module docstring).

    Cursor state: `run_id`, `keys` (index -> units of an issued key not yet worked and consumed),
    `done` (keys consumed), `units` (units worked), `result` (hex of the workload chain), `halted`.
    """

    def __init__(self, dc: Datacenter, cursor, *, request: RunRequest | None = None, run_id: int | None = None,
                 work: Callable[[int, bytes], bytes] = sha256_workload, log: logging.Logger | None = None):
        from agents.core.events import EventFollower

        self.dc, self.cursor, self.work = dc, cursor, work
        self.log = log or logging.getLogger("loyal.dao.datacenter")
        st = cursor.state
        st.setdefault("keys", {})
        st.setdefault("done", 0)
        st.setdefault("units", 0)
        st.setdefault("result", dc.secret.hex())
        if run_id is not None:
            if st.get("run_id") not in (None, run_id):
                from common.errors import ConfigError

                raise ConfigError(f"cursor {cursor.path} follows run {st['run_id']}, not {run_id}: use another --home")
            st["run_id"] = run_id
        self.request = request
        hw = dc.hardware_id
        self.follower = EventFollower(dc.chain, cursor, contracts=["HardwareRegistry", "OTKIssuer"],
                                      names=["AttestationChallenged", "OTKIssued", "RunHalted"],
                                      where=lambda ev: ev.args.get("hardwareId", hw) == hw
                                      and ev.args.get("runId", st.get("run_id")) == st.get("run_id"))
        self.finished = ""

    @property
    def run_id(self) -> int | None:
        return self.cursor.state.get("run_id")

    def _handle(self, ev, st: dict) -> None:
        if ev.name == "OTKIssued":
            st["keys"][str(ev.args["index"])] = ev.args["amount"]
        elif ev.name == "RunHalted":
            st["halted"] = HALT_REASONS[ev.args["reason"]]
        elif ev.name == "AttestationChallenged":
            self.log.info("hardware #%d challenged (answer by %s)", self.dc.hardware_id, ev.args["deadline"])

    def step(self) -> int:
        """One action (returns transactions sent): open the run, answer a challenge, attest, work and
        consume an issued key, or draw the next ration; sets `finished` when the drip has stopped."""
        dc, st, chain = self.dc, self.cursor.state, self.dc.chain
        if self.run_id is None:
            if self.request is None:
                from common.errors import ConfigError

                raise ConfigError("no run to follow: pass --run ID or --model ID to open one")
            st["run_id"] = dc.open(self.request)
            self.cursor.commit()
            self.log.info("opened run #%d", st["run_id"])
            return 1
        self.follower.poll(self._handle)
        run = read(chain, dc.issuer.functions.getRun(self.run_id))
        if run.status != 1:  # Active
            self.finished = f"run {['None', 'Active', 'Halted', 'Closed'][run.status]}" + (
                f" ({st['halted']})" if st.get("halted") else "")
            return 0
        h = dc.health()
        if bytes(h.challenge) != NO_CHALLENGE and not h.challengeOverdue:
            ok, _ = dc.attest()
            self.log.info("answered the challenge on hardware #%d: %s", dc.hardware_id, "ok" if ok else "FAILED")
            return 1
        for index, amount in sorted(st["keys"].items(), key=lambda kv: int(kv[0])):
            # the work is deterministic: redone after a kill, it gives the same result chain
            key = dc.derive_key(self.run_id, int(index))
            result = self.work(amount, bytes.fromhex(st["result"])).hex()
            consumed = read(chain, dc.issuer.functions.getKey(keccak(key))).consumed  # by a previous life?
            if not consumed:
                try:
                    chain.transact(dc.operator, dc.issuer.functions.consume(key))
                except Reverted.named("RunUnhealthy") as e:
                    self.finished = f"run unhealthy ({HALT_REASONS[e.error_args['reason']]})"
                    return 0
                self.log.info("run #%d: OTK #%s consumed, %d units worked", self.run_id, index, amount)
            st["result"] = result
            st["units"] += amount
            st["done"] += 1
            del st["keys"][index]
            self.cursor.commit()
            return 0 if consumed else 1
        now = chain.w3.eth.get_block("latest")["timestamp"]
        if not h.lastAttestationOk or now > h.lastAttestedAt + run.attestationInterval - 1:
            ok, _ = dc.attest()
            self.log.info("attested hardware #%d: %s", dc.hardware_id, "ok" if ok else "FAILED")
            return 1
        if run.issued >= run.budget:
            self.finished = "budget spent"
            return 0
        if now >= run.expiresAt:
            self.finished = "run expired"
            return 0
        key = dc.derive_key(self.run_id, run.keysIssued)
        r = chain.transact(dc.operator, dc.issuer.functions.drip(self.run_id, keccak(key)))
        for ev in chain.decode_events(r):
            if ev.name == "OTKIssued":
                self.log.info("run #%d: ration %d issued (%d units)", self.run_id, ev.args["index"], ev.args["amount"])
            elif ev.name == "RunHalted":
                self.log.warning("run #%d halted: %s", self.run_id, HALT_REASONS[ev.args["reason"]])
        return 1

    def run(self, *, poll: float = 1.0, max_steps: int | None = None):
        from agents.core.daemon import run_daemon

        return run_daemon(self.step, log=self.log, poll=poll, done=lambda: bool(self.finished), max_steps=max_steps)


def cursor_path(home: Path, chain_id: int, hardware_id: int, operator: str) -> Path:
    return home / "dao" / f"datacenter-{chain_id}-hw{hardware_id}-{operator.lower()}.json"
