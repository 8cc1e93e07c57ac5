"""Issue #14 through the agents on a real Anvil: claims that do not tip off the host.

A host watching the chain that refuses or changes its answer once a key is revealed is still
slashed (the claim carries its signed answer; verifiers never ask it again); a rogue endpoint that
signs nothing is caught with sealed keys and observations committed before the reveal; a σ from the
commit block or later defends nothing, even when commit, σ and reveal share one timestamp; an honest
host holding σ from an earlier block is never slashed. Bad input (unsigned, wrongly signed, replayed
answers; a seal that does not open; an observation that does not match its reveal) is refused with a
named revert or a one-line error, asserting balances and who was slashed."""
from __future__ import annotations

import dataclasses
import os

import httpx
import pytest

from common.errors import Reverted
from common.typed_data import Domain
from agents.oml import scenario
from agents.oml.adversaries import (ChangingHost, CheatingHost, GarbageSealProver, TipOffHost, TipOffUnsignedHost,
                                    UnsignedHost)
from agents.oml.answers import BadSignedAnswer, answers_domain, check, sign_answer
from agents.oml.claims import ClaimStatus, read_claim
from agents.oml.host import Host, create_app as host_app
from agents.oml.matching import decide
from agents.oml.platform import Platform, create_app as platform_app
from agents.oml.prover import Prover
from agents.oml.sealed import SEAL_ERROR
from agents.oml.serve import Service

STAKE = 500 * 10**18
REWARD = STAKE * 2_000 // 10_000
PER_VERIFIER = STAKE * 600 // 10_000 // 3


def _stake(chain, who) -> int:
    return chain.call(chain.contract("Staking").functions.slashableOf(who))


def _tokens(chain, who) -> int:
    return chain.call(chain.contract("LoyalToken").functions.balanceOf(who))


@pytest.mark.parametrize("host_cls", [TipOffHost, ChangingHost], ids=["refuses", "changes"])
def test_host_that_goes_quiet_on_revealed_keys_is_still_slashed(oml, host_cls):
    chain, actors = oml.chain, oml.actors()
    before = scenario.balances(chain, actors)
    with Service(platform_app(Platform(chain, oml.platform))) as plat:
        cheater = host_cls(chain, oml.cheater, oml.model_id, oml.models[oml.cheater.address].complete)
        with Service(host_app(cheater)) as svc:
            verifiers = scenario.make_verifiers(chain, actors, plat.url)
            prover = Prover(chain, oml.prover, oml.model_id, oml.pairs, platform_url=plat.url, subsets=oml.subsets)
            p = prover.catch(svc.url, oml.cheater.address)
            assert p.fingerprint_match and p.answer is not None and p.claim_id
            assert not read_claim(chain, p.claim_id).is_sealed
            # The key is public now: the host watching the chain stops serving it (or answers otherwise).
            r = httpx.post(f"{svc.url}/v1/completions", json={"prompt": p.key, "max_tokens": 8})
            if host_cls is TipOffHost:
                assert r.status_code == 503
            else:
                assert not decide(svc.url, p.key, p.response).matched
            out = scenario.Outcome()
            scenario.decide_claim(chain, actors, p.claim_id, {}, plat.url, out, lambda s: None, verifiers)
    assert all(v.confirm and v.reproduced and v.served == p.served and "signed answer" in v.reason
               for v in out.verdicts)
    assert out.status == ClaimStatus.CONFIRMED
    after = scenario.balances(chain, actors)
    assert after["cheater"]["stake"] == before["cheater"]["stake"] - STAKE
    assert after["honest"]["stake"] == before["honest"]["stake"]
    assert after["prover"]["tokens"] == before["prover"]["tokens"] + REWARD
    assert out.settlements == {v.address: (PER_VERIFIER, 0) for v in oml.verifiers}


