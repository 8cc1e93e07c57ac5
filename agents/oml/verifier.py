"""A staked verifier reviews an open claim without asking the accused host anything after the key
is public:

- **signed claims** (`Claims.reveal`): the evidence is the host's signed answer to the key
  (`AnswerEvidence`). The verifier checks that the revealed pair hashes to the claim, that the
  signature recovers to the host for this deployment, model, key and completion (`answers.check`, as
  the contract did), and judges the completion against the committed response
  (`matching.judge_answer`: a prefix for an exact fingerprint, the revealed green-word rule for a
  functional one). A host that stops answering, or changes its answer, once the key is revealed
  changes nothing: nobody asks it again.
- **sealed claims** (`Claims.revealLeak`, endpoints that sign nothing): the verifier follows
  `KeysSealed`, opens its own sealed key (`sealed.unseal`), queries the endpoint **before the reveal**
  and commits a salted hash of what it saw (`Claims.observe`); after the reveal it votes with
  `voteObserved`, opening that observation. A seal that does not open, or an endpoint that gave no
  answer, is recorded as such (`seal-error: …`, `no-answer: …`) and voted against.

Either way it asks the platform for a σ(key) issued to that host in a block before the claim's
commitment (`issued_block < commit_block`). It confirms only if the fingerprint matched and no such
permission exists. Once the claim is decided, `settle` collects its reward or takes its penalty.

Evidence is read from the one block the claim was revealed in (`reveal_block`), through the
process's shared event source; sealed commitments through an `EventFollower` on `KeysSealed`, whose
observations persist in `state_path` (JSON) when given, so a restarted verifier can still vote."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from eth_account.signers.local import LocalAccount

from agents.core.chain import Chain, Event
from agents.core.events import EventCursor, EventFollower, fetch_events
from agents.core.token import Stakes
from common.files import atomic_write_json

from .answers import BadSignedAnswer, SignedAnswer, answers_domain, check
from .claims import ClaimRecord, read_claim
from .matching import HostQueryError, decide, judge_answer
from .permits import Permit, query_hash
from .sealed import NO_ANSWER, SEAL_ERROR, SealDoesNotOpen, observation_hash, public_key, unseal


@dataclass(frozen=True)
class Verdict:
    claim_id: int
    in_commitment: bool
    reproduced: bool
    permitted_before_commit: bool
    confirm: bool
    served: str = ""   # the signed completion, or what the verifier observed before the reveal
    reason: str = ""   # how the match was decided, or why there is no valid evidence


@dataclass(frozen=True)
class Observation:
    """What this verifier saw at a sealed commitment's endpoint before the reveal."""
    commitment: str    # 0x-hex
    prover: str
    observed: str      # the endpoint's answer, or `seal-error: …` / `no-answer: …`
    salt: str          # 0x-hex
    matched: bool
    key: str = ""      # the opened key and response ("" when the seal did not open)
    response: str = ""
    endpoint: str = ""
    host: str = ""
    reason: str = ""


def join_as_verifier(chain: Chain, verifier: LocalAccount) -> None:
    """Stake the minimum, register in Claims and publish the seal key (no-op parts are skipped)."""
    claims, staking = chain.contract("Claims"), chain.contract("Staking")
    need = chain.call(claims.functions.minVerifierStake()) - chain.call(staking.functions.unlockedOf(verifier.address))
    if need > 0:
        Stakes(chain).stake(verifier, need)
    if chain.call(claims.functions.verifierSinceBlock(verifier.address)) == 0:
        chain.transact(verifier, claims.functions.registerVerifier())
    if bytes(chain.call(claims.functions.sealKeyOf(verifier.address))) != public_key(verifier):
        chain.transact(verifier, claims.functions.setSealKey(public_key(verifier)))


