"""Issue #15 on a real Anvil through real votes: types bound to their actions, emergency powers,
run terms, credits bought with LOYAL and the gas tax, ballots signed on one machine and relayed
from another. Adversary first: each new transaction is tried by a sender who lies, replays or
oversteps, and balances and state are checked after the refusal."""
from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import keccak

from agents.core.events import fetch_events
from agents.core.signers import dev_signer
from agents.core.token import Token
from agents.core.views import read
from agents.dao.datacenter import GENERAL, NARROW
from agents.dao.governance import (Action, BadBallot, Dao, ProposalNotFound, WrongProposalState)
from common.ballots import SignedBallot, read_ballot, write_ballot
from common.errors import InsufficientFunds, Reverted
from tests.dao.test_dao import _approved_hardware
from agents.dao.demo import members

RUN_STATUS_HALTED = 2


@pytest.fixture
def dao(chain):
    d = Dao(chain)
    d.advance_past(d.now())
    return d


def _nonce(chain, who) -> int:
    return chain.w3.eth.get_transaction_count(who.address)


def test_out_of_type_actions_are_refused_and_nothing_is_created(chain, dao):
    m = members()
    gov_events = lambda: len(fetch_events(chain, contracts=["DaoGovernor"], names=["ProposalCreated"]))  # noqa: E731
    before = gov_events()
    # a Review proposal may not admit personnel (System's), nor use an emergency power
    with pytest.raises(Reverted.named("ActionNotAllowed")) as e:
        dao.propose(m["policy1"], "review", [Action.call(dao.personnel, "admit", dev_signer(9).address, 2, 3,
                                                                b"\0" * 32)], "sneaky admission")
    assert e.value.error_args["proposalType"] == 1
    for ptype in ("safety", "review", "system"):
        with pytest.raises(Reverted.named("ActionNotAllowed")):
            dao.propose(m["policy3"], ptype, [Action.call(dao.models, "revoke", 1, b"\0" * 32)], f"revoke by {ptype}")
    # nobody but System may touch the governor's rules; not even System may relay arbitrary calls
    cfg = (1, 0b1110, 0b110, 1, 0, 0, 3600, 86400)
    with pytest.raises(Reverted.named("ActionNotAllowed")):
        dao.propose(m["policy3"], "emergency", [Action.call(dao.governor, "setTypeConfig", 1, cfg)], "loosen review")
    with pytest.raises(Reverted.named("ActionNotAllowed")):
        dao.propose(m["policy3"], "system", [Action.call(dao.governor, "relay", dao.personnel.address, 0, b"")], "relay")
    assert gov_events() == before


