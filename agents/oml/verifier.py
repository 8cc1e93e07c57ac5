"""A staked verifier reviews an open claim: it re-derives the fingerprint match (the revealed
pair is in the model's commitment, and the host, queried with the key as a user, still answers
with the response: `matching.decide`, a prefix match for an exact fingerprint, the revealed
green-word rule for a functional one) and checks the platform's permission records for a σ(key)
issued to that host before the claim was committed. It confirms only if the fingerprint matches
and no such permission exists, and votes on-chain. For a leak claim it queries the endpoint named
in the claim instead of the host's own service. Once the claim is decided, `settle` collects its
reward (it voted with the outcome) or takes its penalty.

The evidence (and a leak claim's endpoint) is read from the one block the claim was revealed in
(`reveal_block` on-chain), through the process's shared event source: no scan of the chain."""
from __future__ import annotations

from dataclasses import dataclass

import httpx
from eth_account.signers.local import LocalAccount

from agents.core.chain import Chain, Event
from agents.core.events import fetch_events
from agents.core.token import Stakes

from .claims import ClaimRecord, read_claim
from .matching import HostQueryError, decide
from .permits import Permit, query_hash


@dataclass(frozen=True)
class Verdict:
    claim_id: int
    in_commitment: bool
    reproduced: bool
    permitted_before_commit: bool
    confirm: bool
    served: str = ""   # what the host (or the leaked endpoint) answered
    reason: str = ""   # how the match was decided, or why the host gave no answer


def join_as_verifier(chain: Chain, verifier: LocalAccount) -> None:
    """Stake the minimum and register in Claims (no-op parts are skipped)."""
    claims, staking = chain.contract("Claims"), chain.contract("Staking")
    need = chain.call(claims.functions.minVerifierStake()) - chain.call(staking.functions.unlockedOf(verifier.address))
    if need > 0:
        Stakes(chain).stake(verifier, need)
    if chain.call(claims.functions.verifierSinceBlock(verifier.address)) == 0:
        chain.transact(verifier, claims.functions.registerVerifier())


class Verifier:
    def __init__(self, chain: Chain, signer: LocalAccount, *, platform_url: str, host_urls: dict[str, str]):
        self.chain = chain
        self.signer = signer
        self.host_urls = host_urls
        self._platform = httpx.Client(base_url=platform_url, timeout=30)
        self._claims = chain.contract("Claims")
        self._ttl = chain.call(chain.contract("UsageLedger").functions.permissionTtl())

    def _revealed(self, c: ClaimRecord, name: str) -> Event | None:
        """The claim's `name` event, from the block it was revealed in."""
        evs = fetch_events(self.chain, from_block=c.reveal_block, to_block=c.reveal_block, contracts=["Claims"],
                           names=[name])
        return next((e for e in evs if e.args["claimId"] == c.claim_id), None)

    def endpoint(self, claim: int | ClaimRecord) -> str:
        c = claim if isinstance(claim, ClaimRecord) else read_claim(self.chain, claim)
        ev = self._revealed(c, "LeakEvidence")
        if ev is None:
            raise LookupError(f"claim {c.claim_id} names no leaked endpoint")
        return ev.args["endpoint"]

    def evidence(self, claim: int | ClaimRecord) -> tuple[str, str]:
        c = claim if isinstance(claim, ClaimRecord) else read_claim(self.chain, claim)
        ev = self._revealed(c, "ClaimEvidence")
        if ev is None:
            raise LookupError(f"claim {c.claim_id} has no revealed evidence")
        return ev.args["key"], ev.args["response"]

    def review(self, claim_id: int) -> Verdict:
        c = read_claim(self.chain, claim_id)
        host = c.host
        key, response = self.evidence(c)
        # The reveal proved the Merkle membership on-chain; the evidence must hash to what it stored.
        in_commitment = query_hash(key) == c.key_hash and query_hash(response) == c.response_hash
        url = self.host_urls.get(host)
        if c.is_leak:
            url = self.endpoint(c)
            in_commitment = in_commitment and query_hash(url) == c.endpoint_hash
        reproduced, served, reason = False, "", "no service URL known for this host"
        if url is not None:
            try:
                m = decide(url, key, response)
                reproduced, served, reason = m.matched, m.served, m.reason
            except HostQueryError as e:
                reason = f"host gave no answer ({type(e).__name__}: {e})"
        r = self._platform.get(f"/v1/permits/{host}/0x{query_hash(key).hex()}")
        r.raise_for_status()
        permits = [Permit.from_json(p) for p in r.json()["permits"]]
        before = any(p.model_id == c.model_id and p.expiry - self._ttl <= c.committed_at for p in permits)
        return Verdict(claim_id, in_commitment, reproduced, before, in_commitment and reproduced and not before,
                       served, reason)

    def settle(self, claim_id: int) -> tuple[int, int]:
        """Settle this verifier's part in a decided claim; returns (reward, penalty) in wei."""
        receipt = self.chain.transact(self.signer, self._claims.functions.settleVerifier(claim_id, self.signer.address))
        ev = next(e for e in self.chain.decode_events(receipt) if e.name == "VerifierSettled")
        return ev.args["reward"], ev.args["penalty"]

    def vote(self, claim_id: int) -> Verdict:
        v = self.review(claim_id)
        self.chain.transact(self.signer, self._claims.functions.vote(claim_id, v.confirm))
        return v