class Verifier:
    def __init__(self, chain: Chain, signer: LocalAccount, *, platform_url: str,
                 host_urls: dict[str, str] | None = None, state_path: Path | str | None = None,
                 cursor_path: Path | str | None = None, start_block: int = 0):
        """`host_urls` is kept for callers of the old interface; claims are judged without them."""
        self.chain = chain
        self.signer = signer
        self.host_urls = host_urls or {}
        self._platform = httpx.Client(base_url=platform_url, timeout=30)
        self._claims = chain.contract("Claims")
        self._domain = answers_domain(chain)
        self._state = Path(state_path) if state_path else None
        self.observations: dict[str, Observation] = {}
        if self._state and self._state.exists():
            self.observations = {k: Observation(**v) for k, v in json.loads(self._state.read_text()).items()}
        cursor = EventCursor.open(cursor_path, start_block) if cursor_path else EventCursor(None, start_block - 1)
        self.sealed = EventFollower(chain, cursor, contracts=["Claims"], names=["KeysSealed"])

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

    # -- sealed commitments: observe before the reveal ------------------------------------------
    def observe_pending(self) -> list[Observation]:
        """Observe every sealed commitment posted since the last call (and not yet observed):
        open the sealed key, query the endpoint, commit the salted observation on-chain."""
        done: list[Observation] = []

        def handle(ev: Event, state: dict) -> None:
            o = self.observe(ev.args["prover"], bytes(ev.args["commitment"]), bytes(ev.args["sealedKeys"]))
            if o is not None:
                done.append(o)

        self.sealed.poll(handle)
        return done

    def observe(self, prover: str, commitment: bytes, blob: bytes) -> Observation | None:
        """Observe one sealed commitment (None if already observed or already revealed)."""
        ckey = "0x" + commitment.hex()
        if ckey in self.observations:
            return None
        if not self.chain.call(self._claims.functions.sealedCommit(prover, commitment)):
            return None  # revealed already (or never sealed): too late to observe
        try:
            o = unseal(blob, self.signer, commitment)
        except SealDoesNotOpen as e:
            obs = Observation(ckey, prover, SEAL_ERROR + str(e), "0x" + os.urandom(32).hex(), False, reason=str(e))
        else:
            try:
                m = decide(o.endpoint, o.key, o.response)
                observed, matched, reason = m.served, m.matched, m.reason
            except HostQueryError as e:
                observed, matched, reason = NO_ANSWER + type(e).__name__, False, f"endpoint gave no answer ({e})"
            obs = Observation(ckey, prover, observed, "0x" + os.urandom(32).hex(), matched, o.key, o.response,
                              o.endpoint, o.host, reason)
        self.observations[ckey] = obs
        if self._state:  # before the transaction: a restart must be able to open what was committed
            atomic_write_json(self._state, {k: asdict(v) for k, v in self.observations.items()})
        h = observation_hash(commitment, self.signer.address, obs.observed, bytes.fromhex(obs.salt[2:]))
        self.chain.transact(self.signer, self._claims.functions.observe(prover, commitment, h))
        return obs

    # -- review and vote -----------------------------------------------------------------------
    def permitted_before(self, c: ClaimRecord, key: str) -> bool:
        """The platform issued σ(key) to the claim's host in a block before the claim's commitment."""
        r = self._platform.get(f"/v1/permits/{c.host}/0x{query_hash(key).hex()}")
        r.raise_for_status()
        permits = [Permit.from_json(p) for p in r.json()["permits"]]
        return any(p.model_id == c.model_id and p.issued_block < c.commit_block for p in permits)

    def review(self, claim_id: int) -> Verdict:
        c = read_claim(self.chain, claim_id)
        key, response = self.evidence(c)
        # The reveal proved the Merkle membership on-chain; the evidence must hash to what it stored.
        in_commitment = query_hash(key) == c.key_hash and query_hash(response) == c.response_hash
        if c.is_sealed:
            reproduced, served, reason = self._judge_observation(c, key, response)
            in_commitment = in_commitment and query_hash(self.endpoint(c)) == c.endpoint_hash
        else:
            reproduced, served, reason = self._judge_signed(c, key, response)
        before = self.permitted_before(c, key)
        return Verdict(claim_id, in_commitment, reproduced, before, in_commitment and reproduced and not before,
                       served, reason)

    def _judge_signed(self, c: ClaimRecord, key: str, response: str) -> tuple[bool, str, str]:
        ev = self._revealed(c, "AnswerEvidence")
        if ev is None:
            return False, "", "the claim carries no signed answer"
        completion = ev.args["completion"]
        answer = SignedAnswer(self._domain, c.model_id, c.host, ev.args["licenceStart"], query_hash(key),
                              query_hash(completion), bytes(ev.args["permissionDigest"]), ev.args["answeredAt"],
                              bytes(ev.args["signature"]))
        try:
            check(answer, domain=self._domain, host=c.host, model_id=c.model_id, prompt=key, completion=completion)
        except BadSignedAnswer as e:
            return False, completion, f"signed answer rejected: {e}"
        if answer.digest() != bytes(ev.args["answerDigest"]):
            return False, completion, "the revealed answer is not the one the contract checked"
        m = judge_answer(response, completion)
        return m.matched, completion, "signed answer: " + m.reason

    def _judge_observation(self, c: ClaimRecord, key: str, response: str) -> tuple[bool, str, str]:
        o = self.observations.get("0x" + c.sealed_commitment.hex())
        if o is None:
            return False, "", "no observation made before the reveal"
        if o.observed.startswith(SEAL_ERROR):
            return False, o.observed, o.reason
        if (o.key, o.response) != (key, response):
            return False, o.observed, "the revealed pair is not the one sealed to this verifier"
        return o.matched, o.observed, "observed before the reveal: " + o.reason

    def settle(self, claim_id: int) -> tuple[int, int]:
        """Settle this verifier's part in a decided claim; returns (reward, penalty) in wei."""
        receipt = self.chain.transact(self.signer, self._claims.functions.settleVerifier(claim_id, self.signer.address))
        ev = next(e for e in self.chain.decode_events(receipt) if e.name == "VerifierSettled")
        return ev.args["reward"], ev.args["penalty"]

    def vote(self, claim_id: int) -> Verdict:
        v = self.review(claim_id)
        c = read_claim(self.chain, claim_id)
        if c.is_sealed:
            o = self.observations.get("0x" + c.sealed_commitment.hex())
            if o is None:
                raise LookupError(f"claim {claim_id} is sealed and this verifier observed nothing before its reveal")
            self.chain.transact(self.signer, self._claims.functions.voteObserved(
                (claim_id, v.confirm, o.observed, bytes.fromhex(o.salt[2:]))))
        else:
            self.chain.transact(self.signer, self._claims.functions.vote(claim_id, v.confirm))
        return v
