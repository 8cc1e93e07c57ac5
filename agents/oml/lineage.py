"""Lineage claims (`LineageClaims`): trace a derived model served anywhere to the host whose copy it
descends from, by m or more keys of that host's own fingerprint subset.

The prover (`LineageProver.trace`) sends every unspent key of each host's subset to the endpoint as
an ordinary user and counts the keys answered with their committed responses (`matching.decide`,
the same decision as for single-key claims). If some host's count reaches the contract's m
(`minMatches`, chosen with `ml/oml/lineage.py` so an unrelated model reaches it with probability
below the documented bound), it commits to those pairs and the endpoint, then reveals them with
their subset proofs (`file`). A verifier (`LineageVerifier.review`) reads the revealed keys from the
reveal block, checks they hash to the claim's key digest, queries the endpoint itself and confirms
only if at least m of them are still reproduced.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from enum import IntEnum

from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from agents.core.chain import Chain
from agents.core.events import fetch_events
from agents.core.views import read, record_as
from common.errors import LoyalError
from ml.oml.commitment import FingerprintTree

from .matching import HostQueryError, decide


class LineageStatus(IntEnum):
    """Mirrors `LineageClaims.Status`."""
    NONE = 0
    OPEN = 1
    DEFENDED = 2
    CONFIRMED = 3
    REJECTED = 4


@dataclass(frozen=True)
class LineageRecord:
    claim_id: int
    prover: str
    host: str
    model_id: int
    keys_digest: bytes
    endpoint_hash: bytes
    committed_at: int
    commit_block: int
    revealed_at: int
    reveal_block: int
    verifiers_at_reveal: int
    matches: int
    confirmations: int
    rejections: int
    status: LineageStatus


class BelowThreshold(LoyalError):
    """Fewer keys matched than the contract's m: no lineage claim can be filed."""


def read_lineage(chain: Chain, claim_id: int) -> LineageRecord:
    """The on-chain record of lineage claim `claim_id` (raises Reverted UnknownClaim)."""
    return record_as(LineageRecord, read(chain, chain.contract("LineageClaims").functions.claim(claim_id)),
                     claim_id=claim_id)


def min_matches(chain: Chain) -> int:
    return chain.call(chain.contract("LineageClaims").functions.minMatches())


def keys_digest(keys: list[str]) -> bytes:
    """`LineageClaims`' digest of the revealed keys, in order."""
    return keccak(encode(["bytes32[]"], [[keccak(text=k) for k in keys]]))


@dataclass
class Trace:
    endpoint: str
    host: str | None  # the host with the most matches (None: no key of any subset matched)
    matched: list[tuple[str, str]]  # that host's pairs the endpoint reproduced
    tried: dict[str, int]  # host -> keys sent
    counts: dict[str, int]  # host -> keys reproduced
    m: int
    claim_id: int | None = None

    @property
    def traced(self) -> bool:
        return self.host is not None and len(self.matched) >= self.m


