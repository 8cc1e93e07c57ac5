"""`loyal oml verifier`: a staked verifier as its own OS process, safe to SIGKILL.

It follows `Claims.ClaimRevealed` with an `EventFollower` (cursor file; the open claims are kept in
the cursor's state) and wraps `verifier.Verifier` for the decision: once a claim's challenge window
is over it reviews and votes (`Verifier.vote`: on the host's signed answer, or on its own
observation of a sealed claim's endpoint, made when the sealed commitment appeared:
`Verifier.observe_pending`, its own cursor and state file), unless `Claims.hasVoted` says it already did; once
a majority is reached or voting has ended it finalizes (anyone may); once the claim is decided it
once the outcome is final (the appeal window closed, or an appeal was decided: `ClaimAppeals`)
releases the held payouts if nobody has, and settles its own reward or penalty, unless
`Claims.settled` says that is done. Every action checks
chain state first, so a restart after a kill repeats none of them; an observation that
`Verifier.observe` recorded but whose transaction a kill prevented is sent on the next start.
"""
from __future__ import annotations

import logging
from pathlib import Path

from agents.core.events import EventCursor, EventFollower

from .appeals import release_when_final
from .claims import ClaimStatus, read_claim
from .sealed import observation_hash
from .verifier import Verifier

log = logging.getLogger("loyal.oml.verifier")


class VerifierDaemon:
    def __init__(self, verifier: Verifier, cursor_path: Path | None, *, start_block: int = 0):
        self.v = verifier
        self.chain = verifier.chain
        self.me = verifier.signer.address
        cursor = EventCursor.open(cursor_path, start_block) if cursor_path else EventCursor(None, start_block - 1)
        self.follower = EventFollower(self.chain, cursor, contracts=["Claims"], names=["ClaimRevealed"])
        self.state = cursor.state
        self.state.setdefault("open", [])
        self.state.setdefault("finished", 0)
        claims = self.chain.contract("Claims")
        self._claims = claims
        self.challenge = self.chain.call(claims.functions.challengeWindow())
        self.voting = self.chain.call(claims.functions.votingWindow())
        self._observed: set[str] = set()  # observations known to be on-chain (or too late to send)

    def _seen(self, ev, state: dict) -> None:
        cid = int(ev.args["claimId"])
        if cid not in state["open"]:
            state["open"].append(cid)
            log.info("claim %d revealed against %s", cid, ev.args["host"])

    def step(self) -> int:
        head = self.follower.source.head()
        sent = self._finish_observations()
        for o in self.v.observe_pending():  # sealed commitments: observe the endpoint before the reveal
            log.info("observed sealed commitment %s at %s: %s", o.commitment[:10], o.endpoint or "?",
                     "fingerprint" if o.matched else (o.reason or "no fingerprint"))
            sent += 1
        self.follower.poll(self._seen, head=head.number)
        for cid in list(self.state["open"]):
            sent += self._act(cid, head.timestamp)
        return sent

    def _finish_observations(self) -> int:
        """Send the `observe` of an observation recorded before a kill whose transaction never landed
        (`Verifier.observe` writes the observation first), while its commitment is still unrevealed."""
        sent = 0
        for ckey, o in list(self.v.observations.items()):
            if ckey in self._observed:
                continue
            commitment = bytes.fromhex(ckey[2:])
            if self.chain.call(self._claims.functions.observations(commitment, self.me))[1] == 0 and \
                    self.chain.call(self._claims.functions.sealedCommit(o.prover, commitment)):
                h = observation_hash(commitment, self.me, o.observed, bytes.fromhex(o.salt[2:]))
                self.chain.transact(self.v.signer, self._claims.functions.observe(o.prover, commitment, h))
                log.info("observation of %s sent after a restart", ckey[:10])
                sent += 1
            self._observed.add(ckey)
        return sent

    def _act(self, cid: int, now: int) -> int:
        c = read_claim(self.chain, cid)
        mine = 0 < self.chain.call(self._claims.functions.verifierSinceBlock(self.me)) < c.reveal_block
        challenge_ends = c.revealed_at + self.challenge
        if c.status == ClaimStatus.OPEN:
            if now <= challenge_ends:
                return 0
            if mine and not self.chain.call(self._claims.functions.hasVoted(cid, self.me)) \
                    and now <= challenge_ends + self.voting:
                v = self.v.vote(cid)
                log.info("claim %d: reproduced=%s permitted_before_commit=%s -> %s (%s)", cid, v.reproduced,
                         v.permitted_before_commit, "confirm" if v.confirm else "reject", v.reason)
                return 1
            # Finalize once every verifier of the claim has voted or voting has ended, not at the first
            # majority: finalizing early would penalise the verifiers that had not voted yet.
            if c.confirmations + c.rejections >= c.verifiers_at_reveal or now > challenge_ends + self.voting:
                self.chain.transact(self.v.signer, self._claims.functions.finalize(cid))
                log.info("claim %d finalized", cid)
                return 1
            return 0
        sent = 0
        if c.status in (ClaimStatus.CONFIRMED, ClaimStatus.REJECTED) and mine \
                and not self.chain.call(self._claims.functions.settled(cid, self.me)):
            if not self.chain.call(self._claims.functions.released(cid)):
                # payouts are held until the appeal window closes (or an appeal is decided): release
                # them once the outcome is final (anyone may), then settle on a later step
                if release_when_final(self.chain, self.v.signer, cid):
                    log.info("claim %d final: held payouts released", cid)
                    return 1
                return 0
            reward, penalty = self.v.settle(cid)
            log.info("claim %d %s: settled, reward %d wei, penalty %d wei", cid, c.status.name.lower(), reward, penalty)
            sent = 1
        self.state["open"].remove(cid)
        self.state["finished"] += 1
        self.follower.cursor.commit()
        return sent
