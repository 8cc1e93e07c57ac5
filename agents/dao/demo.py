"""`loyal dao demo`: the governance story end to end on a real chain.

Personnel admitted by vote; a model (tier 2, narrow scope, its purpose) and a hardware unit
approved by vote (one ballot cast by EIP-712 signature and relayed); the operator buys gas
credits with LOYAL; a workload run under the OTK drip, answering the semi-random attestation
challenges, paying the gas tax into the treasury with every ration; injected attestation failures
halt the drip and then revoke the hardware; a whistle-blower report about the model, an Emergency
vote revoking the model and a Review vote paying the bounty. Anvil time moves with
evm_increaseTime/evm_mine.
"""
from __future__ import annotations

import time
from typing import Callable

from eth_utils import keccak

from agents.core.chain import Chain
from agents.core.enums import EnumNames
from agents.core.signers import dev_signer
from agents.core.token import Token
from agents.core.views import read

from .datacenter import NARROW, Datacenter
from .deploy import DEV_MEMBERS, HARDWARE, POLICY, SAFETY, SOFTWARE
from .governance import Action, Dao

OPERATOR, MODEL_DEV, HARDWARE_KEY, INSPECTOR, WHISTLEBLOWER = 26, 27, 28, 29, 30
MEASUREMENT = keccak(text="loyal-dc-rack1-firmware-1.4.2+driver-550")
HW_BUDGET, MODEL_BUDGET, RUN_BUDGET, RATION = 2_000, 5_000, 1_000, 100
INTERVAL_S = 600
FAIL_FROM = 4  # fault injection: attestations from the 5th interval on report a tampered measurement
CREDITS = 10_000  # bought at the voted price (deploy: 0.01 LOYAL each)
OPERATOR_FUNDS = 1_000 * 10**18
BOUNTY = 500 * 10**18
PURPOSE = "clinical triage assistant"


def members() -> dict[str, object]:
    """Genesis personnel of the dev chain by role name, e.g. 'safety3' (track, tier)."""
    names = {SAFETY: "safety", POLICY: "policy", SOFTWARE: "software", HARDWARE: "hardware"}
    return {f"{names[track]}{tier}": dev_signer(i) for i, track, tier in DEV_MEMBERS}