class LineageProver:
    def __init__(self, chain: Chain, signer: LocalAccount, model_id: int, subsets: dict[str, list[tuple[str, str]]]):
        self.chain = chain
        self.signer = signer
        self.model_id = model_id
        self.subsets = subsets
        self._lineage = chain.contract("LineageClaims")
        self._claims = chain.contract("Claims")

    def _spent(self, key: str) -> bool:
        """Spent by any claim, single-key or lineage (Claims keeps the one ledger)."""
        return bool(self.chain.call(self._claims.functions.keySpent(self.model_id, keccak(text=key))))

    def trace(self, url: str) -> Trace:
        """Send every unspent key of every host's subset to `url`; the host whose keys it reproduces most."""
        m = min_matches(self.chain)
        tried, counts, best = {}, {}, (None, [])
        for host, pairs in self.subsets.items():
            left = [(k, r) for k, r in pairs if not self._spent(k)]
            hits = []
            for k, r in left:
                try:
                    if decide(url, k, r).matched:
                        hits.append((k, r))
                except HostQueryError:
                    continue
            tried[host], counts[host] = len(left), len(hits)
            if len(hits) > len(best[1]):
                best = (host, hits)
        return Trace(url, best[0], best[1], tried, counts, m)

    def file(self, host: str, endpoint: str, pairs: list[tuple[str, str]]) -> int:
        """Commit, approve the bond in a later block, reveal the pairs with their subset proofs."""
        m = min_matches(self.chain)
        if len(pairs) < m:
            raise BelowThreshold(f"only {len(pairs)} keys of {host}'s subset matched at {endpoint}; a lineage claim "
                                 f"needs at least m = {m}")
        keys, responses = [k for k, _ in pairs], [r for _, r in pairs]
        salt = os.urandom(32)
        commitment = self.chain.call(self._lineage.functions.lineageCommitment(keys, responses, host, endpoint, salt))
        receipt = self.chain.transact(self.signer, self._lineage.functions.commit(commitment))
        bond = self.chain.call(self._lineage.functions.claimBond())
        token = self.chain.contract("LoyalToken")
        self.chain.transact(self.signer, token.functions.approve(self._lineage.address, bond))
        while self.chain.w3.eth.block_number <= receipt["blockNumber"]:
            time.sleep(0.2)
        tree = FingerprintTree(self.subsets[host])
        proofs = [tree.proof(k, r) for k, r in pairs]
        receipt = self.chain.transact(self.signer, self._lineage.functions.reveal(
            (self.model_id, host, endpoint, keys, responses, salt, proofs)))
        ev = next(e for e in self.chain.decode_events(receipt) if e.name == "LineageRevealed")
        return ev.args["claimId"]

    def catch(self, url: str) -> Trace:
        """Trace `url` and file a lineage claim against the host it descends from, if it reaches m."""
        t = self.trace(url)
        if t.traced:
            t.claim_id = self.file(t.host, url, t.matched)
        return t


@dataclass(frozen=True)
class LineageVerdict:
    claim_id: int
    in_commitment: bool
    reproduced: int  # revealed keys the endpoint still answers with their responses
    m: int
    confirm: bool
    reasons: list[str] = field(default_factory=list)


class LineageVerifier:
    def __init__(self, chain: Chain, signer: LocalAccount):
        self.chain = chain
        self.signer = signer
        self._lineage = chain.contract("LineageClaims")

    def evidence(self, c: LineageRecord) -> tuple[str, list[str], list[str]]:
        evs = fetch_events(self.chain, from_block=c.reveal_block, to_block=c.reveal_block,
                           contracts=["LineageClaims"], names=["LineageEvidence"])
        ev = next((e for e in evs if e.args["claimId"] == c.claim_id), None)
        if ev is None:
            raise LookupError(f"lineage claim {c.claim_id} has no revealed evidence")
        return ev.args["endpoint"], list(ev.args["keys"]), list(ev.args["responses"])

    def review(self, claim_id: int) -> LineageVerdict:
        c = read_lineage(self.chain, claim_id)
        m = min_matches(self.chain)
        endpoint, keys, responses = self.evidence(c)
        in_commitment = keys_digest(keys) == c.keys_digest and keccak(text=endpoint) == c.endpoint_hash
        reproduced, reasons = 0, []
        for k, r in zip(keys, responses):
            try:
                d = decide(endpoint, k, r)
                reproduced += d.matched
                reasons.append(d.reason)
            except HostQueryError as e:
                reasons.append(f"endpoint gave no answer ({type(e).__name__})")
        return LineageVerdict(claim_id, in_commitment, reproduced, m, in_commitment and reproduced >= m, reasons)

    def vote(self, claim_id: int) -> LineageVerdict:
        v = self.review(claim_id)
        self.chain.transact(self.signer, self._lineage.functions.vote(claim_id, v.confirm))
        return v
