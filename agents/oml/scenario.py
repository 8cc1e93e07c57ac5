"""The OML story end to end on a running chain: the community injects a different fingerprint
subset into each host's copy of the model and registers it; two hosts serve their own copies, one
asks the platform for permissions and pays its usage, one does not; the prover catches the cheater
with a key from the cheater's subset, verifiers confirm, the cheater's stake is slashed, the
verifiers settle their rewards and the honest host is untouched. `run_leak` adds the traced-leak
story: an unlicensed endpoint serving a copy of one host's weights is traced to that host, which is
slashed.

Used by `loyal oml demo`, the end-to-end tests, the benchmark and the `loyal devnet` step. Every
step is real: HTTP services on loopback, transactions on the chain, the model generating every answer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from eth_account.signers.local import LocalAccount

from agents.core.chain import Chain
from agents.core.signers import dev_signer
from ml.oml import copies as mc

from .claims import ClaimStatus, read_claim
from .community import Terms, copy_cid, load_copy, register_copies
from .adversaries import CheatingHost, UnsignedHost
from .host import Host, create_app as host_app, join_as_host
from .platform import Platform, create_app as platform_app
from .prover import Prover
from .serve import Service
from .verifier import Verifier, join_as_verifier

Say = Callable[[str], None]


@dataclass
class Actors:
    community: LocalAccount
    platform: LocalAccount
    honest: LocalAccount
    cheater: LocalAccount
    prover: LocalAccount
    verifiers: list[LocalAccount]
    leaker: LocalAccount | None = None  # a licensed, honestly serving host whose copy leaks (run_leak)


@dataclass
class Deployment:
    """A registered model shipped as per-host copies, each loaded from the store by its CID."""
    model_id: int
    manifest_cid: str
    fingerprints: list[tuple[str, str]]
    subsets: dict[str, list[tuple[str, str]]]   # host address -> fingerprints in its copy only
    models: dict[str, mc.ServedLM]               # host address -> its copy


@dataclass
class Outcome:
    probes: list = field(default_factory=list)
    claim_id: int | None = None
    defences: dict = field(default_factory=dict)
    verdicts: list = field(default_factory=list)
    settlements: dict = field(default_factory=dict)  # verifier address -> (reward, penalty) wei
    usage: dict | None = None
    status: ClaimStatus = ClaimStatus.NONE
    balances: dict = field(default_factory=dict)


def balances(chain: Chain, actors: Actors) -> dict[str, dict[str, int]]:
    token, staking = chain.contract("LoyalToken"), chain.contract("Staking")
    out = {}
    names = ["community", "honest", "cheater", "prover"] + (["leaker"] if actors.leaker else [])
    for name in names:
        a = getattr(actors, name).address
        out[name] = {"tokens": chain.call(token.functions.balanceOf(a)),
                     "stake": chain.call(staking.functions.slashableOf(a))}
    for i, v in enumerate(actors.verifiers):
        out[f"verifier {i + 1}"] = {"tokens": chain.call(token.functions.balanceOf(v.address)),
                                    "stake": chain.call(staking.functions.slashableOf(v.address))}
    return out


def release_after_appeal_window(chain: Chain, signer, claim_id: int) -> bool:
    """Let a decided claim's appeal window pass (dev chain) and release its held payouts (agents/oml/appeals.py)."""
    from agents.oml.appeals import release_when_final

    return release_when_final(chain, signer, claim_id, wait=True)


def make_verifiers(chain: Chain, actors: Actors, platform_url: str) -> list[Verifier]:
    """One in-process `Verifier` per verifier account, following sealed commitments from the next block."""
    start = chain.w3.eth.block_number + 1
    return [Verifier(chain, v, platform_url=platform_url, start_block=start) for v in actors.verifiers]


def observe_sealed(verifiers: list[Verifier], say: Say):
    """The `Prover.before_reveal` hook of an in-process story: every verifier observes the sealed
    commitments posted so far, before the prover reveals."""
    def hook(pending) -> None:
        for v in verifiers:
            for o in v.observe_pending():
                say(f"verifier {v.signer.address[:10]} opened its sealed key, queried {o.endpoint or 'nothing'} "
                    f"before the reveal and committed its observation ({o.reason})")
    return hook


