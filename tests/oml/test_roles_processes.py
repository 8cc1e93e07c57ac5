"""Each OML role as its own OS process, SIGKILLed at its most delicate moment and restarted: nothing is
lost and no transaction is repeated.

The kill lands deterministically: the chain's automine is switched off, the role sends its
transaction and waits for the receipt, the test sees the transaction pending, kills the process,
mines the block and restarts the role with the same arguments."""
from __future__ import annotations

import json

import httpx
import pytest

from agents.core.events import fetch_events
from agents.oml.adversaries import CheatingHost
from agents.oml.answers import SignedAnswer
from agents.oml.claims import ClaimStatus, read_claim
from agents.oml.host import create_app as host_app
from agents.oml.permits import query_hash
from agents.oml.platform import Platform, create_app, sign_request
from agents.oml.processes import Roles, free_port
from agents.oml.prover import Prover
from agents.oml.serve import Service
from agents.oml.verifier import Verifier

pytestmark = pytest.mark.slow

PLATFORM, HONEST, CHEATER, PROVER, VERIFIER = 14, 11, 12, 13, 15  # conftest's dev accounts


def _automine(chain, on: bool) -> None:
    chain.w3.provider.make_request("evm_setAutomine", [on])


def _sent(chain, address: str) -> int:
    return chain.w3.eth.get_transaction_count(address, "latest")


def _pending(chain, address: str) -> bool:
    return chain.w3.eth.get_transaction_count(address, "pending") > chain.w3.eth.get_transaction_count(address, "latest")


def _kill_when_pending(roles: Roles, name: str, chain, address: str, timeout: float = 180) -> None:
    """Freeze the chain until `name` sends a transaction; SIGKILL it; mine that transaction."""
    try:
        roles.wait(name, lambda: _pending(chain, address), f"{name} to send a transaction", timeout)
        roles.kill(name)
        chain.w3.provider.make_request("evm_mine", [])
    finally:
        _automine(chain, True)


def _pass_appeal_window(roles: Roles, chain, claim_id: int) -> None:
    """Once the verifier process finalized the claim, move the clock past the appeal window."""
    roles.wait("verifier", lambda: read_claim(chain, claim_id).status != ClaimStatus.OPEN, "the finalize")
    chain.advance_time(chain.call(chain.contract("ClaimAppeals").functions.appealWindow()) + 1)
    chain.mine(1)


@pytest.fixture
def roles(oml, anvil, tmp_path):
    with Roles(anvil.rpc_url, oml.chain.book.path, tmp_path) as r:
        yield r
    _automine(oml.chain, True)
    oml.chain.reset_nonces()


def test_platform_restart_keeps_nonces_and_records(oml, roles):
    chain = oml.chain
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    roles.start("platform", ["platform", "--port", str(port), *roles.common(PLATFORM)])
    roles.wait_http("platform", f"{url}/v1/health")
    q = [query_hash(f"q{i}") for i in range(3)]
    r = httpx.post(f"{url}/v1/permits", json=sign_request(oml.honest, oml.model_id, q[:2]), timeout=30)
    assert [p["nonce"] for p in r.json()["permits"]] == [0, 1]
    roles.kill("platform")
    roles.restart("platform")
    roles.wait_http("platform", f"{url}/v1/health")
    assert httpx.get(f"{url}/v1/health").json()["issued"] == 2
    got = httpx.get(f"{url}/v1/permits/{oml.honest.address}/0x{q[0].hex()}").json()["permits"]
    assert [p["nonce"] for p in got] == [0], "the record survived the kill"
    r = httpx.post(f"{url}/v1/permits", json=sign_request(oml.honest, oml.model_id, q[2:]), timeout=30)
    assert [p["nonce"] for p in r.json()["permits"]] == [2], "no nonce issued twice"
    # a host without a licence gets nothing, after the restart as before
    r = httpx.post(f"{url}/v1/permits", json=sign_request(oml.prover, oml.model_id, q[:1]), timeout=30)
    assert r.status_code == 403
    assert _sent(chain, oml.platform.address) == 0


def _licensed_dir(oml, roles, platform_url: str, host_index: int) -> None:
    roles.run(f"license-{host_index}", ["license", "--model-id", str(oml.model_id), "--platform", platform_url,
                                        *roles.common(host_index)])


