"""A prover holds the community's secret fingerprints. It queries a host as an ordinary user with
an unspent key; if the host answers with the fingerprint response and the platform has no
permission for that query to that host, it commits to the claim, then reveals it with the
fingerprint's Merkle proof (posting the bond)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import httpx
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from agents.core.chain import Chain
from ml.oml.commitment import FingerprintTree

from .permits import query_hash


@dataclass(frozen=True)
class Probe:
    host: str
    key: str
    response: str          # the committed fingerprint response
    served: str            # what the host answered
    fingerprint_match: bool
    permitted: bool        # the platform issued σ(key) to this host
    claim_id: int | None = None


class Prover:
    def __init__(self, chain: Chain, signer: LocalAccount, model_id: int, fingerprints: list[tuple[str, str]],
                 *, platform_url: str):
        self.chain = chain
        self.signer = signer
        self.model_id = model_id
        self.fingerprints = list(fingerprints)
        self.tree = FingerprintTree(self.fingerprints)
        self._platform = httpx.Client(base_url=platform_url, timeout=30)
        self._claims = chain.contract("Claims")

    def unspent(self) -> list[tuple[str, str]]:
        return [(k, r) for k, r in self.fingerprints
                if not self.chain.call(self._claims.functions.keySpent(self.model_id, keccak(k.encode())))]

    def query(self, url: str, prompt: str, max_tokens: int) -> str:
        r = httpx.post(f"{url}/v1/completions", json={"prompt": prompt, "max_tokens": max_tokens}, timeout=60)
        r.raise_for_status()
        return r.json()["choices"][0]["text"]

    def permitted(self, host: str, key: str) -> bool:
        r = self._platform.get(f"/v1/permits/{host}/0x{query_hash(key).hex()}")
        r.raise_for_status()
        return bool(r.json()["permits"])

    def probe(self, url: str, host: str) -> Probe:
        """Send one unspent key to the host at `url` (on-chain address `host`)."""
        left = self.unspent()
        if not left:
            raise LookupError("every fingerprint key of this model is spent")
        key, response = left[0]
        served = self.query(url, key, len(response.encode()) + 1)
        return Probe(host, key, response, served, served.startswith(response), self.permitted(host, key))

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

    def catch(self, url: str, host: str) -> Probe:
        """Probe, and file a claim if the host served a fingerprint without permission."""
        p = self.probe(url, host)
        if p.fingerprint_match and not p.permitted:
            return Probe(**{**p.__dict__, "claim_id": self.file_claim(host, p.key, p.response)})
        return p