def decide_claim(chain: Chain, actors: Actors, claim_id: int, urls: dict[str, str], platform_url: str,
            out: Outcome, say: Say, verifiers: list[Verifier] | None = None) -> None:
    """Challenge window passes, every verifier reviews (the signed answer, or its own observation
    made before the reveal) and votes, the claim is finalized and each verifier settles."""
    claims = chain.contract("Claims")
    chain.advance_time(chain.call(claims.functions.challengeWindow()) + 1)
    say("challenge window over; verifiers review")
    verifiers = verifiers or make_verifiers(chain, actors, platform_url)
    for v in verifiers:
        verdict = v.vote(claim_id)
        out.verdicts.append(verdict)
        say(f"verifier {v.signer.address[:10]}: reproduced={verdict.reproduced} "
            f"permitted_before_commit={verdict.permitted_before_commit} -> "
            f"{'confirm' if verdict.confirm else 'reject'}")
    receipt = chain.transact(actors.prover, claims.functions.finalize(claim_id))
    for e in chain.decode_events(receipt):
        if e.name == "ClaimConfirmed":
            say(f"claim {claim_id} confirmed: {e.args['slashed'] / 1e18:g} LOYAL slashed from {e.args['host'][:10]}, "
                f"{e.args['proverReward'] / 1e18:g} to the prover, {e.args['communityShare'] / 1e18:g} to the "
                f"community, {e.args['verifierReward'] / 1e18:g} to each confirming verifier")
        elif e.name == "ClaimRejected":
            say(f"claim {claim_id} rejected: {e.args['bondToHost'] / 1e18:g} LOYAL of the bond to the host")
    if release_after_appeal_window(chain, actors.prover, claim_id):
        say(f"appeal window over, no appeal: claim {claim_id}'s held payouts released")
    for v in verifiers:
        reward, penalty = v.settle(claim_id)
        out.settlements[v.signer.address] = (reward, penalty)
    say("verifiers settled: " + ", ".join(f"{a[:10]} +{r / 1e18:g}/-{p / 1e18:g}"
                                          for a, (r, p) in out.settlements.items()))
    out.status = read_claim(chain, claim_id).status


def run(chain: Chain, actors: Actors, dep: Deployment, *, say: Say = lambda s: None,
        user_queries: int = 3) -> Outcome:
    out = Outcome()
    platform = Platform(chain, actors.platform)
    honest_model, cheater_model = dep.models[actors.honest.address], dep.models[actors.cheater.address]
    with Service(platform_app(platform)) as plat:
        honest = Host(chain, actors.honest, dep.model_id, honest_model.complete, platform_url=plat.url)
        cheater = CheatingHost(chain, actors.cheater, dep.model_id, cheater_model.complete)
        with Service(host_app(honest)) as h_svc, Service(host_app(cheater)) as c_svc:
            say(f"platform {actors.platform.address} issues permissions at {plat.url}")
            say(f"honest host {actors.honest.address} serves its copy at {h_svc.url}")
            say(f"cheating host {actors.cheater.address} serves its copy at {c_svc.url} (skips permissions)")
            verifiers = make_verifiers(chain, actors, plat.url)
            prover = Prover(chain, actors.prover, dep.model_id, dep.fingerprints, platform_url=plat.url,
                            subsets=dep.subsets, before_reveal=observe_sealed(verifiers, say))
            for i in range(user_queries):  # ordinary traffic on both hosts
                prover.query(h_svc.url, f"Hello number {i}, what is new?", 8)
                prover.query(c_svc.url, f"Hello number {i}, what is new?", 8)
            out.usage = honest.post_usage()
            say(f"honest host posted usage batch {out.usage['batch_id']}: {out.usage['count']} queries, "
                f"fee {out.usage['fee'] / 1e18:g} LOYAL to the community")
            for url, host in ((h_svc.url, actors.honest.address), (c_svc.url, actors.cheater.address)):
                p = prover.catch(url, host)
                out.probes.append(p)
                who = "honest" if host == actors.honest.address else "cheating"
                say(f"prover sent key {p.key!r} (from the {who} host's subset) to the {who} host: answered "
                    f"{p.served!r} (fingerprint {'matches' if p.fingerprint_match else 'absent'}: {p.reason}, "
                    f"platform permission {'found' if p.permitted else 'missing'})"
                    + (f" -> claim {p.claim_id} filed" if p.claim_id else " -> no claim"))
                if p.claim_id:
                    out.claim_id = p.claim_id
            if out.claim_id is None:
                say("no claim was filed")
                out.balances = balances(chain, actors)
                return out
            out.defences = {**honest.defend_all(), **cheater.defend_all()}
            say(f"hosts answered open claims: {out.defences or 'the cheater has no permission to show'}")
            urls = {actors.honest.address: h_svc.url, actors.cheater.address: c_svc.url}
            decide_claim(chain, actors, out.claim_id, urls, plat.url, out, say, verifiers)
    out.balances = balances(chain, actors)
    return out


def run_leak(chain: Chain, actors: Actors, dep: Deployment, leaked: str, *, say: Say = lambda s: None) -> Outcome:
    """A copy of host `leaked`'s weights runs at an unlicensed endpoint; the prover probes it with a
    key of every host's subset, traces the copy to `leaked` and files a leak claim; verifiers query
    the endpoint and confirm; `leaked`'s stake is slashed."""
    out = Outcome()
    platform = Platform(chain, actors.platform)
    rogue_signer = dev_signer(ACTOR_INDICES[-1] + 1)  # never licensed
    rogue = UnsignedHost(chain, rogue_signer, dep.model_id, dep.models[leaked].complete)
    with Service(platform_app(platform)) as plat, Service(host_app(rogue)) as r_svc:
        say(f"an unlicensed server at {r_svc.url} serves a leaked copy of the model (and signs nothing)")
        verifiers = make_verifiers(chain, actors, plat.url)
        prover = Prover(chain, actors.prover, dep.model_id, dep.fingerprints, platform_url=plat.url,
                        subsets=dep.subsets, before_reveal=observe_sealed(verifiers, say))
        p = prover.catch_leak(r_svc.url)
        if p is None:
            say("the endpoint reproduced no fingerprint of any host's subset")
            out.balances = balances(chain, actors)
            return out
        out.probes.append(p)
        say(f"prover sent one key of each host's subset; {r_svc.url} answered {p.key!r} with {p.served!r}, "
            f"a fingerprint of host {p.host}'s copy -> leak claim {p.claim_id} against that host")
        out.claim_id = p.claim_id
        if out.claim_id is not None:
            decide_claim(chain, actors, out.claim_id, {}, plat.url, out, say, verifiers)
    out.balances = balances(chain, actors)
    return out


