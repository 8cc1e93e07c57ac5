"""Datacenter agent: runs a workload on approved hardware under the OTK drip.

Each interval it (1) presents an integrity attestation signed by the hardware's own key,
(2) asks the OTKIssuer for the next ration, registering the hash of a one-time key it derives
off-chain, (3) consumes the key on-chain (revealing it once) and (4) does that ration of work.
It stops when the drip stops: the run halted (failed attestation, revoked hardware), its budget
is spent, or it expired. `fail_from` is the fault injection: from that interval on, the
attestations report a tampered measurement.

OTKs are *derived*, never sent: key_i = HMAC-SHA256(run secret, runId || i). Only keccak256(key_i)
goes on-chain at issuance; the key itself appears on-chain only when it is consumed (once).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from agents.core.chain import Chain
from agents.core.views import read
from common.errors import Reverted
from common.typed_data import Domain, StructType, typed_data

TAMPERED = keccak(text="tampered-firmware")


ATTESTATION = StructType("Attestation", (
    ("hardwareId", "uint256"), ("nonce", "uint64"), ("measurement", "bytes32"), ("observedAt", "uint64")))


def attestation_typed_data(chain_id: int, registry: str, hardware_id: int, nonce: int, measurement: bytes,
                           observed_at: int) -> dict:
    """The EIP-712 Attestation the HardwareRegistry (domain "LoyalHardwareRegistry", "1") checks."""
    return typed_data(Domain("LoyalHardwareRegistry", "1", chain_id, registry), ATTESTATION,
                      {"hardwareId": hardware_id, "nonce": nonce, "measurement": measurement, "observedAt": observed_at})


def sha256_workload(units: int, seed: bytes) -> bytes:
    """A real, deterministic CPU workload: `units` x 1000 chained SHA-256 rounds."""
    h = seed
    for _ in range(units * 1000):
        h = hashlib.sha256(h).digest()
    return h


@dataclass
class RunReport:
    run_id: int
    rations: int = 0
    units: int = 0
    attestations: list[bool] = field(default_factory=list)
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

    def attest(self, *, tampered: bool = False) -> tuple[bool, dict]:
        """Sign and submit one attestation; returns (measurement matched, receipt)."""
        nonce = read(self.chain, self.hardware.functions.getHardware(self.hardware_id)).nonce
        observed_at = self.chain.w3.eth.get_block("latest")["timestamp"]
        measurement = TAMPERED if tampered else self.measurement
        data = attestation_typed_data(self.chain.chain_id, self.hardware.address, self.hardware_id, nonce,
                                      measurement, observed_at)
        sig = self.hardware_key.sign_message(encode_typed_data(full_message=data)).signature
        receipt = self.chain.transact(self.operator, self.hardware.functions.attest(self.hardware_id, measurement,
                                                                                    observed_at, bytes(sig)))
        ev = next(e for e in self.chain.decode_events(receipt) if e.name == "AttestationRecorded")
        return ev.args["ok"], receipt

    def open_run(self, model_id: int, workload: bytes, budget: int, ration: int, duration_s: int,
                 interval_s: int) -> int:
        expires = self.chain.w3.eth.get_block("latest")["timestamp"] + duration_s
        receipt = self.chain.transact(self.operator, self.issuer.functions.openRun(
            model_id, self.hardware_id, keccak(workload), budget, ration, expires, interval_s))
        return next(e for e in self.chain.decode_events(receipt) if e.name == "RunOpened").args["runId"]

    def run(self, run_id: int, *, interval_s: int, max_intervals: int = 1000, fail_from: int | None = None,
            wait: Callable[[int], None] | None = None, work: Callable[[int, bytes], bytes] = sha256_workload,
            log: Callable[[str], None] = lambda s: None) -> RunReport:
        """Drive run `run_id` until the drip stops. `wait(seconds)` moves time between intervals
        (on the dev chain: `chain.advance_time`; default: real sleep)."""
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
                report.stop_reason = f"drip halted ({_HALT[events['RunHalted'].args['reason']]})"
                log(f"interval {i}: attestation {'ok' if ok else 'FAILED'}; drip halted")
                break
            report.gas["drip"].append(r["gasUsed"])
            amount = events["OTKIssued"].args["amount"]
            r = self.chain.transact(self.operator, self.issuer.functions.consume(key))
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


_HALT = {1: "hardware revoked", 2: "attestation failed", 3: "model not certified"}
