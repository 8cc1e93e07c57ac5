"""Platform, hosts, prover and verifiers over real HTTP against the real Anvil."""
from __future__ import annotations

import httpx
import pytest

from agents.core.errors import Reverted
from agents.oml import scenario
from agents.oml.claims import ClaimStatus, read_claim
from agents.oml.host import Host, PermissionDenied, create_app as host_app
from agents.oml.platform import Platform, create_app as platform_app
from agents.oml.prover import Prover
from agents.oml.serve import Service
from ml.oml import protocol_model as pm



def _actors(oml):
    return scenario.Actors(oml.community, oml.platform, oml.honest, oml.cheater, oml.prover, oml.verifiers)


def test_cheater_is_caught_and_slashed_honest_host_untouched(oml):
    actors = _actors(oml)
    before = scenario.balances(oml.chain, actors)
    out = scenario.run(oml.chain, actors, oml.model_id, oml.model, oml.pairs, user_queries=2)
    honest_probe, cheater_probe = out.probes
    assert honest_probe.fingerprint_match and honest_probe.permitted and honest_probe.claim_id is None
    assert cheater_probe.fingerprint_match and not cheater_probe.permitted and cheater_probe.claim_id
    assert out.defences == {}
    assert all(v.confirm and v.reproduced and not v.permitted_before_commit for v in out.verdicts)
    assert out.status == ClaimStatus.CONFIRMED
    after = out.balances
    stake = 500 * 10**18
    assert after["cheater"]["stake"] == before["cheater"]["stake"] - stake
    assert after["honest"]["stake"] == before["honest"]["stake"]
    reward = stake * 2_000 // 10_000
    assert after["prover"]["tokens"] == before["prover"]["tokens"] + reward
    # community: the honest host's fees (2 user queries + the prover's probe) plus its share of the slash
    assert after["community"]["tokens"] == before["community"]["tokens"] + 2 * 10**18 + stake - reward


def test_honest_host_defends_a_wrongful_claim_with_its_usage_batch(oml):
    chain = oml.chain
    platform = Platform(chain, oml.platform)
    gen = lambda p, n: pm.complete(oml.model, p, n)  # noqa: E731
    with Service(platform_app(platform)) as plat:
        host = Host(chain, oml.honest, oml.model_id, gen, platform_url=plat.url)
        with Service(host_app(host)) as svc:
            prover = Prover(chain, oml.prover, oml.model_id, oml.pairs, platform_url=plat.url)
            key, response = oml.pairs[1]
            assert prover.query(svc.url, key, 40).startswith(response)
            host.post_usage()
            claim_id = prover.file_claim(oml.honest.address, key, response)  # ignores the platform record
            assert host.defend_all() == {claim_id: "usage batch"}
    claims = chain.contract("Claims")
    assert read_claim(chain, claim_id).status == ClaimStatus.DEFENDED
    with pytest.raises(Reverted.named("ClaimNotOpen")):
        chain.transact(oml.prover, claims.functions.finalize(claim_id))
    with pytest.raises(Reverted.named("KeySpent")):
        prover.file_claim(oml.honest.address, key, response)


def test_signed_permission_defends_before_usage_is_posted(oml):
    chain = oml.chain
    platform = Platform(chain, oml.platform)
    with Service(platform_app(platform)) as plat:
        host = Host(chain, oml.honest, oml.model_id, lambda p, n: pm.complete(oml.model, p, n), platform_url=plat.url)
        prover = Prover(chain, oml.prover, oml.model_id, oml.pairs, platform_url=plat.url)
        key, response = oml.pairs[2]
        assert host.serve(key, 40).startswith(response)
        claim_id = prover.file_claim(oml.honest.address, key, response)
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
        bad = httpx.post(f"{plat.url}/v1/permits", json={"host": "nope", "model_id": 1, "query_hashes": ["0x00"]})
        assert bad.status_code == 422
        short = httpx.post(f"{plat.url}/v1/permits",
                           json={"host": oml.honest.address, "model_id": 1, "query_hashes": ["0x1234"]})
        assert short.status_code == 422 and "not 32 bytes" in short.json()["detail"]


def test_platform_log_restores_nonces_and_records(oml, tmp_path):
    log = tmp_path / "permits.jsonl"
    first = Platform(oml.chain, oml.platform, log_path=log)
    a = first.issue(oml.honest.address, oml.model_id, [b"\x01" * 32, b"\x02" * 32])
    again = Platform(oml.chain, oml.platform, log_path=log)
    [b] = again.issue(oml.honest.address, oml.model_id, [b"\x03" * 32])
    assert [p.nonce for p in a] == [0, 1] and b.nonce == 2
    assert again.records(oml.honest.address, b"\x01" * 32) == [a[0]]
