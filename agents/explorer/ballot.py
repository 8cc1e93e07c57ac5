"""Votes from the page: the DAO governor's EIP-712 ballot, signed by any wallet, relayed by the explorer.

A relayed ballot is a transaction sent for someone else, so it is checked before anything is sent,
and refused with a message naming the problem (`BallotRefused`) when it is malformed (voter,
support, nonce, chain id or signature), signed for another chain, not signed by the voter (another
key, another proposal or support), a replay (its nonce was used), from a voter who already voted,
for a proposal that is not Active, or refused by the governor in simulation (`VoterNotEligible`).

The typed data is `agents.dao.governance.ballot_typed_data` (common/typed_data.py): the same
ballot `castVoteBySig` checks. Its nonce is the governor's `nonces(voter)`, read live (a ballot
with a stale nonce could never be relayed).
"""
from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import is_hex_address, to_checksum_address

from agents.core.chain import Chain
from agents.dao.governance import STATES, SUPPORT, ballot_typed_data
from common.errors import LoyalError, Reverted


class BallotRefused(LoyalError):
    """A ballot the explorer will not relay; nothing was sent."""


@dataclass(frozen=True)
class Ballot:
    proposal_id: int
    support: int
    voter: str
    nonce: int
    chain_id: int
    signature: bytes


def _int(form: dict, name: str) -> int:
    text = (form.get(name) or "").strip()
    try:
        v = int(text, 0)
    except ValueError:
        raise BallotRefused(f"{name} {text!r} is not a number") from None
    if v < 0:
        raise BallotRefused(f"{name} must not be negative")
    return v


def support_of(text: str) -> int:
    t = (text or "").strip().lower()
    if t in SUPPORT:
        return SUPPORT[t]
    if t in ("0", "1", "2"):
        return int(t)
    raise BallotRefused(f"support {text!r} is not for, against or abstain")


def voter_of(text: str) -> str:
    t = (text or "").strip()
    if not is_hex_address(t):
        raise BallotRefused(f"voter {t!r} is not an address (0x and 40 hex digits)")
    return to_checksum_address(t)


def parse_ballot(proposal_id: int, form: dict) -> Ballot:
    """The ballot a form POST carries: voter, support, nonce, chain_id, signature (0x + 65 bytes)."""
    sig = (form.get("signature") or "").strip()
    try:
        raw = bytes.fromhex(sig.removeprefix("0x"))
    except ValueError:
        raise BallotRefused("the signature is not hex (0x followed by 130 hex digits)") from None
    if len(raw) != 65:
        raise BallotRefused(f"the signature has {len(raw)} bytes, not 65 (r, s, v)")
    return Ballot(proposal_id, support_of(form.get("support", "")), voter_of(form.get("voter", "")),
                  _int(form, "nonce"), _int(form, "chain_id"), raw)


class Relay:
    """Builds ballots to sign and relays signed ones with the relayer key (None: relaying is off)."""

    def __init__(self, chain: Chain, relayer=None):
        self.chain, self.relayer = chain, relayer
        self.governor = chain.contract("DaoGovernor")

    def typed_data(self, proposal_id: int, voter: str, support: int) -> dict:
        nonce = self.chain.call(self.governor.functions.nonces(voter))
        return ballot_typed_data(self.chain.chain_id, self.governor.address, proposal_id, support, voter, nonce)

    def check(self, b: Ballot) -> None:
        """Every refusal, before anything is sent."""
        if b.chain_id != self.chain.chain_id:
            raise BallotRefused(f"the ballot was signed for chain {b.chain_id}; this governor is on chain "
                                f"{self.chain.chain_id}: sign the ballot this page shows")
        data = ballot_typed_data(b.chain_id, self.governor.address, b.proposal_id, b.support, b.voter, b.nonce)
        try:
            signer = Account.recover_message(encode_typed_data(full_message=data), signature=b.signature)
        except Exception:  # a signature that is no point on the curve, a bad v
            raise BallotRefused("the signature is not a valid secp256k1 signature") from None
        if signer != b.voter:
            raise BallotRefused(f"the signature is not the voter's: this ballot (proposal, support, nonce) was "
                                f"signed by {signer}, not {b.voter}")
        nonce = self.chain.call(self.governor.functions.nonces(b.voter))
        if b.nonce != nonce:
            raise BallotRefused(f"ballot nonce {b.nonce} was already used (a replay?): {b.voter}'s next nonce is "
                                f"{nonce}; sign the ballot again")
        if self.chain.call(self.governor.functions.hasVoted(b.proposal_id, b.voter)):
            raise BallotRefused(f"{b.voter} has already voted on this proposal")
        state = STATES[self.chain.call(self.governor.functions.state(b.proposal_id))]
        if state != "Active":
            raise BallotRefused(f"the proposal is {state}, not Active: no vote can be cast")

    def relay(self, b: Ballot) -> str:
        """Check, then send `castVoteBySig` with the relayer key; the transaction hash."""
        if self.relayer is None:
            raise BallotRefused("this explorer has no relayer key: start it with --keystore (or the keystore setting)")
        self.check(b)
        fn = self.governor.functions.castVoteBySig(b.proposal_id, b.support, b.voter, b.signature)
        try:
            receipt = self.chain.transact(self.relayer, fn)  # simulated first: a revert sends nothing
        except Reverted as e:
            raise BallotRefused(f"the governor refuses this vote: {e}") from None
        return receipt["transactionHash"].to_0x_hex()