def test_rogue_endpoint_caught_with_sealed_keys_before_it_goes_quiet(oml):
    """A leaked copy served unsigned, watching the chain. Verifiers observe it before the reveal; one
    verifier lies about its observation (named revert) and counts as not voting."""
    chain, actors = oml.chain, oml.actors()
    leaked = oml.honest.address
    before = scenario.balances(chain, actors)
    with Service(platform_app(Platform(chain, oml.platform))) as plat:
        rogue = TipOffUnsignedHost(chain, oml.admin, oml.model_id, oml.models[leaked].complete)  # unlicensed key
        with Service(host_app(rogue)) as svc:
            verifiers = scenario.make_verifiers(chain, actors, plat.url)
            prover = Prover(chain, oml.prover, oml.model_id, oml.pairs, platform_url=plat.url, subsets=oml.subsets,
                            before_reveal=scenario.observe_sealed(verifiers, lambda s: None))
            p = prover.catch_leak(svc.url)
            assert p is not None and p.host == leaked and p.claim_id and p.answer is None
            claim = read_claim(chain, p.claim_id)
            assert claim.is_sealed and claim.is_leak
            claims = chain.contract("Claims")
            for v in oml.verifiers:  # every observation was committed before the reveal block
                _, block = chain.call(claims.functions.observations(claim.sealed_commitment, v.address))
                assert 0 < block < claim.reveal_block
            assert httpx.post(f"{svc.url}/v1/completions", json={"prompt": p.key, "max_tokens": 8}).status_code == 503
            liar = verifiers[2]
            key = "0x" + claim.sealed_commitment.hex()
            liar.observations[key] = dataclasses.replace(liar.observations[key], observed="it said something else")
            chain.advance_time(chain.call(claims.functions.challengeWindow()) + 1)
            with pytest.raises(Reverted.named("ObservationMismatch")):
                liar.vote(p.claim_id)
            with pytest.raises(Reverted.named("ObservationRequired")):
                chain.transact(liar.signer, claims.functions.vote(p.claim_id, True))
            verdicts = [v.vote(p.claim_id) for v in verifiers[:2]]
            assert all(v.confirm and v.reproduced and "before the reveal" in v.reason for v in verdicts)
            chain.transact(oml.prover, claims.functions.finalize(p.claim_id))
            scenario.release_after_appeal_window(chain, oml.prover, p.claim_id)  # payouts held for appeals
            settled = {v.signer.address: v.settle(p.claim_id) for v in verifiers}
    assert read_claim(chain, p.claim_id).status == ClaimStatus.CONFIRMED
    after = scenario.balances(chain, actors)
    assert after["honest"]["stake"] == before["honest"]["stake"] - STAKE  # whose copy leaked
    assert after["cheater"]["stake"] == before["cheater"]["stake"]
    per = STAKE * 600 // 10_000 // 2
    assert settled == {oml.verifiers[0].address: (per, 0), oml.verifiers[1].address: (per, 0),
                       oml.verifiers[2].address: (0, 5 * 10**18)}


