"""Platform, hosts, prover and verifiers over real HTTP against the real Anvil."""
from __future__ import annotations

import time

import httpx
import pytest

from common.errors import Reverted
from agents.core.events import fetch_events
from agents.oml import scenario
from agents.oml.claims import ClaimStatus, read_claim
from agents.oml.host import Host, PermissionDenied, create_app as host_app
from agents.oml.platform import Platform, create_app as platform_app, sign_request
from agents.oml.answers import SignedAnswer
from agents.oml.matching import decide
from agents.oml.prover import Prover
from agents.oml.serve import Service


def test_cheater_is_caught_and_slashed_honest_host_untouched(oml):
    actors = oml.actors()
    before = scenario.balances(oml.chain, actors)
    out = scenario.run(oml.chain, actors, oml.deployment(), user_queries=2)
    honest_probe, cheater_probe = out.probes
    assert honest_probe.fingerprint_match and honest_probe.permitted and honest_probe.claim_id is None
    assert cheater_probe.fingerprint_match and not cheater_probe.permitted and cheater_probe.claim_id
    # each host was probed with a key of its own copy's subset
    assert (honest_probe.key, honest_probe.response) in oml.subsets[oml.honest.address]
    assert (cheater_probe.key, cheater_probe.response) in oml.subsets[oml.cheater.address]
    assert out.defences == {}
    assert all(v.confirm and v.reproduced and not v.permitted_before_commit for v in out.verdicts)
    assert out.status == ClaimStatus.CONFIRMED
    after = out.balances
    stake = 500 * 10**18
    assert after["cheater"]["stake"] == before["cheater"]["stake"] - stake
    assert after["honest"]["stake"] == before["honest"]["stake"]
    reward = stake * 2_000 // 10_000
    per_verifier = stake * 600 // 10_000 // 3
    assert out.settlements == {v.address: (per_verifier, 0) for v in oml.verifiers}
    for i in range(3):
        assert after[f"verifier {i + 1}"]["tokens"] == before[f"verifier {i + 1}"]["tokens"] + per_verifier
    assert after["prover"]["tokens"] == before["prover"]["tokens"] + reward
    # community: the honest host's fees (2 user queries + the prover's probe) plus its share of the slash
    assert after["community"]["tokens"] == (before["community"]["tokens"] + 2 * 10**18 + stake - reward
                                            - 3 * per_verifier)


def test_copies_carry_only_their_own_subset(oml):
    for host, model in oml.models.items():
        for other, pairs in oml.subsets.items():
            hits = [model.complete(k, len(r.encode()) + 1).startswith(r) for k, r in pairs]
            assert all(hits) if other == host else not any(hits), (host, other, hits)


def test_leaked_copy_is_traced_to_its_host_and_that_host_slashed(oml):
    actors = oml.actors()
    before = scenario.balances(oml.chain, actors)
    out = scenario.run_leak(oml.chain, actors, oml.deployment(), oml.honest.address)  # the honest host's copy leaked
    [probe] = out.probes
    assert probe.host == oml.honest.address and probe.endpoint and probe.claim_id
    assert (probe.key, probe.response) in oml.subsets[oml.honest.address]
    claim = read_claim(oml.chain, probe.claim_id)
    assert claim.is_leak and claim.host == oml.honest.address
    # Auditors link the commit (which precedes the claim id) to the claim through its commitment.
    [revealed] = fetch_events(oml.chain, contracts=["Claims"], names=["ClaimRevealed"],
                              from_block=claim.reveal_block, to_block=claim.reveal_block)
    [committed] = [e for e in fetch_events(oml.chain, contracts=["Claims"], names=["ClaimCommitted"])
                   if e.args["commitment"] == revealed.args["commitment"]]
    assert revealed.args["claimId"] == probe.claim_id and committed.args["prover"] == revealed.args["prover"]
    assert all(v.confirm and v.reproduced for v in out.verdicts)
    assert out.status == ClaimStatus.CONFIRMED
    assert out.balances["honest"]["stake"] == before["honest"]["stake"] - 500 * 10**18
    assert out.balances["cheater"]["stake"] == before["cheater"]["stake"]


def test_leak_claim_against_a_host_whose_subset_lacks_the_key_reverts(oml):
    platform = Platform(oml.chain, oml.platform)
    with Service(platform_app(platform)) as plat:
        prover = Prover(oml.chain, oml.prover, oml.model_id, oml.pairs, platform_url=plat.url, subsets=oml.subsets)
        key, response = oml.subsets[oml.honest.address][0]
        with pytest.raises(Reverted.named("NotInHostSubset")):
            prover.subsets[oml.cheater.address] = oml.subsets[oml.honest.address]  # a wrong attribution
            prover.file_leak(oml.cheater.address, "http://127.0.0.1:9/v1", key, response)