TOKEN = 10**18
ACTOR_INDICES = (40, 41, 42, 43, 44, 45, 46, 47, 48)  # dev accounts the OML story uses (49: the rogue server)


def prepare(chain: Chain, admin: LocalAccount, store, *, spec: mc.CopySpec = mc.CopySpec(base="tiny"),
            cache_dir: Path | None = None, leak: bool = False, say: Say = lambda s: None,
            fund: Callable[[str], None] | None = None) -> tuple[Actors, Deployment]:
    """Build one fingerprinted copy per host (a different subset each), register the model with the
    full root and per-host subset roots, onboard platform, hosts and verifiers; the hosts load their
    copies from the store by CID. With `leak`, a third licensed host (the leaker) joins.

    `fund(address)` gives an actor LoyalToken.
    """
    torch.set_num_threads(1 if spec.base == "tiny" else 2)
    accounts = [dev_signer(i) for i in ACTOR_INDICES]
    actors = Actors(*accounts[:5], verifiers=accounts[5:8], leaker=accounts[8] if leak else None)
    hosts = [actors.honest, actors.cheater] + ([actors.leaker] if leak else [])
    for a in accounts[:8] + hosts[2:]:
        if fund:
            fund(a.address)
    spec = mc.CopySpec(**{**spec.__dict__, "hosts": len(hosts)})
    built = mc.build(spec, cache_dir, say=say)
    if not built.cached:
        say(f"{spec.base}: {len(hosts)} copies with {spec.per_host} fingerprints each built in {built.seconds:.0f} s"
            + (f" (cached in {cache_dir})" if cache_dir else ""))
    subsets = {h.address: s for h, s in zip(hosts, built.subsets)}
    terms = Terms(fee_per_query=TOKEN, stake_required=500 * TOKEN, licence_period=30 * 24 * 3600, query_budget=10_000)
    model_id, manifest, keys = register_copies(
        chain, actors.community, store, spec.base, {h.address: b for h, b in zip(hosts, built.blobs)},
        subsets, built.fingerprints, terms)
    say(f"community {actors.community.address} registered model {model_id}: manifest {manifest}, "
        f"root over all {len(built.fingerprints)} fingerprints, one subset root per host; "
        f"fee {terms.fee_per_query / TOKEN:g} LOYAL/query, stake {terms.stake_required / TOKEN:g} LOYAL")
    ledger = chain.contract("UsageLedger")
    role = chain.call(ledger.functions.PLATFORM_ROLE())
    if not chain.call(ledger.functions.hasRole(role, actors.platform.address)):
        chain.transact(admin, ledger.functions.grantRole(role, actors.platform.address))
    for h in hosts:
        join_as_host(chain, h, model_id)
    # every host loads exactly its registered copy (hash-checked get by the CID in the manifest, decrypted)
    models = {h.address: mc.load(load_copy(store, manifest, h.address, keys[h.address])) for h in hosts}
    cids = {h.address: copy_cid(store, manifest, h.address) for h in hosts}
    say(f"{len(hosts)} hosts staked, signed the licence (EIP-712; stake locked for the licence) and loaded "
        f"their own copies ({', '.join(c[:16] + '…' for c in cids.values())}); verifiers staked and registered")
    for v in actors.verifiers:
        join_as_verifier(chain, v)
    chain.mine(1)
    return actors, Deployment(model_id, manifest, built.fingerprints, subsets, models)


def devnet_scenario(ctx) -> dict:
    """`loyal devnet` step: the OML story on the devnet chain; returns summary figures."""
    from agents.core.store import LocalStore

    token = ctx.chain.contract("LoyalToken")
    fund = lambda a: ctx.chain.transact(ctx.admin, token.functions.mint(a, 10_000 * TOKEN))  # noqa: E731
    actors, dep = prepare(ctx.chain, ctx.admin, LocalStore(ctx.home / "oml-store"),
                          spec=mc.CopySpec(base="tiny"), say=ctx.console.print, fund=fund)
    out = run(ctx.chain, actors, dep, say=ctx.console.print)
    return {"claim_status": ClaimStatus(out.status).name, "cheater_stake_LOYAL": out.balances["cheater"]["stake"] / TOKEN,
            "honest_stake_LOYAL": out.balances["honest"]["stake"] / TOKEN}