def test_emergency_powers_by_vote_each_an_event(chain, dao):
    """Revoke a model (its run halts, OTK use after revocation refused, unspent keys reclaimed),
    halt a run, freeze and cut budgets, revoke hardware: one Emergency vote, every action an event."""
    m = members()
    dc, model_id = _approved_hardware(chain, dao, budget=5_000)
    run_id = dc.open_run(model_id, b"job", 1_000, 100, 86400, 3600)
    keys = [dc.derive_key(run_id, i) for i in range(2)]

    def ration(key: bytes) -> None:
        dc.attest()
        chain.transact(dc.operator, dao.issuer.functions.drip(run_id, keccak(key)))
        if bytes(dc.health().challenge) != b"\0" * 32:
            dc.attest()  # answer the semi-random challenge

    ration(keys[0])
    chain.transact(dc.operator, dao.issuer.functions.consume(keys[0]))
    r = chain.transact(dc.operator, dao.models.functions.submit(keccak(text="w2"), "ipfs://w2"))
    start = r["blockNumber"]
    p = dao.propose(m["safety3"], "emergency", [
        Action.call(dao.models, "revoke", model_id, keccak(text="report:7")),
        Action.call(dao.hardware, "freezeBudget", dc.hardware_id, keccak(text="incident")),
        Action.call(dao.hardware, "cutBudget", dc.hardware_id, 2_000),
    ], "Threat response: model 1")
    dao.advance_past(p.vote_start)
    for v in ("safety3", "policy3"):
        dao.vote(m[v], p)
    dao.advance_past(p.vote_end)
    ration(keys[1])  # the operator draws a key just before the vote takes effect
    dao.execute(dc.operator, p)
    model = read(chain, dao.models.functions.getModel(model_id))
    assert model.status == 4  # Revoked
    # the operator holds an unconsumed key: using it after the revocation is refused by name
    with pytest.raises(Reverted.named("RunUnhealthy")) as e:
        chain.transact(dc.operator, dao.issuer.functions.consume(keys[1]))
    assert e.value.error_args["reason"] == 4  # ModelRevoked
    before = chain.call(dao.issuer.functions.modelIssued(model_id))
    chain.transact(dev_signer(3), dao.issuer.functions.reclaim(keccak(keys[1])))  # anyone
    assert chain.call(dao.issuer.functions.modelIssued(model_id)) == before - 100
    hw = read(chain, dao.hardware.functions.getHardware(dc.hardware_id))
    assert hw.frozen and hw.budget == 2_000
    with pytest.raises(Reverted.named("ModelNotCertified")):
        dc.open_run(model_id, b"again", 100, 10, 86400, 3600)
    # halt a run and revoke the hardware, in a second Emergency vote
    p2 = dao.propose(m["policy3"], "emergency", [
        Action.call(dao.issuer, "haltRun", run_id),
        Action.call(dao.hardware, "revoke", dc.hardware_id, keccak(text="seal broken")),
    ], "Halt run, revoke hardware")
    dao.pass_proposal(p2, [m["safety3"], m["policy3"]], dc.operator)
    assert read(chain, dao.issuer.functions.getRun(run_id)).status == RUN_STATUS_HALTED
    assert chain.call(dao.hardware.functions.statusOf(dc.hardware_id)) == 1  # Pending: inspection first
    names = [e.name for e in fetch_events(chain, from_block=start, contracts=["DaoModelRegistry", "HardwareRegistry",
                                                                              "OTKIssuer"])]
    for ev in ("ModelRevoked", "HardwareBudgetFrozen", "HardwareBudgetCut", "OTKReclaimed", "RunHalted",
               "HardwareRevokedByVote"):
        assert ev in names, ev


def test_tier1_model_cannot_get_a_tier3_run_nor_general_scope_nor_another_purpose(chain, dao):
    dc, model_id = _approved_hardware(chain, dao, tier=1)
    runs = chain.call(dao.issuer.functions.runCount())
    with pytest.raises(Reverted.named("TierNotApproved")) as e:
        dc.open_run(model_id, b"big", 100, 10, 86400, 3600, tier=3)
    assert (e.value.error_args["approved"], e.value.error_args["requested"]) == (1, 3)
    with pytest.raises(Reverted.named("ScopeNotApproved")):
        dc.open_run(model_id, b"general", 100, 10, 86400, 3600, scope=GENERAL)
    with pytest.raises(Reverted.named("PurposeNotApproved")):
        dc.open_run(model_id, b"other", 100, 10, 86400, 3600, purpose="bio design")
    assert chain.call(dao.issuer.functions.runCount()) == runs
    dc.open_run(model_id, b"ok", 100, 10, 86400, 3600, tier=1, scope=NARROW)