def test_honest_host_defends_a_wrongful_claim_with_its_usage_batch(oml):
    chain = oml.chain
    platform = Platform(chain, oml.platform)
    gen = oml.model.complete
    with Service(platform_app(platform)) as plat:
        host = Host(chain, oml.honest, oml.model_id, gen, platform_url=plat.url)
        with Service(host_app(host)) as svc:
            prover = Prover(chain, oml.prover, oml.model_id, oml.pairs, platform_url=plat.url)
            key, response = oml.pairs[1]
            m = decide(svc.url, key, response)
            assert m.matched and m.answer is not None
            host.post_usage()
            chain.mine(1)  # the prover commits in a later block than the batch
            # a signed answer naming σ: the prover ignores the platform record and claims anyway
            claim_id = prover.file_claim(oml.honest.address, key, response, m.answer, m.served)
            assert host.defend_all() == {claim_id: "usage batch"}
    claims = chain.contract("Claims")
    assert read_claim(chain, claim_id).status == ClaimStatus.DEFENDED
    with pytest.raises(Reverted.named("ClaimNotOpen")):
        chain.transact(oml.prover, claims.functions.finalize(claim_id))
    with pytest.raises(Reverted.named("AnswerAlreadyUsed")):
        prover.file_claim(oml.honest.address, key, response, m.answer, m.served)


def test_signed_permission_defends_before_usage_is_posted(oml):
    chain = oml.chain
    platform = Platform(chain, oml.platform)
    with Service(platform_app(platform)) as plat:
        host = Host(chain, oml.honest, oml.model_id, oml.model.complete, platform_url=plat.url)
        prover = Prover(chain, oml.prover, oml.model_id, oml.pairs, platform_url=plat.url)
        key, response = oml.pairs[2]
        text = host.serve(key, 40)
        assert text.startswith(response)
        answer = SignedAnswer.from_json(host.sign_answer(key, text))
        chain.mine(1)
        claim_id = prover.file_claim(oml.honest.address, key, response, answer, text)
        assert host.defend(claim_id) == "signed permission"


def test_platform_refuses_unlicensed_host_and_host_reports_it(oml, signers):
    platform = Platform(oml.chain, oml.platform)
    with Service(platform_app(platform)) as plat:
        stranger = Host(oml.chain, signers[21], oml.model_id, lambda p, n: "x", platform_url=plat.url)
        with pytest.raises(PermissionDenied):
            stranger.request_permits(["hello"])
        with Service(host_app(stranger)) as svc:
            r = httpx.post(f"{svc.url}/v1/completions", json={"prompt": "hello", "max_tokens": 4})
            assert r.status_code == 503 and "no running licence" in r.json()["detail"]
    gone = Host(oml.chain, oml.honest, oml.model_id, lambda p, n: "x", platform_url=plat.url)  # service stopped
    with pytest.raises(PermissionDenied, match="unreachable"):
        gone.request_permits(["hello"])


def test_platform_rejects_malformed_requests(oml):
    with Service(platform_app(Platform(oml.chain, oml.platform))) as plat:
        signed = sign_request(oml.honest, oml.model_id, [b"\x01" * 32])
        bad = httpx.post(f"{plat.url}/v1/permits", json={**signed, "host": "nope"})
        assert bad.status_code == 422
        short = httpx.post(f"{plat.url}/v1/permits", json={**signed, "query_hashes": ["0x1234"]})
        assert short.status_code == 422 and "not 32 bytes" in short.json()["detail"]
        unsigned = {k: v for k, v in signed.items() if k != "signature"}
        assert httpx.post(f"{plat.url}/v1/permits", json=unsigned).status_code == 422


def test_platform_serves_only_requests_signed_by_the_host(oml):
    with Service(platform_app(Platform(oml.chain, oml.platform))) as plat:
        url = f"{plat.url}/v1/permits"
        forged = {**sign_request(oml.cheater, oml.model_id, [b"\x02" * 32]), "host": oml.honest.address}
        r = httpx.post(url, json=forged)  # the cheater asks in the honest host's name
        assert r.status_code == 401 and "not by host" in r.json()["detail"]
        stale = sign_request(oml.honest, oml.model_id, [b"\x03" * 32], issued_at=int(time.time()) - 3600)
        r = httpx.post(url, json=stale)
        assert r.status_code == 401 and "more than" in r.json()["detail"]
        ok = sign_request(oml.honest, oml.model_id, [b"\x04" * 32])
        assert httpx.post(url, json=ok).status_code == 200
        r = httpx.post(url, json=ok)
        assert r.status_code == 401 and "replay" in r.json()["detail"]
        tampered = {**ok, "query_hashes": ["0x" + "05" * 32]}
        assert httpx.post(url, json=tampered).status_code == 401
        again = sign_request(oml.honest, oml.model_id, [b"\x04" * 32])  # same query, new request id
        assert httpx.post(url, json=again).status_code == 200


def test_platform_log_restores_nonces_and_records(oml, tmp_path):
    log = tmp_path / "permits.jsonl"
    first = Platform(oml.chain, oml.platform, log_path=log)
    a = first.issue(oml.honest.address, oml.model_id, [b"\x01" * 32, b"\x02" * 32])
    again = Platform(oml.chain, oml.platform, log_path=log)
    [b] = again.issue(oml.honest.address, oml.model_id, [b"\x03" * 32])
    assert [p.nonce for p in a] == [0, 1] and b.nonce == 2
    assert again.records(oml.honest.address, b"\x01" * 32) == [a[0]]