def run_demo(chain: Chain, log: Callable[[str], None] = print) -> dict:
    t0 = time.monotonic()
    dao = Dao(chain)
    enums = EnumNames(chain.artifacts)
    m = members()
    operator, model_dev, hw_key = dev_signer(OPERATOR), dev_signer(MODEL_DEV), dev_signer(HARDWARE_KEY)
    inspector, whistleblower = dev_signer(INSPECTOR), dev_signer(WHISTLEBLOWER)

    # Submissions start Pending.
    r = chain.transact(model_dev, dao.models.functions.submit(keccak(text="triage-model-weights-v1"), "ipfs://triage-v1"))
    model_id = next(e for e in chain.decode_events(r) if e.name == "ModelSubmitted").args["modelId"]
    r = chain.transact(operator, dao.hardware.functions.register(hw_key.address, MEASUREMENT, "dc-1/rack-1/gpu-node-7"))
    hw_id = next(e for e in chain.decode_events(r) if e.name == "HardwareRegistered").args["hardwareId"]
    log(f"model #{model_id} and hardware #{hw_id} submitted (Pending)")

    # Three proposals voted in the same window. A proposer must have been registered before the
    # current second (OZ reads proposer votes at clock() - 1): on a just-deployed chain, tick once.
    dao.advance_past(dao.now())
    system = dao.propose(m["policy2"], "system", [
        Action.call(dao.personnel, "admit", inspector.address, HARDWARE, 2, keccak(text="vetting-record-29")),
    ], "Admit hardware inspector")
    review = dao.propose(m["policy1"], "review", [
        Action.call(dao.models, "approve", model_id, 2, NARROW, PURPOSE, MODEL_BUDGET, dao.now() + 365 * 86400),
    ], "Approve triage model v1 (tier 2, narrow)")
    safety = dao.propose(m["safety1"], "safety", [Action.call(dao.hardware, "approve", hw_id, HW_BUDGET)],
                         "Approve dc-1 rack-1 node-7")
    log("proposals: System (admit inspector), Review (model), Safety (hardware)")
    dao.advance_past(max(p.vote_start for p in (system, review, safety)))
    # One System ballot is signed off-line by safety3 and relayed by the operator.
    sig = dao.sign_ballot(m["safety3"], system, "for")
    dao.vote_by_sig(operator, m["safety3"].address, system, "for", sig)
    for v in ("safety2", "policy3"):
        dao.vote(m[v], system, "for")
    for v in ("policy1", "safety1", "policy2"):
        dao.vote(m[v], review, "for")
    dao.vote(m["safety3"], review, "against")
    for v in ("safety2", "safety3"):
        dao.vote(m[v], safety, "for")
    dao.advance_past(max(p.vote_end for p in (system, review, safety)))
    states = {name: dao.state(p) for name, p in (("system", system), ("review", review), ("safety", safety))}
    for p in (system, review, safety):
        dao.execute(operator, p)
    log(f"votes closed {states}; executed all three")

    chain.transact(inspector, dao.hardware.functions.inspect(hw_id, True, keccak(text="inspection report 1")))
    log("new inspector recorded a passing inspection")

    # Gas credits bought with LOYAL at the voted price (pay_and_call: no approval left behind a refusal).
    token = Token(chain)
    if token.balance(operator.address) < OPERATOR_FUNDS:
        token.transfer(dev_signer(0), operator.address, OPERATOR_FUNDS)
    r = dao.buy_credits(operator, CREDITS)
    paid = next(e for e in chain.decode_events(r) if e.name == "CreditsBought").args["paid"]
    treasury_before = token.balance(dao.treasury.address)
    log(f"operator bought {CREDITS} gas credits for {paid / 1e18:g} LOYAL")

    # The workload under the drip, with the fault injected.
    dc = Datacenter(chain, operator, hw_key, hw_id, MEASUREMENT)
    run_id = dc.open_run(model_id, b"triage eval batch 2026-11", RUN_BUDGET, RATION, 86400, INTERVAL_S, tier=2)
    report = dc.run(run_id, interval_s=INTERVAL_S, fail_from=FAIL_FROM, wait=chain.advance_time, log=log)
    gas_tax = token.balance(dao.treasury.address) - treasury_before
    log(f"run #{run_id} stopped: {report.stop_reason} after {report.rations} rations ({report.units} units, "
        f"{report.challenges} challenges answered); gas tax paid into the treasury: {gas_tax / 1e18:g} LOYAL")

    # The faulty unit keeps attesting until the failure limit revokes it.
    def hardware_status() -> str:
        return enums.name("HardwareRegistry.Status", chain.call(dao.hardware.functions.statusOf(hw_id)))

    while hardware_status() == "Approved":
        chain.advance_time(INTERVAL_S)
        dc.attest(tampered=True)
    failed = read(chain, dao.hardware.functions.attestationState(hw_id)).failedAttestations
    log(f"hardware #{hw_id} revoked to Pending after {failed} failed attestations")

    # A whistle-blower reports the model: an Emergency vote revokes it at once (1 h window), a
    # Review vote pays the bounty.
    r = chain.transact(whistleblower, dao.personnel.functions.fileReport(keccak(text=f"model:{model_id}"),
                                                                          keccak(text="unsafe triage advice")))
    report_id = next(e for e in chain.decode_events(r) if e.name == "WhistleblowerReport").args["reportId"]
    before = token.balance(whistleblower.address)
    emergency = dao.propose(m["safety3"], "emergency", [
        Action.call(dao.models, "revoke", model_id, keccak(text=f"report:{report_id}")),
    ], f"Revoke model {model_id} after whistle-blower report {report_id}")
    bounty = dao.propose(m["policy1"], "review", [
        Action.call(dao.treasury, "payBounty", keccak(text=f"report:{report_id}"), whistleblower.address, BOUNTY),
    ], f"Bounty for whistle-blower report {report_id}")
    dao.pass_proposal(emergency, [m["safety3"], m["policy3"]], operator)
    model_status = enums.name("DaoModelRegistry.Status", read(chain, dao.models.functions.getModel(model_id)).status)
    log(f"emergency vote (1 h window) revoked model #{model_id}: {model_status}")
    dao.pass_proposal(bounty, [m["policy1"], m["policy2"], m["safety1"]], operator)
    paid = token.balance(whistleblower.address) - before
    log(f"review vote paid {paid / 1e18:.0f} LOYAL bounty for report {report_id}")

    run = read(chain, dao.issuer.functions.getRun(run_id))
    return {
        "proposals": {name: dao.state(p) for name, p in (("system", system), ("review", review), ("safety", safety),
                                                          ("emergency", emergency), ("bounty", bounty))},
        "model_status": model_status,
        "credits_bought": CREDITS,
        "credits_paid_LOYAL": CREDITS * chain.call(dao.credits.functions.creditPrice()) / 1e18,
        "gas_tax_LOYAL": gas_tax / 1e18,
        "challenges_answered": report.challenges,
        "run_id": run_id,
        "rations": report.rations,
        "units_issued": run.issued,
        "run_budget": RUN_BUDGET,
        "run_status": enums.name("OTKIssuer.RunStatus", run.status),
        "stop_reason": report.stop_reason,
        "attestations": report.attestations,
        "hardware_status": hardware_status(),
        "failed_attestations": failed,
        "bounty_paid_LOYAL": paid / 1e18,
        "gas": {k: (sum(v) // len(v) if v else 0) for k, v in report.gas.items()},
        "seconds": round(time.monotonic() - t0, 2),
    }


def dao_scenario(ctx) -> dict:
    """Step of `loyal devnet` (declared in agents.dao.SUBSYSTEM)."""
    summary = run_demo(ctx.chain, log=lambda s: ctx.console.print(f"  {s}", highlight=False))
    return {k: summary[k] for k in ("rations", "units_issued", "stop_reason", "hardware_status", "model_status",
                                    "gas_tax_LOYAL", "bounty_paid_LOYAL")}