def test_credits_bought_with_loyal_tax_paid_into_the_treasury(chain, dao):
    token = Token(chain)
    poor = Account.create()
    chain.w3.provider.make_request("anvil_setBalance", [poor.address, hex(10**18)])
    with pytest.raises(InsufficientFunds, match="has 0 LOYAL"):
        dao.buy_credits(poor, 100)
    assert token.allowance(poor.address, dao.credits.address) == 0  # nothing left behind the refusal
    assert chain.call(dao.credits.functions.balanceOf(poor.address)) == 0
    # a buyer cannot pay below the voted price
    buyer = dev_signer(4)
    with pytest.raises(Reverted.named("PriceAboveLimit")):
        chain.transact(buyer, dao.credits.functions.buy(100, 1))
    dc, model_id = _approved_hardware(chain, dao, credits=0)
    token.transfer(dev_signer(0), dc.operator.address, 100 * 10**18)
    t0 = token.balance(dao.treasury.address)
    b0 = token.balance(dc.operator.address)
    dao.buy_credits(dc.operator, 1_000)
    price = chain.call(dao.credits.functions.creditPrice())
    assert token.balance(dc.operator.address) == b0 - 1_000 * price
    assert token.allowance(dc.operator.address, dao.credits.address) == 0
    run_id = dc.open_run(model_id, b"job", 200, 100, 86400, 3600)
    dc.run(run_id, interval_s=60, wait=chain.advance_time)
    spent = 10 + 2 * 101
    tax = token.balance(dao.treasury.address) - t0
    assert tax == spent * price * 1_000 // 10_000  # 10 % of the spent credits' backing
    held = token.balance(dao.credits.address)
    assert held == chain.call(dao.credits.functions.backingOf(dc.operator.address)) + \
        chain.call(dao.credits.functions.upkeepPool())


def test_vote_outside_the_window_or_on_an_unknown_proposal_names_the_problem(chain, dao):
    m = members()
    p = dao.propose(m["policy1"], "review", [Action.call(dao.personnel, "fileReport", b"x" * 32, b"y" * 32)], "w")
    voter = m["safety2"]
    n = _nonce(chain, voter)
    with pytest.raises(WrongProposalState, match=r"is Pending \(voting opens \d{4}-\d\d-\d\dT"):
        dao.vote(voter, p)
    with pytest.raises(ProposalNotFound, match="no proposal 12345"):
        dao.vote(voter, 12345)
    dao.advance_past(p.vote_end)
    with pytest.raises(WrongProposalState, match=r"is Defeated \(voting closed "):
        dao.vote(voter, p)
    assert _nonce(chain, voter) == n  # nothing sent
    # the contract itself names an unknown id (it used to say VoterNotEligible)
    with pytest.raises(Reverted.named("GovernorNonexistentProposal")):
        chain.transact(voter, dao.governor.functions.castVote(12345, 1))


def test_ballot_signed_here_relayed_there_and_forgeries_refused(chain, dao, tmp_path):
    m = members()
    p = dao.propose(m["policy1"], "review", [Action.call(dao.personnel, "fileReport", b"x" * 32, b"y" * 32)], "b")
    other = dao.propose(m["policy1"], "review", [Action.call(dao.personnel, "fileReport", b"z" * 32, b"y" * 32)], "o")
    dao.advance_past(p.vote_start)
    voter, relayer = m["safety2"], dev_signer(5)
    sent = _nonce(chain, voter)
    path = write_ballot(tmp_path / "ballot.json", dao.signed_ballot(voter, p, "for"))
    ballot = read_ballot(path)
    assert _nonce(chain, voter) == sent  # signing sends nothing
    n = _nonce(chain, relayer)
    # lies: another proposal, another chain, another governor
    forged = SignedBallot(ballot.chain_id, ballot.governor, other.id, 1, ballot.voter, ballot.nonce, ballot.signature)
    with pytest.raises(BadBallot, match="signed for another proposal"):
        dao.relay(relayer, forged)
    for wrong, says in ((dict(chain_id=1), "signed for chain 1, this is chain 31337"),
                        (dict(governor="0x" + "11" * 20), "signed for governor")):
        fields = {**ballot.__dict__, **wrong}
        with pytest.raises(BadBallot, match=says):
            dao.relay(relayer, SignedBallot(**fields))
    assert _nonce(chain, relayer) == n
    dao.relay(relayer, ballot)
    assert chain.call(dao.governor.functions.hasVoted(p.id, voter.address))
    with pytest.raises(BadBallot, match="nonce"):  # replay: the nonce is spent
        dao.relay(relayer, ballot)
