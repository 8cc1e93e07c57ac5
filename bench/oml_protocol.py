"""OML protocol figures: permission signatures/s (in-process and through the platform's HTTP API),
host latency per query with vs without a permission round trip, gas per claim step, per usage
batch and per single redeemed permission, leak claims and verifier settlement, and the time a
verifier takes to review a functional vs an exact claim against the same host. One fresh Anvil;
tiny fingerprinted GPT-2 copies (one per host) serve."""
import os
import statistics
import time

import httpx
import torch

from agents.core.chain import Chain
from agents.core.signers import dev_signer
from agents.core.store import LocalStore
from agents.oml import scenario
from agents.oml.community import Terms, register_model
from agents.oml.adversaries import CheatingHost
from agents.oml.host import Host, create_app as host_app, join_as_host
from agents.oml.appeals import release_when_final
from agents.oml.answers import answers_domain, sign_answer
from agents.oml.matching import decide
from agents.oml.sealed import Opening, observation_hash, public_key, seal
from agents.oml.permits import PermitSigner, UsageTree, query_hash
from agents.oml.platform import Platform, create_app as platform_app, sign_request
from agents.oml.prover import Prover
from agents.oml.serve import Service
from agents.oml.verifier import Verifier
from ml.lm import tiny_causal_lm
from ml.oml import decode
from ml.oml import functional as F
from ml.oml.copies import CopySpec, to_bytes
from ml.oml.commitment import FingerprintTree
from ml.oml.inject import InjectConfig, inject

from . import devnet, write


def signing_in_process(n: int = 20_000) -> dict:
    signer = PermitSigner(os.urandom(32), 31337, "0x" + "11" * 20)
    hashes = [os.urandom(32) for _ in range(n)]
    t = time.perf_counter()
    signer.sign_batch("0x" + "22" * 20, 1, hashes, 0, 2**40, 1)
    dt = time.perf_counter() - t
    return {"permits": n, "seconds": round(dt, 3), "signatures_per_s": round(n / dt)}


def signing_over_http(plat_url: str, host, model_id: int) -> dict:
    """Permits/s through `POST /v1/permits`, including the host signing each request (EIP-191)."""
    out = {}
    with httpx.Client(base_url=plat_url, timeout=60) as c:
        for batch, rounds in ((1, 200), (64, 40), (1024, 8)):
            t = time.perf_counter()
            for _ in range(rounds):
                r = c.post("/v1/permits", json=sign_request(host, model_id, [os.urandom(32) for _ in range(batch)]))
                r.raise_for_status()
            dt = time.perf_counter() - t
            out[f"batch_{batch}"] = {"requests": rounds, "permits_per_s": round(batch * rounds / dt),
                                     "ms_per_request": round(1000 * dt / rounds, 2)}
    return out


def host_latency(urls: dict[str, str], n: int = 30) -> dict:
    out = {}
    with httpx.Client(timeout=60) as c:
        for name, url in urls.items():
            c.post(f"{url}/v1/completions", json={"prompt": "warm up", "max_tokens": 8}).raise_for_status()
            ms = []
            for i in range(n):
                t = time.perf_counter()
                c.post(f"{url}/v1/completions", json={"prompt": f"query {i}", "max_tokens": 8}).raise_for_status()
                ms.append(1000 * (time.perf_counter() - t))
            out[name] = {"queries": n, "median_ms": round(statistics.median(ms), 2),
                         "p90_ms": round(sorted(ms)[int(0.9 * n) - 1], 2)}
    out["permission_overhead_ms_median"] = round(out["with_permission"]["median_ms"]
                                                 - out["without_permission"]["median_ms"], 2)
    return out


def chain_admin(chain: Chain):
    return dev_signer(0)


