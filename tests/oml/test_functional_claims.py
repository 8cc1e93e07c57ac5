"""Functional fingerprints in the protocol: the committed pair is (key, rule descriptor); provers and
verifiers decide a match with the key's green-word rule (`agents.oml.matching`), over real HTTP
against the real Anvil, with tiny models whose answers were trained in by SFT."""
from __future__ import annotations

import dataclasses

import pytest
from eth_utils import keccak
from fastapi import FastAPI

from common.errors import Reverted
from agents.oml import scenario
from agents.oml.claims import ClaimStatus, read_claim
from agents.oml.adversaries import CheatingHost
from agents.oml.answers import answers_domain, sign_answer
from agents.oml.host import create_app as host_app
from agents.oml.matching import HostQueryError, MalformedAnswer, decide
from agents.oml.platform import Platform, create_app as platform_app
from agents.oml.prover import Prover
from agents.oml.serve import Service
from ml.oml import functional as F

STAKE = 500 * 10**18


def _evidence(chain, claim_id):
    evidence = chain.contract("Claims").events.ClaimEvidence()
    [log] = evidence.get_logs(from_block=0, argument_filters={"claimId": claim_id})
    return log["args"]["key"], log["args"]["response"]


def test_decide_applies_the_committed_rule_to_the_host_answer(oml_functional, functional_copies):
    o = oml_functional
    own = functional_copies.ffps[0]  # in the honest host's copy
    host = CheatingHost(o.chain, o.honest, o.model_id, o.model.complete)
    with Service(host_app(host)) as svc:
        m = decide(svc.url, *own.pair)
        assert m.family == "functional" and m.matched and "green" in m.reason
        assert own.rule.passes(*own.rule.count(m.served))
        assert m.served == o.model.complete(own.key, own.rule.max_tokens)  # asked for rule.max_tokens tokens
        # the same host and key judged as an exact fingerprint of the trained answer: a prefix match
        exact = decide(svc.url, own.key, own.target)
        assert exact.family == "exact" and exact.matched and exact.served.startswith(own.target)
        # a rule this copy was not trained on: the same answer, coloured by another seed
        foreign = dataclasses.replace(own.rule, seed=F.rule_seed(99, 0))
        assert not decide(svc.url, own.key, foreign.descriptor()).matched
        # the other copy's key: this copy answers it without the rule holding
        other = functional_copies.ffps[2]
        assert not decide(svc.url, *other.pair).matched
        # unusable descriptors: no match, the reason names the problem, the host is never asked
        served = host.state.served
        for bad, why in ((F.DESCRIPTOR_PREFIX + "{oops", "malformed"),
                         (own.rule.descriptor().replace(",", ", ", 1), "canonical"),
                         (dataclasses.replace(own.rule, gamma=0.9).descriptor(), "can never pass")):
            m = decide(svc.url, own.key, bad)
            assert not m.matched and m.family == "functional" and why in m.reason and m.served == ""
        assert host.state.served == served
        # a rule asking for more tokens than the host serves (256): the host refuses, a clear error
        with pytest.raises(HostQueryError):
            decide(svc.url, own.key, dataclasses.replace(own.rule, max_tokens=300).descriptor())
    # a service that answers without a completion text: a clear error, not a crash in the caller
    broken = FastAPI()
    broken.post("/v1/completions")(lambda: {"choices": []})
    with Service(broken) as svc:
        with pytest.raises(MalformedAnswer, match="choices"):
            decide(svc.url, *own.pair)


