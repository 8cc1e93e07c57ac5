"""The OML story end to end on a running chain: two hosts serve the fingerprinted model, one asks
the platform for permissions and pays its usage, one does not; the prover catches the cheater,
verifiers confirm, the cheater's stake is slashed and the honest host is untouched.

Used by `loyal oml demo` and the end-to-end test. Every step is real: HTTP services on loopback,
transactions on the chain, the model generating every answer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from eth_account.signers.local import LocalAccount

from agents.core.chain import Chain
from ml.oml import protocol_model as pm

from .host import Host, create_app as host_app
from .platform import Platform, create_app as platform_app
from .prover import Prover
from .serve import Service
from .verifier import Verifier

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
    status: int = 0
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
            out.status = chain.call(claims.functions.claim(out.claim_id))[11]
    out.balances = balances(chain, actors)
    return out