def gas(chain: Chain, actors, model_id: int, fps, subsets, platform: Platform, honest: Host) -> dict:
    g = lambda r: r["gasUsed"]  # noqa: E731
    ledger, claims, token = chain.contract("UsageLedger"), chain.contract("Claims"), chain.contract("LoyalToken")
    out: dict = {"postUsage": {}}
    newcomer = dev_signer(60)  # a fresh host: stake, then sign (the licence locks the stake)
    chain.transact(chain_admin(chain), chain.contract("LoyalToken").functions.mint(newcomer.address, 10**21))
    out["agreement_sign_with_stake_lock"] = join_as_host(chain, newcomer, model_id)["sign_gas"]
    for count in (1, 100, 10_000 - 200):
        permits = platform.issue(honest.address, model_id, [os.urandom(32) for _ in range(min(count, 256))])
        root = UsageTree([honest.digest(p) for p in permits]).root
        out["postUsage"][f"count_{count}"] = g(chain.transact(actors.honest, ledger.functions.postUsage(model_id, count, root)))
    [p] = platform.issue(honest.address, model_id, [os.urandom(32)])
    out["redeem_single_permission"] = g(chain.transact(actors.honest, ledger.functions.redeem(p.as_struct(), p.signature)))
    tree = FingerprintTree(fps)
    steps = {}
    for target in (actors.cheater.address, actors.honest.address):
        key, resp = subsets[target][0]
        salt = os.urandom(32)
        if target == actors.honest.address:
            [permit] = platform.issue(target, model_id, [query_hash(key)])
        signer = actors.honest if target == actors.honest.address else actors.cheater
        licence = chain.call(chain.contract("HostAgreements").functions.licenceOf(model_id, target))
        answer = sign_answer(signer, answers_domain(chain), model_id, licence[0], key, resp, time=int(time.time()))
        c = chain.call(claims.functions.claimCommitment(key, resp, target, salt))
        steps.setdefault("commit", g(chain.transact(actors.prover, claims.functions.commit(c))))
        chain.transact(actors.prover, token.functions.approve(claims.address, 10**21))
        r = chain.transact(actors.prover, claims.functions.reveal(
            (model_id, target, key, resp, salt, tree.proof(key, resp), answer.as_struct(), resp, answer.signature)))
        steps.setdefault(f"reveal_signed_answer_proof_len_{len(tree.proof(key, resp))}", g(r))
        claim_id = chain.call(claims.functions.claimCount())
        if target == actors.honest.address:
            steps["defendWithPermission"] = g(chain.transact(actors.honest, claims.functions.defendWithPermission(
                claim_id, permit.as_struct(), permit.signature)))
        else:
            cheat_id = claim_id
    chain.advance_time(chain.call(claims.functions.challengeWindow()) + 1)
    votes = [g(chain.transact(v, claims.functions.vote(cheat_id, True))) for v in actors.verifiers]
    steps["vote"] = round(statistics.mean(votes))
    steps["finalize_confirm_slash"] = g(chain.transact(actors.prover, claims.functions.finalize(cheat_id)))
    release_when_final(chain, actors.prover, cheat_id, wait=True)  # payouts are held for the appeal window
    steps["settleVerifier_reward"] = round(statistics.mean(
        g(chain.transact(v, claims.functions.settleVerifier(cheat_id, v.address))) for v in actors.verifiers))
    # a traced leak (sealed): a key of the honest host's subset, served at another endpoint; all three
    # observe before the reveal, two of three vote
    key, resp = subsets[actors.honest.address][1]
    opening = Opening(key, resp, actors.honest.address, "http://127.0.0.1:9/leaked", os.urandom(32))
    c = opening.commitment()
    chain.transact(actors.prover, claims.functions.commitSealed(
        c, seal(opening, {v.address: public_key(v) for v in actors.verifiers})))
    for v in actors.verifiers:
        chain.transact(v, claims.functions.observe(actors.prover.address, c, observation_hash(c, v.address, "seen", c)))
    sub = FingerprintTree(subsets[actors.honest.address])
    r = chain.transact(actors.prover, claims.functions.revealLeak(
        (model_id, actors.honest.address, opening.endpoint, key, resp, opening.salt, tree.proof(key, resp),
         sub.proof(key, resp))))
    steps[f"revealLeak_sealed_proofs_{len(tree.proof(key, resp))}_{len(sub.proof(key, resp))}"] = g(r)
    leak_id = chain.call(claims.functions.claimCount())
    for v in actors.verifiers[:2]:
        chain.transact(v, claims.functions.voteObserved((leak_id, True, "seen", c)))
    chain.advance_time(chain.call(claims.functions.challengeWindow()) + 1)
    steps["finalize_leak_confirm_slash"] = g(chain.transact(actors.prover, claims.functions.finalize(leak_id)))
    release_when_final(chain, actors.prover, leak_id, wait=True)
    absent = actors.verifiers[2]
    steps["settleVerifier_penalty"] = g(chain.transact(actors.prover, claims.functions.settleVerifier(
        leak_id, absent.address)))
    steps["claim_total_commit_reveal_3votes_finalize"] = (
        steps["commit"] + next(v for k, v in steps.items() if k.startswith("reveal")) + sum(votes)
        + steps["finalize_confirm_slash"])
    out["claim"] = steps
    return out