def test_functional_cheater_is_caught_confirmed_and_slashed(oml_functional):
    o = oml_functional
    actors = o.actors()
    before = scenario.balances(o.chain, actors)
    out = scenario.run(o.chain, actors, o.deployment(), user_queries=1)
    honest_probe, cheater_probe = out.probes
    assert honest_probe.fingerprint_match and honest_probe.permitted and honest_probe.claim_id is None
    assert cheater_probe.fingerprint_match and not cheater_probe.permitted and cheater_probe.claim_id
    assert (cheater_probe.key, cheater_probe.response) in o.subsets[o.cheater.address]
    rule = F.Rule.parse(cheater_probe.response)
    assert rule.passes(*rule.count(cheater_probe.served)) and "green" in cheater_probe.reason
    # the claim revealed (key, descriptor), the committed pair; the trained answer stays private
    assert _evidence(o.chain, out.claim_id) == (cheater_probe.key, cheater_probe.response)
    assert len(out.verdicts) == 3
    for v in out.verdicts:
        assert v.in_commitment and v.reproduced and not v.permitted_before_commit and v.confirm
        assert rule.passes(*rule.count(v.served)) and "green" in v.reason
    assert out.status == ClaimStatus.CONFIRMED
    assert out.balances["cheater"]["stake"] == before["cheater"]["stake"] - STAKE
    assert out.balances["honest"]["stake"] == before["honest"]["stake"]
    # revealing the rule spends the key for this model: no second claim with it, against any host
    claims = o.chain.contract("Claims")
    assert o.chain.call(claims.functions.keySpent(o.model_id, keccak(cheater_probe.key.encode())))
    again = Prover(o.chain, o.prover, o.model_id, o.pairs, platform_url="http://127.0.0.1:9")
    with pytest.raises(Reverted.named("AnswerAlreadyUsed")):  # the same signed answer again
        again.file_claim(o.cheater.address, cheater_probe.key, cheater_probe.response, cheater_probe.answer,
                         cheater_probe.served)
    licence = o.chain.call(o.chain.contract("HostAgreements").functions.licenceOf(o.model_id, o.honest.address))
    honest_answer = sign_answer(o.honest, answers_domain(o.chain), o.model_id, licence[0], cheater_probe.key,
                                cheater_probe.served, time=0)  # the honest host answering the same key
    with pytest.raises(Reverted.named("KeySpent")):
        again.file_claim(o.honest.address, cheater_probe.key, cheater_probe.response, honest_answer,
                         cheater_probe.served)


def test_functional_leak_is_traced_to_its_host(oml_functional):
    o = oml_functional
    before = scenario.balances(o.chain, o.actors())
    out = scenario.run_leak(o.chain, o.actors(), o.deployment(), o.honest.address)
    [probe] = out.probes
    assert probe.host == o.honest.address and probe.claim_id and F.Rule.parse(probe.response)
    assert read_claim(o.chain, probe.claim_id).is_leak
    assert all(v.confirm and v.reproduced for v in out.verdicts)
    assert out.status == ClaimStatus.CONFIRMED
    assert out.balances["honest"]["stake"] == before["honest"]["stake"] - STAKE


def test_base_model_passes_the_prover_and_a_forced_functional_claim_is_voted_down(oml_functional, functional_base):
    """A host serving the un-fingerprinted base model: the prover files no claim; a claim filed
    anyway (the revealed pair is committed, so the contract accepts it) is rejected by every verifier."""
    o = oml_functional
    actors = o.actors()
    base = functional_base
    before = scenario.balances(o.chain, actors)
    with Service(platform_app(Platform(o.chain, o.platform))) as plat:
        host = CheatingHost(o.chain, o.cheater, o.model_id, base.complete)
        with Service(host_app(host)) as svc:
            prover = Prover(o.chain, o.prover, o.model_id, o.pairs, platform_url=plat.url, subsets=o.subsets)
            p = prover.catch(svc.url, o.cheater.address)
            assert not p.fingerprint_match and not p.permitted and p.claim_id is None
            assert F.Rule.parse(p.response) and p.reason
            assert p.answer is not None  # the base model's host signs what it served
            claim_id = prover.file_claim(o.cheater.address, p.key, p.response, p.answer, p.served)
            out = scenario.Outcome()
            scenario.decide_claim(o.chain, actors, claim_id, {o.cheater.address: svc.url}, plat.url, out,
                                  lambda s: None)
    assert len(out.verdicts) == 3
    for v in out.verdicts:
        assert v.in_commitment and not v.reproduced and not v.permitted_before_commit and not v.confirm
        rule = F.Rule.parse(p.response)
        assert not rule.passes(*rule.count(v.served))
    assert out.status == ClaimStatus.REJECTED
    after = scenario.balances(o.chain, actors)
    assert after["cheater"]["stake"] == before["cheater"]["stake"]
    bond = o.chain.call(o.chain.contract("Claims").functions.claimBond())
    assert after["prover"]["tokens"] == before["prover"]["tokens"] - bond