def test_host_killed_while_posting_usage_posts_it_once_and_still_defends(oml, roles):
    """The host is killed with its usage batch in the mempool; restarted, it records that batch as
    posted (one UsagePosted, one fee), keeps its permits, serves chat and completions, and defends a
    claim a lying prover files over a query it had permission for."""
    chain = oml.chain
    platform = Platform(chain, oml.platform, content_keys={oml.model_id: oml.keys})
    with Service(create_app(platform)) as plat:
        _licensed_dir(oml, roles, plat.url, HONEST)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        roles.start("host", ["host", "serve", "--model-id", str(oml.model_id), "--platform", plat.url, "--port",
                             str(port), "--batch", "2", "--usage-every", "3600", "--poll", "0.2",
                             "--device", "auto", *roles.common(HONEST)])
        roles.wait_http("host", f"{url}/v1/models")
        assert httpx.get(f"{url}/v1/models").json()["data"][0]["owned_by"] == oml.honest.address
        key, response = oml.subsets[oml.honest.address][0]
        before = _sent(chain, oml.honest.address)
        _automine(chain, False)
        try:
            r = httpx.post(f"{url}/v1/completions", json={"prompt": key, "max_tokens": len(response) + 2}, timeout=60)
            completion = r.json()["choices"][0]["text"]
            assert completion.startswith(response)
            answer = SignedAnswer.from_json(r.json()["loyal_signature"])
            r = httpx.post(f"{url}/v1/chat/completions", timeout=60,
                           json={"messages": [{"role": "user", "content": "hello"}], "max_tokens": 4})
            assert r.status_code == 200 and r.json()["choices"][0]["message"]["role"] == "assistant"
        finally:
            _kill_when_pending(roles, "host", chain, oml.honest.address)
        roles.restart("host")
        roles.wait_http("host", f"{url}/v1/models")
        state = roles.home / "hosts" / f"{oml.model_id}-{oml.honest.address}" / "usage.json"
        roles.wait("host", lambda: json.loads(state.read_text())["intent"] is None, "the host to settle its batch")
        posted = [e for e in fetch_events(chain, contracts=["UsageLedger"], names=["UsagePosted"])
                  if e.args["host"] == oml.honest.address]
        assert len(posted) == 1 and posted[0].args["count"] == 2
        assert _sent(chain, oml.honest.address) == before + 1, "the batch was not sent again"
        # a lying prover claims over the key the host was permitted to serve; the restarted host defends
        prover = Prover(chain, oml.prover, oml.model_id, oml.pairs, platform_url=plat.url, subsets=oml.subsets)
        claim_id = prover.file_claim(oml.honest.address, key, response, answer, completion)
        roles.wait("host", lambda: read_claim(chain, claim_id).status == ClaimStatus.DEFENDED, "the defence")
        defended = [e for e in fetch_events(chain, contracts=["Claims"], names=["ClaimDefended"])]
        assert len(defended) == 1 and defended[0].args["batchId"] == posted[0].args["batchId"]


def test_prover_killed_after_commit_reveals_once(oml, roles):
    chain = oml.chain
    platform = Platform(chain, oml.platform)
    cheater = CheatingHost(chain, oml.cheater, oml.model_id, oml.models[oml.cheater.address].complete)
    fps = roles.home / "fps.json"
    fps.write_text(json.dumps({"model_id": oml.model_id, "fingerprints": oml.pairs, "subsets": oml.subsets}))
    with Service(create_app(platform)) as plat, Service(host_app(cheater)) as c_svc:
        args = ["prover", "--model-id", str(oml.model_id), "--platform", plat.url, "--fingerprints", str(fps),
                "--once", "--poll", "0.2", "--target", f"{oml.cheater.address}={c_svc.url}", *roles.common(PROVER)]
        before = _sent(chain, oml.prover.address)
        _automine(chain, False)
        roles.start("prover", args)
        _kill_when_pending(roles, "prover", chain, oml.prover.address)  # the commit, in the mempool
        assert _sent(chain, oml.prover.address) == before + 1
        roles.restart("prover")
        roles.wait("prover", lambda: roles.procs["prover"].poll() is not None, "the prover to finish")
    assert roles.procs["prover"].returncode == 0, roles.log("prover").read_text()[-2000:]
    commits = [e for e in fetch_events(chain, contracts=["Claims"], names=["ClaimCommitted"])
               if e.args["prover"] == oml.prover.address]
    revealed = fetch_events(chain, contracts=["Claims"], names=["ClaimRevealed"])
    assert len(commits) == 1 and len(revealed) == 1, "one commitment, one claim"
    assert revealed[0].args["host"] == oml.cheater.address
    assert _sent(chain, oml.prover.address) == before + 3  # commit, approve, reveal: each once