def verifier_review(chain: Chain, actors, store, plat_url: str, runs: int = 7) -> dict:
    """Median time of `Verifier.review` (claim record, evidence logs, the signed answer's check and
    the decision on its completion, platform permit record: no host query) for a functional and an
    exact claim against one cheating host serving one model
    (`tiny_causal_lm` with 4 functional fingerprints injected by SFT). The model's commitment holds
    keys 0-1 as (key, rule descriptor) and keys 2-3 as (key, trained answer), so both claims are
    decided on the same weights; `decide_ms` is the host query plus the decision alone."""
    model, tok = tiny_causal_lm(seed=0)
    ffps = F.generate(model, tok, F.FunctionalGenConfig(n=4, seed=3, words=4, min_words=4, key_tokens=12))
    model, _ = inject(model, tok, F.training_pairs(ffps), InjectConfig(epochs=300, lr=3e-3, batch_size=4))
    claims_of = {"functional": ffps[0].pair, "exact": (ffps[2].key, ffps[2].target)}
    pairs = [ffps[0].pair, ffps[1].pair, claims_of["exact"], (ffps[3].key, ffps[3].target)]
    terms = Terms(fee_per_query=10**18, stake_required=500 * 10**18, licence_period=30 * 24 * 3600)
    model_id, _ = register_model(chain, actors.community, store, to_bytes(model, "tiny-gpt2-bytes"), pairs, terms)
    cheater = dev_signer(61)  # a fresh host (the story's cheater was slashed by `gas`)
    chain.transact(chain_admin(chain), chain.contract("LoyalToken").functions.mint(cheater.address, 10**21))
    join_as_host(chain, cheater, model_id)
    chain.mine(1)
    host = CheatingHost(chain, cheater, model_id, lambda p, n: decode.greedy_text(model, tok, p, n))
    out: dict = {"runs": runs, "model": "tiny_causal_lm(0) (2 layers, 64 dims, bytes), 4 functional fingerprints "
                                      "(4 words, gamma 0.25, alpha 0.01) injected"}
    with Service(host_app(host)) as svc:
        prover = Prover(chain, actors.prover, model_id, pairs, platform_url=plat_url)
        verifier = Verifier(chain, actors.verifiers[0], platform_url=plat_url, host_urls={cheater.address: svc.url})
        for family, (key, response) in claims_of.items():
            m = decide(svc.url, key, response)
            if not m.matched:
                raise RuntimeError(f"{family} fingerprint not reproduced by the host: {m.reason}")
            chain.mine(1)
            claim_id = prover.file_claim(cheater.address, key, response, m.answer, m.served)
            served_before = host.state.served
            review, dec = [], []
            for _ in range(runs + 1):  # the first run warms up
                t = time.perf_counter()
                v = verifier.review(claim_id)
                review.append(1000 * (time.perf_counter() - t))
                if not v.confirm:
                    raise RuntimeError(f"{family} claim not confirmed: {v.reason}")
            queries = (host.state.served - served_before) // (runs + 1)
            for _ in range(runs + 1):
                t = time.perf_counter()
                decide(svc.url, key, response)
                dec.append(1000 * (time.perf_counter() - t))
            out[family] = {"review_ms_median": round(statistics.median(review[1:]), 2),
                           "decide_ms_median": round(statistics.median(dec[1:]), 2),
                           "host_queries_per_review": queries,
                           "tokens_requested_by_prover": F.Rule.parse(response).max_tokens
                           if family == "functional" else [len(response.encode()) // 3 + 2, len(response.encode()) + 1],
                           "reason": v.reason}
    out["functional_over_exact_review"] = round(out["functional"]["review_ms_median"]
                                                / out["exact"]["review_ms_median"], 2)
    return out


def main() -> None:
    torch.set_num_threads(1)
    with devnet(accounts=64) as (chain, tmp, _):
        admin = dev_signer(0)
        token = chain.contract("LoyalToken")
        fund = lambda a: chain.transact(admin, token.functions.mint(a, 100_000 * 10**18))  # noqa: E731
        actors, dep = scenario.prepare(chain, admin, LocalStore(tmp / "s"),
                                       spec=CopySpec(base="tiny", per_host=4), fund=fund)
        model_id, fps = dep.model_id, dep.fingerprints
        platform = Platform(chain, actors.platform)
        with Service(platform_app(platform)) as plat:
            honest = Host(chain, actors.honest, model_id, dep.models[actors.honest.address].complete,
                          platform_url=plat.url)
            cheater = CheatingHost(chain, actors.cheater, model_id, dep.models[actors.cheater.address].complete)
            with Service(host_app(honest)) as h, Service(host_app(cheater)) as c:
                latency = host_latency({"with_permission": h.url, "without_permission": c.url})
            http = signing_over_http(plat.url, actors.honest, model_id)
            gas_used = gas(chain, actors, model_id, fps, dep.subsets, platform, honest)
            # after the gas figures, so its claims do not pre-warm the storage slots they measure
            review = verifier_review(chain, actors, LocalStore(tmp / "s"), plat.url)
    write("oml_protocol", {
        "note": "2 shared CPU cores, ~8 concurrent agents; tiny byte-level GPT-2 (2 layers, 64 dims), greedy 8 tokens",
        "permission_signing_in_process": signing_in_process(),
        "permission_signing_http": http,
        "host_latency": latency,
        "verifier_review_functional_vs_exact": review,
        "gas": gas_used,
    })


if __name__ == "__main__":
    main()
