"""The DAO against a real Anvil with the suite deployed by the deploy hook (fixture `chain`)."""
from __future__ import annotations

import pytest
from eth_utils import keccak

from common.errors import Reverted
from agents.core.events import fetch_events
from agents.core.signers import dev_signer
from agents.core.token import Token
from agents.dao.datacenter import NARROW, Datacenter
from agents.dao.deploy import DAO_CONTRACTS, DEV_MEMBERS, genesis_members
from agents.dao.demo import HARDWARE_KEY, MEASUREMENT, OPERATOR, members, run_demo
from agents.dao.governance import Action, Dao, WrongProposalState, proposal_type, support_value


@pytest.fixture
def dao(chain):
    d = Dao(chain)
    d.advance_past(d.now())  # proposers are read at clock() - 1: leave the deployment's second
    return d


def test_deploy_hook_hands_every_registry_to_the_governor(chain, dao):
    for name in DAO_CONTRACTS:
        assert name in chain.book.contracts
    gov = dao.governor.address
    for c in (dao.personnel, dao.models, dao.hardware, dao.credits, dao.issuer, dao.treasury):
        assert chain.call(c.functions.owner()) == gov
    for i, track, tier in DEV_MEMBERS:
        assert tuple(chain.call(dao.personnel.functions.roleOf(dev_signer(i).address))) == (track, tier)
    assert chain.call(dao.credits.functions.isSpender(dao.issuer.address))


def test_demo_flow_halts_drip_and_revokes_hardware(chain):
    start = chain.w3.eth.block_number + 1
    s = run_demo(chain, log=lambda _: None)
    assert s["proposals"] == {"system": "Executed", "review": "Executed", "safety": "Executed",
                              "emergency": "Executed", "bounty": "Executed"}
    assert s["model_status"] == "Revoked"
    assert s["rations"] == 4 and s["units_issued"] == 400 <= s["run_budget"]
    # one attestation per interval plus the answers to the semi-random challenges; the 5th interval's fails
    assert len(s["attestations"]) == 5 + s["challenges_answered"]
    assert all(s["attestations"][:-1]) and s["attestations"][-1] is False
    # credits bought at 0.01 LOYAL; 10 % of the backing of every credit spent went to the treasury
    assert s["credits_paid_LOYAL"] == 100.0
    spent = 10 + 4 * (1 + 100)  # openRun + 4 rations of 100 units under the deploy's price rules
    assert s["gas_tax_LOYAL"] == pytest.approx(spent * 0.01 * 0.1)
    assert s["run_status"] == "Halted" and s["stop_reason"] == "drip halted (AttestationFailed)"
    assert s["hardware_status"] == "Pending" and s["failed_attestations"] == 3
    assert s["bounty_paid_LOYAL"] == 500.0
    # The auditor view (`loyal events`) decodes every log the DAO contracts wrote.
    addresses = [chain.book.contracts[n]["address"] for n in DAO_CONTRACTS]
    logs = chain.w3.eth.get_logs({"fromBlock": start, "toBlock": "latest", "address": addresses})
    events = fetch_events(chain, from_block=start, contracts=DAO_CONTRACTS)
    assert len(events) == len(logs)
    names = {e.name for e in events}
    assert {"ProposalCreated", "VoteCast", "ProposalExecuted", "PersonnelAdmitted", "ModelApproved",
            "HardwareApproved", "AttestationRecorded", "OTKIssued", "OTKConsumed", "RunHalted", "HardwareRevoked",
            "WhistleblowerReport", "BountyPaid", "CreditsBought", "CreditsCharged", "GasTaxPaid", "InspectionRecorded",
            "ModelRevoked", "RunTermsDeclared"} <= names


def _approved_hardware(chain, dao, budget=1_000, tier=1, credits=20_000):
    """Model (tier `tier`, narrow, purpose "test") + hardware approved through a real Review vote;
    the operator bought `credits` gas credits."""
    m = members()
    operator, hw_key = dev_signer(OPERATOR), dev_signer(HARDWARE_KEY)
    r = chain.transact(operator, dao.models.functions.submit(keccak(text="w"), "ipfs://w"))
    model_id = next(e for e in chain.decode_events(r) if e.name == "ModelSubmitted").args["modelId"]
    r = chain.transact(operator, dao.hardware.functions.register(hw_key.address, MEASUREMENT, "node"))
    hw_id = next(e for e in chain.decode_events(r) if e.name == "HardwareRegistered").args["hardwareId"]
    p = dao.propose(m["policy1"], "review", [
        Action.call(dao.models, "approve", model_id, tier, NARROW, "test", 10_000, dao.now() + 86400 * 30),
        Action.call(dao.hardware, "approve", hw_id, budget),
    ], "setup")
    dao.pass_proposal(p, [m["policy1"], m["safety1"]], operator)
    if credits:
        Token(chain).transfer(dev_signer(0), operator.address, 1_000 * 10**18)
        dao.buy_credits(operator, credits)
    return Datacenter(chain, operator, hw_key, hw_id, MEASUREMENT, secret=b"s" * 32), model_id