def test_verifier_killed_while_voting_votes_once_then_settles(oml, roles):
    chain = oml.chain
    platform = Platform(chain, oml.platform)
    cheater = CheatingHost(chain, oml.cheater, oml.model_id, oml.models[oml.cheater.address].complete)
    with Service(create_app(platform)) as plat, Service(host_app(cheater)) as c_svc:
        prover = Prover(chain, oml.prover, oml.model_id, oml.pairs, platform_url=plat.url, subsets=oml.subsets)
        claim_id = prover.catch(c_svc.url, oml.cheater.address).claim_id
        assert claim_id
        claims = chain.contract("Claims")
        chain.advance_time(chain.call(claims.functions.challengeWindow()) + 1)
        me = oml.verifiers[0].address
        before = _sent(chain, me)
        args = ["verifier", "--platform", plat.url, "--exit-after", "1", "--poll", "0.2", *roles.common(VERIFIER)]
        _automine(chain, False)
        roles.start("verifier", args)
        _kill_when_pending(roles, "verifier", chain, me)  # its vote, in the mempool
        assert chain.call(claims.functions.hasVoted(claim_id, me))
        roles.restart("verifier")
        for v in oml.verifiers[1:]:  # the other two vote in process
            Verifier(chain, v, platform_url=plat.url, host_urls={oml.cheater.address: c_svc.url}).vote(claim_id)
        _pass_appeal_window(roles, chain, claim_id)
        roles.wait("verifier", lambda: roles.procs["verifier"].poll() is not None, "the verifier to settle", 240)
    assert roles.procs["verifier"].returncode == 0, roles.log("verifier").read_text()[-2000:]
    votes = [e for e in fetch_events(chain, contracts=["Claims"], names=["Voted"]) if e.args["verifier"] == me]
    assert len(votes) == 1 and votes[0].args["confirm"]
    assert read_claim(chain, claim_id).status == ClaimStatus.CONFIRMED
    assert chain.call(claims.functions.settled(claim_id, me))
    assert _sent(chain, me) == before + 4  # vote, finalize, release, settle: each once


def test_verifier_killed_while_observing_a_sealed_claim_observes_once_then_votes_on_it(oml, roles):
    """A leaked copy at an endpoint that signs nothing: the prover seals the claim's opening to the
    verifiers. The verifier process is killed with its `observe` in the mempool; restarted, it does
    not observe again, and after the reveal votes on the observation it recorded before the kill."""
    from agents.oml.adversaries import UnsignedHost

    chain = oml.chain
    platform = Platform(chain, oml.platform)
    honest = oml.honest.address
    rogue = UnsignedHost(chain, oml.cheater, oml.model_id, oml.models[honest].complete)  # the honest host's copy
    with Service(create_app(platform)) as plat, Service(host_app(rogue)) as r_svc:
        prover = Prover(chain, oml.prover, oml.model_id, oml.pairs, platform_url=plat.url, subsets=oml.subsets)
        key, response = oml.subsets[honest][0]
        pending = prover.commit_leak(honest, r_svc.url, key, response)
        assert len(pending.sealed_to) == 3
        me = oml.verifiers[0].address
        before = _sent(chain, me)
        args = ["verifier", "--platform", plat.url, "--exit-after", "1", "--poll", "0.2", *roles.common(VERIFIER)]
        _automine(chain, False)
        roles.start("verifier", args)
        _kill_when_pending(roles, "verifier", chain, me)  # its observation, in the mempool
        roles.restart("verifier")
        others = [Verifier(chain, v, platform_url=plat.url) for v in oml.verifiers[1:]]
        for v in others:
            v.observe_pending()
        claim_id = prover.reveal_leak(pending)
        claims = chain.contract("Claims")
        chain.advance_time(chain.call(claims.functions.challengeWindow()) + 1)
        for v in others:
            v.vote(claim_id)
        _pass_appeal_window(roles, chain, claim_id)
        roles.wait("verifier", lambda: roles.procs["verifier"].poll() is not None, "the verifier to settle", 240)
    assert roles.procs["verifier"].returncode == 0, roles.log("verifier").read_text()[-2000:]
    observed = [e for e in fetch_events(chain, contracts=["Claims"], names=["Observed"]) if e.args["verifier"] == me]
    assert len(observed) == 1, "observed once, despite the kill"
    shown = [e for e in fetch_events(chain, contracts=["Claims"], names=["ObservationRevealed"])
             if e.args["verifier"] == me]
    assert len(shown) == 1 and shown[0].args["observed"].startswith(response)
    assert read_claim(chain, claim_id).status == ClaimStatus.CONFIRMED
    assert chain.call(claims.functions.settled(claim_id, me))
    assert _sent(chain, me) == before + 5  # observe, vote, finalize, release, settle: each once
