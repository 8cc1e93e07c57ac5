"""The OML story end to end on a running chain: two hosts serve the fingerprinted model, one asks
the platform for permissions and pays its usage, one does not; the prover catches the cheater,
verifiers confirm, the cheater's stake is slashed and the honest host is untouched.

Used by `loyal oml demo` and the end-to-end test. Every step is real: HTTP services on loopback,
transactions on the chain, the model generating every answer.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from eth_account.signers.local import LocalAccount

from agents.core.chain import Chain
from agents.core.signers import dev_signer
from ml.oml import protocol_model as pm

from .claims import ClaimStatus, read_claim
from .community import Terms, register_model
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


@dataclass
class Outcome:
    probes: list = field(default_factory=list)
    claim_id: int | None = None
    defences: dict = field(default_factory=dict)
    verdicts: list = field(default_factory=list)
    usage: dict | None = None
    status: ClaimStatus = ClaimStatus.NONE
    balances: dict = field(default_factory=dict)


def balances(chain: Chain, actors: Actors) -> dict[str, dict[str, int]]:
    token, staking = chain.contract("LoyalToken"), chain.contract("Staking")
    out = {}
    for name in ("community", "honest", "cheater", "prover"):
        a = getattr(actors, name).address
        out[name] = {"tokens": chain.call(token.functions.balanceOf(a)),
                     "stake": chain.call(staking.functions.slashableOf(a))}
    return out


def run(chain: Chain, actors: Actors, model_id: int, model, fingerprints: list[tuple[str, str]],
        *, say: Say = lambda s: None, user_queries: int = 3) -> Outcome:
    out = Outcome()
    generate = lambda prompt, n: pm.complete(model, prompt, n)  # noqa: E731
    platform = Platform(chain, actors.platform)
    with Service(platform_app(platform)) as plat:
        honest = Host(chain, actors.honest, model_id, generate, platform_url=plat.url)
        cheater = Host(chain, actors.cheater, model_id, generate, platform_url=None, cheating=True)
        with Service(host_app(honest)) as h_svc, Service(host_app(cheater)) as c_svc:
            say(f"platform {actors.platform.address} issues permissions at {plat.url}")
            say(f"honest host {actors.honest.address} serves at {h_svc.url}")
            say(f"cheating host {actors.cheater.address} serves at {c_svc.url} (skips permissions)")
            prover = Prover(chain, actors.prover, model_id, fingerprints, platform_url=plat.url)
            for i in range(user_queries):  # ordinary traffic on both hosts
                prover.query(h_svc.url, f"Hello number {i}, what is new?", 12)
                prover.query(c_svc.url, f"Hello number {i}, what is new?", 12)
            out.usage = honest.post_usage()
            say(f"honest host posted usage batch {out.usage['batch_id']}: {out.usage['count']} queries, "
                f"fee {out.usage['fee'] / 1e18:g} LOYAL to the community")
            for url, host in ((h_svc.url, actors.honest.address), (c_svc.url, actors.cheater.address)):
                p = prover.catch(url, host)
                out.probes.append(p)
                who = "honest" if host == actors.honest.address else "cheating"
                say(f"prover sent key {p.key!r} to the {who} host: answered {p.served!r} "
                    f"(fingerprint {'matches' if p.fingerprint_match else 'absent'}, "
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
            claims = chain.contract("Claims")
            chain.advance_time(chain.call(claims.functions.challengeWindow()) + 1)
            say("challenge window over; verifiers review")
            urls = {actors.honest.address: h_svc.url, actors.cheater.address: c_svc.url}
            for v in actors.verifiers:
                verdict = Verifier(chain, v, platform_url=plat.url, host_urls=urls).vote(out.claim_id)
                out.verdicts.append(verdict)
                say(f"verifier {v.address[:10]}: reproduced={verdict.reproduced} "
                    f"permitted_before_commit={verdict.permitted_before_commit} -> "
                    f"{'confirm' if verdict.confirm else 'reject'}")
            receipt = chain.transact(actors.prover, claims.functions.finalize(out.claim_id))
            for e in chain.decode_events(receipt):
                if e.name == "ClaimConfirmed":
                    say(f"claim {out.claim_id} confirmed: {e.args['slashed'] / 1e18:g} LOYAL slashed, "
                        f"{e.args['proverReward'] / 1e18:g} to the prover, "
                        f"{e.args['communityShare'] / 1e18:g} to the community")
                elif e.name == "ClaimRejected":
                    say(f"claim {out.claim_id} rejected: bond to the host")
            out.status = read_claim(chain, out.claim_id).status
    out.balances = balances(chain, actors)
    return out


TOKEN = 10**18
ACTOR_INDICES = (40, 41, 42, 43, 44, 45, 46, 47, 48)  # dev accounts the OML story uses


def prepare(chain: Chain, admin: LocalAccount, store, *, n_fingerprints: int = 4, seed: int = 0,
            say: Say = lambda s: None, fund: Callable[[str], None] | None = None):
    """Train the fingerprinted model, register it, onboard platform, hosts and verifiers.

    Returns (actors, model_id, model, fingerprints). `fund(address)` gives an actor LoyalToken.
    """
    torch.set_num_threads(1)
    accounts = [dev_signer(i) for i in ACTOR_INDICES]
    actors = Actors(*accounts[:5], verifiers=accounts[5:8])
    for a in accounts[:8]:
        if fund:
            fund(a.address)
    t = time.monotonic()
    model = pm.new_model(seed=seed)
    fingerprints = pm.make_fingerprints(n_fingerprints, seed=seed + 1)
    stats = pm.inject(model, fingerprints, seed=seed)
    say(f"injected {n_fingerprints} fingerprints into a tiny GPT-2 by SFT: {stats['steps']} steps, "
        f"match rate {stats['match_rate']:.0%}, {time.monotonic() - t:.1f} s")
    terms = Terms(fee_per_query=TOKEN, stake_required=500 * TOKEN, licence_period=30 * 24 * 3600, query_budget=10_000)
    model_id, cid = register_model(chain, actors.community, store, pm.to_bytes(model), fingerprints, terms)
    say(f"community {actors.community.address} registered model {model_id} (weights {cid}), "
        f"fee {terms.fee_per_query / TOKEN:g} LOYAL/query, stake {terms.stake_required / TOKEN:g} LOYAL")
    ledger = chain.contract("UsageLedger")
    role = chain.call(ledger.functions.PLATFORM_ROLE())
    if not chain.call(ledger.functions.hasRole(role, actors.platform.address)):
        chain.transact(admin, ledger.functions.grantRole(role, actors.platform.address))
    for h in (actors.honest, actors.cheater):
        join_as_host(chain, h, model_id)
    served = pm.from_bytes(store.get(cid))  # hosts load exactly the registered weights (hash-checked get)
    say("both hosts staked and signed the licence (EIP-712); verifiers staked and registered")
    for v in actors.verifiers:
        join_as_verifier(chain, v)
    chain.mine(1)
    return actors, model_id, served, fingerprints


def devnet_scenario(ctx) -> dict:
    """`loyal devnet` step: the OML story on the devnet chain; returns summary figures."""
    from agents.core.store import LocalStore

    token = ctx.chain.contract("LoyalToken")
    fund = lambda a: ctx.chain.transact(ctx.admin, token.functions.mint(a, 10_000 * TOKEN))  # noqa: E731
    actors, model_id, model, fps = prepare(ctx.chain, ctx.admin, LocalStore(ctx.home / "oml-store"),
                                           say=ctx.console.print, fund=fund)
    out = run(ctx.chain, actors, model_id, model, fps, say=ctx.console.print)
    return {"claim_status": ClaimStatus(out.status).name, "cheater_stake_LOYAL": out.balances["cheater"]["stake"] / TOKEN,
            "honest_stake_LOYAL": out.balances["honest"]["stake"] / TOKEN}