def test_drip_stops_at_run_budget_and_keys_are_single_use(chain, dao):
    dc, model_id = _approved_hardware(chain, dao)
    run_id = dc.open_run(model_id, b"job", 250, 100, 86400, 600)
    report = dc.run(run_id, interval_s=600, wait=chain.advance_time)
    assert report.stop_reason == "budget spent"
    assert (report.rations, report.units) == (3, 250)
    with pytest.raises(Reverted.named("KeyAlreadyConsumed")):
        chain.transact(dc.operator, dao.issuer.functions.consume(dc.derive_key(run_id, 0)))


def test_vote_by_signature_relayed(chain, dao):
    m = members()
    p = dao.propose(m["policy1"], "review", [Action.call(dao.personnel, "fileReport", b"x" * 32, b"y" * 32)], "r")
    dao.advance_past(p.vote_start)
    sig = dao.sign_ballot(m["safety2"], p, "for")
    dao.vote_by_sig(dev_signer(3), m["safety2"].address, p, "for", sig)
    assert chain.call(dao.governor.functions.hasVoted(p.id, m["safety2"].address))
    with pytest.raises(Reverted):  # nonce consumed: the same signature recovers to someone else
        dao.vote_by_sig(dev_signer(3), m["safety2"].address, p, "for", sig)


def test_bad_votes_are_refused_by_name(chain, dao):
    m = members()
    outsider = dev_signer(5)
    p = dao.propose(m["safety1"], "safety", [Action.call(dao.personnel, "fileReport", b"x" * 32, b"y" * 32)], "s")
    with pytest.raises(WrongProposalState, match="is Pending .voting opens 20"):
        dao.vote(m["safety2"], p)  # still Pending
    dao.advance_past(p.vote_start)
    with pytest.raises(Reverted.named("VoterNotEligible")) as e:
        dao.vote(outsider, p)
    assert e.value.error_args["tier"] == 0
    with pytest.raises(Reverted.named("VoterNotEligible")):
        dao.vote(m["policy3"], p)  # wrong track
    with pytest.raises(Reverted.named("VoterNotEligible")):
        dao.vote(m["safety1"], p)  # wrong tier
    with pytest.raises(WrongProposalState, match="is Active .voting closes 20"):
        dao.execute(outsider, p)  # not succeeded
    with pytest.raises(Reverted.named("ProposerTierTooLow")):
        dao.propose(m["policy2"], "emergency", [Action.call(dao.personnel, "fileReport", b"x" * 32, b"y" * 32)], "e")


def test_bad_input_names_the_problem(chain, dao):
    with pytest.raises(ValueError, match="unknown proposal type"):
        proposal_type("urgent")
    with pytest.raises(ValueError, match="unknown vote"):
        support_value("maybe")
    with pytest.raises(ValueError, match="at least one action"):
        dao.propose(members()["policy1"], "review", [], "empty")
    with pytest.raises(ValueError, match="32 bytes"):
        Datacenter(chain, dev_signer(1), dev_signer(2), 1, b"short")
    with pytest.raises(Reverted.named("UnknownRun")):
        chain.transact(dev_signer(1), dao.issuer.functions.drip(99, b"k" * 32))
    with pytest.raises(Reverted.named("NotHardwareOperator")):
        chain.transact(dev_signer(1), dao.issuer.functions.openRun((1, 1, b"w" * 32, 1, 0, "x", 10, 1, 2**40, 60)))
    with pytest.raises(Reverted.named("EmptyArtifact")):
        chain.transact(dev_signer(1), dao.models.functions.submit(b"\0" * 32, "x"))


def test_attestation_by_another_key_is_refused(chain, dao):
    dc, _ = _approved_hardware(chain, dao)
    impostor = Datacenter(chain, dc.operator, dev_signer(7), dc.hardware_id, MEASUREMENT)
    with pytest.raises(Reverted.named("BadAttestationSigner")):
        impostor.attest()
    assert dc.attest()[0] is True


def test_genesis_spec_is_validated(monkeypatch):
    monkeypatch.setenv("LOYAL_DAO_GENESIS", "0xabc:wizard:2")
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="address:policy"):
        genesis_members(1)
    monkeypatch.setenv("LOYAL_DAO_GENESIS", "0xabc:safety:4")
    with pytest.raises(ConfigError, match="tier must be 1..3"):
        genesis_members(1)
    monkeypatch.delenv("LOYAL_DAO_GENESIS")
    with pytest.raises(ConfigError, match="required off the dev chain"):
        genesis_members(1)