def test_same_second_commit_sigma_reveal_defends_only_sigma_from_an_earlier_block(oml):
    chain, actors = oml.chain, oml.actors()
    claims = chain.contract("Claims")
    rpc = chain.w3.provider.make_request
    rpc("anvil_setBlockTimestampInterval", [0])  # every block below shares one timestamp
    try:
        before = scenario.balances(chain, actors)
        with Service(platform_app(Platform(chain, oml.platform))) as plat:
            honest = Host(chain, oml.honest, oml.model_id, oml.model.complete, platform_url=plat.url)
            cheater = CheatingHost(chain, oml.cheater, oml.model_id, oml.models[oml.cheater.address].complete,
                                   platform_url=plat.url)
            prover = Prover(chain, oml.prover, oml.model_id, oml.pairs, platform_url=plat.url, subsets=oml.subsets)
            verifiers = scenario.make_verifiers(chain, actors, plat.url)
            with Service(host_app(honest)) as h_svc, Service(host_app(cheater)) as c_svc:
                # The honest host serves its key with σ; the prover claims anyway (it ignores the platform).
                kh, rh = oml.subsets[oml.honest.address][0]
                mh = decide(h_svc.url, kh, rh)
                chain.mine(1)
                honest_claim = prover.file_claim(oml.honest.address, kh, rh, mh.answer, mh.served)
                assert honest.defend(honest_claim) == "signed permission"
                # The cheater serves without σ. Commit; σ obtained in the commit block; reveal; σ again.
                kc, rc = oml.subsets[oml.cheater.address][0]
                mc = decide(c_svc.url, kc, rc)
                salt = os.urandom(32)
                commitment = chain.call(claims.functions.claimCommitment(kc, rc, oml.cheater.address, salt))
                commit_block = chain.transact(oml.prover, claims.functions.commit(commitment))["blockNumber"]
                [in_commit_block] = cheater.request_permits([kc])
                chain.transact(oml.prover, chain.contract("LoyalToken").functions.approve(claims.address, 10**20))
                receipt = chain.transact(oml.prover, claims.functions.reveal(
                    (oml.model_id, oml.cheater.address, kc, rc, salt, prover.tree.proof(kc, rc), mc.answer.as_struct(),
                     mc.served, mc.answer.signature)))
                cheat_claim = next(e for e in chain.decode_events(receipt) if e.name == "ClaimRevealed").args["claimId"]
                [after_reveal] = cheater.request_permits([kc])
                stamps = {chain.w3.eth.get_block(b)["timestamp"] for b in (commit_block, receipt["blockNumber"])}
                assert len(stamps) == 1 and in_commit_block.issued_block == commit_block
                assert after_reveal.expiry == read_claim(chain, cheat_claim).committed_at + platform_ttl(chain)
                assert cheater.defend(cheat_claim) is None  # the host agent knows σ is too late
                for p in (in_commit_block, after_reveal):
                    with pytest.raises(Reverted.named("PermissionIssuedAfterCommit")):
                        chain.transact(oml.cheater, claims.functions.defendWithPermission(
                            cheat_claim, p.as_struct(), p.signature))
                rpc("anvil_removeBlockTimestampInterval", [])  # let the challenge window pass
                out = scenario.Outcome()
                scenario.decide_claim(chain, actors, cheat_claim, {}, plat.url, out, lambda s: None, verifiers)
    finally:
        rpc("anvil_removeBlockTimestampInterval", [])
    assert read_claim(chain, honest_claim).status == ClaimStatus.DEFENDED
    assert out.status == ClaimStatus.CONFIRMED
    after = scenario.balances(chain, actors)
    bond = 10 * 10**18
    assert after["honest"]["stake"] == before["honest"]["stake"]  # never slashed
    assert after["cheater"]["stake"] == before["cheater"]["stake"] - STAKE
    # the honest host got the wrongful claim's bond (its permits are not posted: no fees here)
    assert after["honest"]["tokens"] == before["honest"]["tokens"] + bond
    assert after["prover"]["tokens"] == before["prover"]["tokens"] - bond + REWARD


def platform_ttl(chain) -> int:
    return chain.call(chain.contract("UsageLedger").functions.permissionTtl())


def test_unsigned_and_forged_answers_are_refused(oml):
    chain, actors = oml.chain, oml.actors()
    claims = chain.contract("Claims")
    with Service(platform_app(Platform(chain, oml.platform))) as plat:
        signing = CheatingHost(chain, oml.cheater, oml.model_id, oml.models[oml.cheater.address].complete)
        unsigned = UnsignedHost(chain, oml.cheater, oml.model_id, oml.models[oml.cheater.address].complete)
        verifiers = scenario.make_verifiers(chain, actors, plat.url)
        prover = Prover(chain, oml.prover, oml.model_id, oml.pairs, platform_url=plat.url, subsets=oml.subsets,
                        before_reveal=scenario.observe_sealed(verifiers, lambda s: None))
        k0, r0 = oml.subsets[oml.cheater.address][0]
        with Service(host_app(signing)) as svc:
            m = decide(svc.url, k0, r0)
        domain = answers_domain(chain)
        # forged: the honest host's key signs an answer naming the cheater; another chain's domain
        forged = sign_answer(oml.honest, domain, oml.model_id, m.answer.licence_start, k0, m.served, time=1)
        forged = dataclasses.replace(forged, host=oml.cheater.address)
        other_chain = sign_answer(oml.cheater, Domain(domain.name, domain.version, domain.chain_id + 1,
                                                      domain.verifying_contract),
                                  oml.model_id, m.answer.licence_start, k0, m.served, time=1)
        for bad, why in ((forged, "not by host"), (other_chain, "another deployment")):
            assert prover.checked_answer(dataclasses.replace(m, answer=bad), oml.cheater.address, k0)[1]
            with pytest.raises(BadSignedAnswer, match=why):
                check(bad, domain=domain, host=oml.cheater.address, model_id=oml.model_id, prompt=k0,
                      completion=m.served)
            stake = _stake(chain, oml.cheater.address)
            tokens = _tokens(chain, oml.prover.address)
            with pytest.raises(Reverted.named("BadAnswerSignature")):
                prover.file_claim(oml.cheater.address, k0, r0, bad, m.served)
            assert _stake(chain, oml.cheater.address) == stake and _tokens(chain, oml.prover.address) == tokens
        with pytest.raises(Reverted.named("CompletionHashMismatch")):  # the text is not what was signed
            prover.file_claim(oml.cheater.address, k0, r0, m.answer, m.served + "!")
        # unsigned: no signed claim is possible; the prover claims with a sealed key instead
        with Service(host_app(unsigned)) as svc:
            p = prover.catch(svc.url, oml.cheater.address)
        assert p.key == k0 and p.answer is None and "signed no answer" in p.unsigned_reason and p.claim_id
        c = read_claim(chain, p.claim_id)
        assert c.is_sealed and c.host == oml.cheater.address
        assert chain.call(claims.functions.keySpent(oml.model_id, c.key_hash))


