"""A prover holds the community's secret fingerprints. It queries a host as an ordinary user with
an unspent key; if the host's answer matches the committed response (`matching.decide`: a prefix
match for an exact fingerprint, the key's green-word rule for a functional one) and the platform
has no permission for that query to that host, it commits to the claim, then reveals it with the
fingerprint's Merkle proof and the host's signed answer (`answers.py`, checked here first as
`Claims.reveal` will), posting the bond. The fingerprint list holds (key, response) pairs of
either family; for a functional fingerprint the response is its rule descriptor.

An endpoint that signs nothing (a leaked copy, a rogue server, a licensed host that strips its
signatures) is claimed with a sealed commitment (`sealed.py`): the opening is encrypted to every
verifier with a published seal key, the verifiers observe the endpoint before the reveal, and the
prover reveals once they have (or after `observe_timeout` seconds).

With per-host copies the prover knows which subset went to which host: it probes a host with a key
from that host's own subset, and probes an unlicensed endpoint with one key of every subset; a
match there is a leaked copy, and `file_leak` claims against the host whose subset it came from."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from agents.core.chain import Chain
from agents.core.events import fetch_events
from agents.core.views import read
from common.errors import ConfigError
from ml.oml.commitment import FingerprintTree

from .answers import BadSignedAnswer, SignedAnswer, answers_domain, check
from .matching import Match, complete, decide
from .permits import query_hash
from .sealed import Opening, seal


Pair = tuple[str, str]  # (key, response)


def read_fingerprints_file(path: Path, model_id: int) -> tuple[list[Pair], dict[str, list[Pair]]]:
    """(every fingerprint, host -> its subset) from the secret file `loyal oml register` writes for
    provers; ConfigError naming the problem for a missing file, another format or another model."""
    try:
        d = json.loads(Path(path).read_text())
        fps = [(str(k), str(r)) for k, r in d["fingerprints"]]
        subsets = {h: [(str(k), str(r)) for k, r in ps] for h, ps in d["subsets"].items()}
        held = int(d["model_id"])
    except FileNotFoundError:
        raise ConfigError(f"fingerprints file {path} does not exist") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(f"{path} is not a fingerprints file (from `loyal oml register`)") from None
    if held != model_id:
        raise ConfigError(f"{path} holds the fingerprints of model {held}, not {model_id}")
    return fps, subsets


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
    answer: SignedAnswer | None = None  # the host's valid signature over `served` (None: unsigned / invalid)
    unsigned_reason: str = ""           # why `answer` is None


@dataclass(frozen=True)
class PendingLeak:
    """A sealed commitment, posted, not yet revealed."""
    opening: Opening
    commitment: bytes
    commit_block: int
    sealed_to: tuple[str, ...]  # verifiers whose seal key the opening was encrypted to


class Prover:
    def __init__(self, chain: Chain, signer: LocalAccount, model_id: int, fingerprints: list[tuple[str, str]],
                 *, platform_url: str, subsets: dict[str, list[tuple[str, str]]] | None = None,
                 before_reveal: Callable[[PendingLeak], None] | None = None, observe_timeout: float = 60.0):
        """`before_reveal(pending)` runs after a sealed commit, before waiting for the verifiers'
        observations (in-process setups run the verifiers there); the reveal waits at most
        `observe_timeout` seconds for every sealed-to verifier to observe."""
        self.chain = chain
        self.signer = signer
        self.model_id = model_id
        self.fingerprints = list(fingerprints)
        self.tree = FingerprintTree(self.fingerprints)
        self.subsets = {h: list(p) for h, p in (subsets or {}).items()}
        self._platform = httpx.Client(base_url=platform_url, timeout=30)
        self._claims = chain.contract("Claims")
        self._domain = answers_domain(chain)
        self.before_reveal = before_reveal
        self.observe_timeout = observe_timeout

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
        answer, why = self.checked_answer(m, host, key)
        return Probe(host, key, response, m.served, m.matched, self.permitted(host, key), reason=m.reason,
                     answer=answer, unsigned_reason=why)

    def checked_answer(self, m: Match, host: str, key: str) -> tuple[SignedAnswer | None, str]:
        """The answer's signature if it is `host`'s, for this deployment, model, licence, key and
        completion (what `Claims.reveal` will check), else (None, why not)."""
        if m.answer is None:
            return None, "the endpoint signed no answer"
        licence = read(self.chain, self.chain.contract("HostAgreements").functions.licenceOf(self.model_id, host))
        try:
            check(m.answer, domain=self._domain, host=host, model_id=self.model_id, prompt=key, completion=m.served,
                  licence_start=licence.startsAt)
        except BadSignedAnswer as e:
            return None, str(e)
        return m.answer, ""

    def _commit_then_next_block(self, fn) -> int:
        """Send the commit `fn`, approve the bond (which puts the reveal in a later block); returns the commit block."""
        token = self.chain.contract("LoyalToken")
        bond = self.chain.call(self._claims.functions.claimBond())
        receipt = self.chain.transact(self.signer, fn)
        self.chain.transact(self.signer, token.functions.approve(self._claims.address, bond))
        return receipt["blockNumber"]

    def _after(self, block: int) -> None:
        while self.chain.w3.eth.block_number <= block:
            time.sleep(0.2)  # a chain with interval mining: wait for the next block

    def file_claim(self, host: str, key: str, response: str, answer: SignedAnswer, completion: str) -> int:
        """Commit, approve the bond in a later block, reveal with the Merkle proof and the host's signed
        `answer` to `key` (whose text is `completion`); returns the claim id."""
        salt = os.urandom(32)
        commitment = self.chain.call(self._claims.functions.claimCommitment(key, response, host, salt))
        self._after(self._commit_then_next_block(self._claims.functions.commit(commitment)))
        receipt = self.chain.transact(self.signer, self._claims.functions.reveal(
            (self.model_id, host, key, response, salt, self.tree.proof(key, response), answer.as_struct(),
             completion, answer.signature)))
        ev = next(e for e in self.chain.decode_events(receipt) if e.name == "ClaimRevealed")
        return ev.args["claimId"]

    def verifier_keys(self) -> dict[str, bytes]:
        """Current verifiers' published seal keys (`Claims.SealKeySet`, the latest per verifier)."""
        out: dict[str, bytes] = {}
        for e in fetch_events(self.chain, contracts=["Claims"], names=["SealKeySet"]):
            out[e.args["verifier"]] = bytes(e.args["publicKey"])
        return {v: k for v, k in out.items() if self.chain.call(self._claims.functions.isVerifier(v))}

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

    def commit_leak(self, host: str, endpoint: str, key: str, response: str) -> PendingLeak:
        """Commit to a leak claim with the opening sealed to every verifier (`Claims.commitSealed`)."""
        keys = self.verifier_keys()
        opening = Opening(key, response, host, endpoint, os.urandom(32))
        commitment = opening.commitment()
        block = self._commit_then_next_block(self._claims.functions.commitSealed(commitment, seal(opening, keys)))
        return PendingLeak(opening, commitment, block, tuple(keys))

    def observed_by(self, pending: PendingLeak) -> list[str]:
        """The sealed-to verifiers that have committed an observation of `pending`."""
        return [v for v in pending.sealed_to
                if self.chain.call(self._claims.functions.observations(pending.commitment, v))[1] != 0]

    def reveal_leak(self, pending: PendingLeak) -> int:
        """Reveal a sealed leak claim once every sealed-to verifier observed (or `observe_timeout`
        passed); returns the claim id."""
        if self.before_reveal is not None:
            self.before_reveal(pending)
        deadline = time.monotonic() + self.observe_timeout
        while len(self.observed_by(pending)) < len(pending.sealed_to) and time.monotonic() < deadline:
            time.sleep(0.5)
        self._after(pending.commit_block)
        o = pending.opening
        subset_proof = FingerprintTree(self.subsets[o.host]).proof(o.key, o.response)
        receipt = self.chain.transact(self.signer, self._claims.functions.revealLeak(
            (self.model_id, o.host, o.endpoint, o.key, o.response, o.salt, self.tree.proof(o.key, o.response),
             subset_proof)))
        ev = next(e for e in self.chain.decode_events(receipt) if e.name == "ClaimRevealed")
        return ev.args["claimId"]

    def file_leak(self, host: str, endpoint: str, key: str, response: str) -> int:
        """Claim that `endpoint` served a fingerprint of `host`'s subset (a leaked copy, or the host's
        own service when it signs nothing): sealed commit, verifiers observe, reveal."""
        return self.reveal_leak(self.commit_leak(host, endpoint, key, response))

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
            if p.answer is not None:
                claim_id = self.file_claim(host, p.key, p.response, p.answer, p.served)
                return Probe(**{**p.__dict__, "claim_id": claim_id})
            if host not in self.subsets:  # a sealed claim proves the key is in the host's own subset
                return Probe(**{**p.__dict__, "unsigned_reason": p.unsigned_reason + "; no subset of this host "
                                "known for a sealed claim"})
            # no valid signature: claim it like a leak at the host's own endpoint, with a sealed key
            return Probe(**{**p.__dict__, "claim_id": self.file_leak(host, url, p.key, p.response), "endpoint": url})
        return p
