"""A prover holds the community's secret fingerprints. It queries a host as an ordinary user with
an unspent key; if the host's answer matches the committed response (`matching.decide`: a prefix
match for an exact fingerprint, the key's green-word rule for a functional one) and the platform
has no permission for that query to that host, it commits to the claim, then reveals it with the
fingerprint's Merkle proof (posting the bond). The fingerprint list holds (key, response) pairs of
either family; for a functional fingerprint the response is its rule descriptor.

With per-host copies the prover knows which subset went to which host: it probes a host with a key
from that host's own subset, and probes an unlicensed endpoint with one key of every subset; a
match there is a leaked copy, and `file_leak` claims against the host whose subset it came from."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import httpx
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from agents.core.chain import Chain
from ml.oml.commitment import FingerprintTree

from .matching import complete, decide
from .permits import query_hash


@dataclass(frozen=True)
class Probe:
    host: str
    key: str
    response: str          # the committed fingerprint response (a functional fingerprint: its rule descriptor)
    served: str            # what the host answered
    fingerprint_match: bool
    permitted: bool        # the platform issued σ(key) to this host
    claim_id: int | None = None
    endpoint: str | None = None  # set for a leak probe: the URL that served the host's fingerprint
    reason: str = ""       # how the match was decided (`matching.Match.reason`)


class Prover:
    def __init__(self, chain: Chain, signer: LocalAccount, model_id: int, fingerprints: list[tuple[str, str]],
                 *, platform_url: str, subsets: dict[str, list[tuple[str, str]]] | None = None):
        self.chain = chain
        self.signer = signer
        self.model_id = model_id
        self.fingerprints = list(fingerprints)
        self.tree = FingerprintTree(self.fingerprints)
        self.subsets = {h: list(p) for h, p in (subsets or {}).items()}
        self._platform = httpx.Client(base_url=platform_url, timeout=30)
        self._claims = chain.contract("Claims")

    def unspent(self, host: str | None = None) -> list[tuple[str, str]]:
        """Unspent fingerprints; with `host`, only those of its subset (when subsets are known)."""
        pairs = self.subsets.get(host, self.fingerprints) if host else self.fingerprints
        return [(k, r) for k, r in pairs
                if not self.chain.call(self._claims.functions.keySpent(self.model_id, keccak(k.encode())))]

    def query(self, url: str, prompt: str, max_tokens: int) -> str:
        return complete(url, prompt, max_tokens)

    def permitted(self, host: str, key: str) -> bool:
        r = self._platform.get(f"/v1/permits/{host}/0x{query_hash(key).hex()}")
        r.raise_for_status()
        return bool(r.json()["permits"])

    def probe(self, url: str, host: str) -> Probe:
        """Send one unspent key to the host at `url` (on-chain address `host`)."""
        left = self.unspent(host)
        if not left:
            raise LookupError("every fingerprint key of this model is spent")
        key, response = left[0]
        m = decide(url, key, response)
        return Probe(host, key, response, m.served, m.matched, self.permitted(host, key), reason=m.reason)

    def file_claim(self, host: str, key: str, response: str) -> int:
        """Commit, approve the bond in a later block, reveal with the Merkle proof; returns the claim id."""
        salt = os.urandom(32)
        commitment = self.chain.call(self._claims.functions.claimCommitment(key, response, host, salt))
        token = self.chain.contract("LoyalToken")
        bond = self.chain.call(self._claims.functions.claimBond())
        receipt = self.chain.transact(self.signer, self._claims.functions.commit(commitment))
        # The bond approval goes in a later block than the commitment, which the reveal needs.
        self.chain.transact(self.signer, token.functions.approve(self._claims.address, bond))
        while self.chain.w3.eth.block_number <= receipt["blockNumber"]:
            time.sleep(0.2)  # a chain with interval mining: wait for the next block
        receipt = self.chain.transact(self.signer, self._claims.functions.reveal(
            self.model_id, host, key, response, salt, self.tree.proof(key, response)))
        ev = next(e for e in self.chain.decode_events(receipt) if e.name == "ClaimRevealed")
        return ev.args["claimId"]

    def probe_leak(self, url: str) -> Probe | None:
        """Send one unspent key of every host's subset to an endpoint that is no licensed host's;
        the first fingerprint it reproduces names the host whose copy it serves (None if none)."""
        for host in self.subsets:
            left = self.unspent(host)
            if not left:
                continue
            key, response = left[0]
            m = decide(url, key, response)
            if m.matched:
                return Probe(host, key, response, m.served, True, self.permitted(host, key), endpoint=url,
                             reason=m.reason)
        return None

    def file_leak(self, host: str, endpoint: str, key: str, response: str) -> int:
        """Claim that `endpoint` served a fingerprint of `host`'s subset (a leaked copy)."""
        salt = os.urandom(32)
        commitment = self.chain.call(self._claims.functions.leakCommitment(key, response, host, endpoint, salt))
        token = self.chain.contract("LoyalToken")
        bond = self.chain.call(self._claims.functions.claimBond())
        receipt = self.chain.transact(self.signer, self._claims.functions.commit(commitment))
        self.chain.transact(self.signer, token.functions.approve(self._claims.address, bond))
        while self.chain.w3.eth.block_number <= receipt["blockNumber"]:
            time.sleep(0.2)
        subset_proof = FingerprintTree(self.subsets[host]).proof(key, response)
        receipt = self.chain.transact(self.signer, self._claims.functions.revealLeak(
            (self.model_id, host, endpoint, key, response, salt, self.tree.proof(key, response), subset_proof)))
        ev = next(e for e in self.chain.decode_events(receipt) if e.name == "ClaimRevealed")
        return ev.args["claimId"]

    def catch_leak(self, url: str) -> Probe | None:
        """Probe an unlicensed endpoint and file a leak claim if it serves some host's copy without
        that host's permission for the key."""
        p = self.probe_leak(url)
        if p is not None and not p.permitted:
            return Probe(**{**p.__dict__, "claim_id": self.file_leak(p.host, url, p.key, p.response)})
        return p

    def catch(self, url: str, host: str) -> Probe:
        """Probe, and file a claim if the host served a fingerprint without permission."""
        p = self.probe(url, host)
        if p.fingerprint_match and not p.permitted:
            return Probe(**{**p.__dict__, "claim_id": self.file_claim(host, p.key, p.response)})
        return p
