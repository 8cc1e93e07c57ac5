"""Appeals against a verifier majority (`ClaimAppeals`), from the Python side.

A claim decided by `Claims.finalize` holds its payouts for the appeal window. The losing side
(the host of a confirmed claim, the prover of a rejected one) appeals with `appeal`, which approves
and posts the bond. The DAO decides it with a Safety proposal calling `ClaimAppeals.decide`
(`propose_decision` builds it, `agents/dao/governance.Dao` votes and executes it). Reversed: Claims
re-slashes or refunds at once and `penalise_overturned` slashes every verifier of the overturned
majority (pull, one transaction each). Upheld, lapsed or never appealed: `release_when_final`
makes the held payouts. Verifiers settle (`Verifier.settle`) only after either.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from eth_account.signers.local import LocalAccount

from agents.core.chain import Chain
from agents.core.events import fetch_events
from agents.core.views import read, record_as
from common.errors import LoyalError

from .claims import ClaimStatus, read_claim

ZERO = "0x" + "00" * 20


class AppealState(IntEnum):
    """Mirrors `ClaimAppeals.State`."""
    NONE = 0
    PENDING = 1
    UPHELD = 2
    REVERSED = 3


@dataclass(frozen=True)
class AppealRecord:
    claim_id: int
    appellant: str
    counterparty: str
    filed_at: int
    appealed: ClaimStatus
    state: AppealState


class NotAppealable(LoyalError):
    """The claim cannot be appealed by this account now (names the reason and the fix)."""


def read_appeal(chain: Chain, claim_id: int) -> AppealRecord:
    """The appeal record of claim `claim_id` (state NONE if it was never appealed)."""
    return record_as(AppealRecord, read(chain, chain.contract("ClaimAppeals").functions.appealOf(claim_id)),
                     claim_id=claim_id)


def appeal(chain: Chain, appellant: LocalAccount, claim_id: int) -> AppealRecord:
    """Approve and post the appeal bond and appeal claim `claim_id` (the losing side only)."""
    claims, appeals = chain.contract("Claims"), chain.contract("ClaimAppeals")
    c = read_claim(chain, claim_id)
    if c.status not in (ClaimStatus.CONFIRMED, ClaimStatus.REJECTED):
        raise NotAppealable(f"claim {claim_id} is {c.status.name}: only a claim decided by finalize can be appealed")
    loser = c.host if c.status == ClaimStatus.CONFIRMED else c.prover
    if appellant.address.lower() != loser.lower():
        raise NotAppealable(f"claim {claim_id} was {c.status.name.lower()}: only {loser} (the losing side) may "
                            "appeal it; use that account's key")
    if chain.call(claims.functions.released(claim_id)):
        raise NotAppealable(f"claim {claim_id}'s payouts were already released: its appeal window is over")
    bond = chain.call(appeals.functions.bond())
    token = chain.contract("LoyalToken")
    chain.transact(appellant, token.functions.approve(appeals.address, bond))
    chain.transact(appellant, appeals.functions.appeal(claim_id))
    return read_appeal(chain, claim_id)


def decide_action(chain: Chain, claim_id: int, reverse: bool):
    """The DAO action that decides the appeal of `claim_id` (a Safety proposal may execute it)."""
    from agents.dao.governance import Action

    return Action.call(chain.contract("ClaimAppeals"), "decide", claim_id, reverse)


def propose_decision(dao, proposer: LocalAccount, claim_id: int, reverse: bool, description: str | None = None):
    """Propose, on the DAO's Safety track, to reverse (or uphold) the outcome of claim `claim_id`."""
    verb = "Reverse" if reverse else "Uphold"
    text = description or f"{verb} the verifiers' decision on OML claim {claim_id}"
    return dao.propose(proposer, "safety", [decide_action(dao.chain, claim_id, reverse)], text)


def is_final(chain: Chain, claim_id: int) -> bool:
    return bool(chain.call(chain.contract("ClaimAppeals").functions.isFinal(claim_id)))


def release_when_final(chain: Chain, signer: LocalAccount, claim_id: int, *, wait: bool = False) -> bool:
    """Release a decided claim's held payouts if its outcome is final; with `wait` (dev chain) first
    move the clock past the appeal window. False if there is nothing to release (no appeals
    contract bound, not decided by vote, already released, or an appeal is pending)."""
    claims = chain.contract("Claims")
    if chain.call(claims.functions.appeals()) == ZERO or chain.call(claims.functions.released(claim_id)):
        return False
    decided = chain.call(claims.functions.decidedAt(claim_id))
    if decided == 0:
        return False
    if wait and not is_final(chain, claim_id) and read_appeal(chain, claim_id).state == AppealState.NONE:
        window = chain.call(chain.contract("ClaimAppeals").functions.appealWindow())
        now = chain.w3.eth.get_block("latest")["timestamp"]
        if decided + window + 1 > now:
            chain.advance_time(decided + window + 1 - now)
    if not is_final(chain, claim_id):
        return False
    chain.transact(signer, claims.functions.release(claim_id))
    return True


def overturned_majority(chain: Chain, claim_id: int) -> list[str]:
    """Verifiers that voted with the outcome the DAO overturned on claim `claim_id`."""
    a = read_appeal(chain, claim_id)
    if a.state != AppealState.REVERSED:
        return []
    c = read_claim(chain, claim_id)
    evs = fetch_events(chain, from_block=c.reveal_block, contracts=["Claims"], names=["Voted"])
    wanted = a.appealed == ClaimStatus.CONFIRMED
    return [e.args["verifier"] for e in evs if e.args["claimId"] == claim_id and e.args["confirm"] == wanted]


def penalise_overturned(chain: Chain, signer: LocalAccount, claim_id: int) -> dict[str, int]:
    """Slash every verifier of the overturned majority not yet penalised; returns {verifier: amount}."""
    appeals = chain.contract("ClaimAppeals")
    out = {}
    for v in overturned_majority(chain, claim_id):
        if chain.call(appeals.functions.penalised(claim_id, v)):
            continue
        receipt = chain.transact(signer, appeals.functions.penaliseVerifier(claim_id, v))
        ev = next(e for e in chain.decode_events(receipt) if e.name == "VerifierPenalised")
        out[v] = ev.args["amount"]
    return out