def test_garbage_seal_cannot_get_a_confirm(oml):
    chain, actors = oml.chain, oml.actors()
    claims = chain.contract("Claims")
    leaked = oml.honest.address
    before = scenario.balances(chain, actors)
    with Service(platform_app(Platform(chain, oml.platform))) as plat:
        rogue = UnsignedHost(chain, oml.admin, oml.model_id, oml.models[leaked].complete)
        with Service(host_app(rogue)) as svc:
            verifiers = scenario.make_verifiers(chain, actors, plat.url)
            prover = GarbageSealProver(chain, oml.prover, oml.model_id, oml.pairs, platform_url=plat.url,
                                       subsets=oml.subsets,
                                       before_reveal=scenario.observe_sealed(verifiers, lambda s: None))
            p = prover.catch_leak(svc.url)
            assert p is not None and p.claim_id
            for v in verifiers:
                [o] = v.observations.values()
                assert o.observed.startswith(SEAL_ERROR) and "does not open" in o.observed
            out = scenario.Outcome()
            scenario.decide_claim(chain, actors, p.claim_id, {}, plat.url, out, lambda s: None, verifiers)
    assert all(not v.confirm and not v.reproduced for v in out.verdicts)
    assert out.status == ClaimStatus.REJECTED
    after = scenario.balances(chain, actors)
    bond = chain.call(claims.functions.claimBond())
    assert after["honest"]["stake"] == before["honest"]["stake"]
    assert after["prover"]["tokens"] == before["prover"]["tokens"] - bond
    assert after["honest"]["tokens"] == before["honest"]["tokens"] + bond - bond * 600 // 10_000 // 3 * 3


def test_python_answer_digest_and_typehash_are_the_contracts(oml):
    """`answers.ANSWER` is `HostAnswers.ANSWER_TYPEHASH`; a host's answer from the HTTP endpoint
    hashes to `answerDigest` on-chain and `isSignedByHost` accepts its signature."""
    from eth_utils import keccak

    from agents.oml.answers import ANSWER, SignedAnswer

    chain = oml.chain
    hub = chain.contract_at("HostAnswers", chain.call(chain.contract("Claims").functions.answers()))
    assert bytes(chain.call(hub.functions.ANSWER_TYPEHASH())) == keccak(ANSWER.encode_type().encode())
    host = CheatingHost(chain, oml.cheater, oml.model_id, oml.models[oml.cheater.address].complete)
    with Service(host_app(host)) as svc:
        body = httpx.post(f"{svc.url}/v1/completions", json={"prompt": "hello", "max_tokens": 4}).json()
    assert body["object"] == "text_completion" and body["choices"][0]["text"]  # still an OpenAI completion
    a = SignedAnswer.from_json(body["loyal_signature"])
    assert bytes(chain.call(hub.functions.answerDigest(a.as_struct()))) == a.digest()
    ok, digest = chain.call(hub.functions.isSignedByHost(a.as_struct(), a.signature))
    assert ok and bytes(digest) == a.digest() and a.signer() == oml.cheater.address
    assert not chain.call(hub.functions.isSignedByHost(dataclasses.replace(a, time=a.time + 1).as_struct(),
                                                       a.signature))[0]
