"""Python side of the DAO governor: typed proposals, votes (direct and EIP-712 by signature), execution.

Thin over web3: every step is one transaction through `Chain.transact`, so refusals arrive as
`Reverted` named after the contract's custom error (e.g. `VoterNotEligible`, `ProposerTierTooLow`).
"""
from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from agents.core.audit import iso_utc
from agents.core.chain import Chain
from common.ballots import BallotFileError, SignedBallot, check_ballot
from common.errors import LoyalError, Reverted
from common.typed_data import BALLOT, Domain, typed_data

from .deploy import PROPOSAL_TYPES

AGAINST, FOR, ABSTAIN = 0, 1, 2
SUPPORT = {"against": AGAINST, "for": FOR, "abstain": ABSTAIN}
STATES = ["Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed"]
TYPE_NAMES = {v: k.capitalize() for k, v in PROPOSAL_TYPES.items()}


class ProposalNotFound(LoyalError):
    """No proposal with that id on this chain's governor."""


class WrongProposalState(LoyalError):
    """The proposal is not in the state the action needs (voting not open or closed, not succeeded)."""


class BadBallot(LoyalError):
    """A signed ballot that cannot be relayed here (another chain, governor, proposal, or a used nonce)."""


@dataclass(frozen=True)
class Action:
    """One call a proposal makes: `contract.fn(*args)` with no ETH."""

    target: str
    calldata: bytes

    @classmethod
    def call(cls, contract, fn: str, *args) -> "Action":
        return cls(contract.address, bytes.fromhex(contract.encode_abi(fn, args=list(args))[2:]))


@dataclass(frozen=True)
class Proposal:
    id: int
    type: int
    actions: tuple[Action, ...]
    description: str
    vote_start: int
    vote_end: int
    gas_used: int = 0  # of the proposing transaction

    @property
    def description_hash(self) -> bytes:
        return keccak(text=self.description)


def _function_name(chain: Chain, contract: str, selector: bytes) -> str:
    from eth_utils import function_signature_to_4byte_selector

    from agents.core.artifacts import abi_type

    try:
        abi = chain.artifacts.get(contract).abi
    except LoyalError:
        return "0x" + selector.hex()
    for i in abi:
        if i["type"] == "function":
            sig = f"{i['name']}({','.join(abi_type(x) for x in i['inputs'])})"
            if function_signature_to_4byte_selector(sig) == selector:
                return i["name"]
    return "0x" + selector.hex()


def proposal_type(value: int | str) -> int:
    if isinstance(value, str):
        if value.lower() not in PROPOSAL_TYPES:
            raise ValueError(f"unknown proposal type {value!r}: one of {', '.join(PROPOSAL_TYPES)}")
        return PROPOSAL_TYPES[value.lower()]
    if value not in PROPOSAL_TYPES.values():
        raise ValueError(f"unknown proposal type {value}: 0..3")
    return value


def support_value(value: int | str) -> int:
    if isinstance(value, str):
        if value.lower() not in SUPPORT:
            raise ValueError(f"unknown vote {value!r}: for, against or abstain")
        return SUPPORT[value.lower()]
    if value not in (0, 1, 2):
        raise ValueError(f"unknown vote {value}: 0 against, 1 for, 2 abstain")
    return value


def ballot_typed_data(chain_id: int, governor: str, proposal_id: int, support: int, voter: str, nonce: int) -> dict:
    """The EIP-712 Ballot an OZ Governor named "LoyalDAO" (version "1") accepts in castVoteBySig."""
    return typed_data(Domain("LoyalDAO", "1", chain_id, governor), BALLOT,
                      {"proposalId": proposal_id, "support": support, "voter": voter, "nonce": nonce})


class Dao:
    def __init__(self, chain: Chain):
        self.chain = chain
        self.governor = chain.contract("DaoGovernor")
        self.personnel = chain.contract("PersonnelRegistry")
        self.models = chain.contract("DaoModelRegistry")
        self.hardware = chain.contract("HardwareRegistry")
        self.issuer = chain.contract("OTKIssuer")
        self.credits = chain.contract("GasCredits")
        self.treasury = chain.contract("DaoTreasury")

    # -- proposals -------------------------------------------------------------------------
    def propose(self, proposer: LocalAccount, ptype: int | str, actions: list[Action], description: str) -> Proposal:
        if not actions:
            raise ValueError("a proposal needs at least one action")
        t = proposal_type(ptype)
        fn = self.governor.functions.proposeTyped(t, [a.target for a in actions], [0] * len(actions),
                                                  [a.calldata for a in actions], description)
        try:
            receipt = self.chain.transact(proposer, fn)
        except Reverted.named("ActionNotAllowed") as e:
            raise self._not_allowed(e) from None
        ev = next(e for e in self.chain.decode_events(receipt) if e.name == "ProposalCreated")
        return Proposal(ev.args["proposalId"], t, tuple(actions), description, ev.args["voteStart"], ev.args["voteEnd"],
                        receipt["gasUsed"])

    def _not_allowed(self, e: Reverted) -> Reverted:
        """ActionNotAllowed with the action by name and the types that may take it."""
        from .deploy import allowed_types

        a = e.error_args
        name = next((n for n, c in self.chain.book.contracts.items()
                     if c["address"].lower() == a["target"].lower()), a["target"])
        fn = _function_name(self.chain, name, bytes(a["selector"]))
        ptype = TYPE_NAMES[a["proposalType"]]
        who = allowed_types(self.chain, a["target"], bytes(a["selector"]), self.governor)
        may = f"only {', '.join(who)} proposals may" if who else "no proposal type may"
        msg = (f"reverted: ActionNotAllowed: a {ptype} proposal may not call {name}.{fn} ({may}); "
               "nothing sent")
        return Reverted.named("ActionNotAllowed")(msg, "ActionNotAllowed", a)

    def state(self, proposal: Proposal | int) -> str:
        pid = proposal.id if isinstance(proposal, Proposal) else proposal
        try:
            return STATES[self.chain.call(self.governor.functions.state(pid))]
        except Reverted.named("GovernorNonexistentProposal"):
            raise ProposalNotFound(f"no proposal {pid} on the governor of chain {self.chain.chain_id} "
                                   f"({self.governor.address})") from None

    def find(self, proposal_id: int) -> Proposal:
        """Proposal `proposal_id` as created (actions and description from its ProposalCreated event)."""
        from agents.core.events import fetch_events

        self.state(proposal_id)  # ProposalNotFound for an unknown id, before any scan
        start = int(self.chain.book.contracts["DaoGovernor"].get("block", 0))
        for ev in fetch_events(self.chain, from_block=start, contracts=["DaoGovernor"],
                               names=["ProposalCreated", "ProposalTyped"]):
            if ev.name == "ProposalCreated" and ev.args["proposalId"] == proposal_id:
                a = ev.args
                actions = tuple(Action(to_checksum_address(t), bytes(c)) for t, c in zip(a["targets"], a["calldatas"]))
                ptype = self.chain.call(self.governor.functions.proposalType(proposal_id))
                return Proposal(proposal_id, ptype, actions, a["description"], a["voteStart"], a["voteEnd"])
        raise ProposalNotFound(f"proposal {proposal_id} has no ProposalCreated event from block {start} on")

    def status(self, proposal_id: int) -> dict:
        """State, type, voting window (dates), tally and quorum of a proposal, by name."""
        state = self.state(proposal_id)
        g = self.governor.functions
        start, end = self.chain.call(g.proposalSnapshot(proposal_id)), self.chain.call(g.proposalDeadline(proposal_id))
        against, for_, abstain = self.chain.call(g.proposalVotes(proposal_id))
        return {"proposalId": str(proposal_id), "type": TYPE_NAMES[self.chain.call(g.proposalType(proposal_id))],
                "state": state, "votingOpens": iso_utc(start), "votingCloses": iso_utc(end),
                "tally": {"for": for_, "against": against, "abstain": abstain},
                "quorum": self.chain.call(g.proposalQuorum(proposal_id)),
                "changesRules": self.chain.call(g.proposalChangesRules(proposal_id)),
                "proposer": self.chain.call(g.proposalProposer(proposal_id))}

    def require_state(self, proposal_id: int, wanted: str, action: str) -> None:
        """Raise WrongProposalState (naming the state and the relevant date) unless `wanted`."""
        state = self.state(proposal_id)
        if state == wanted:
            return
        g = self.governor.functions
        start, end = self.chain.call(g.proposalSnapshot(proposal_id)), self.chain.call(g.proposalDeadline(proposal_id))
        when = {"Pending": f"voting opens {iso_utc(start + 1)}", "Active": f"voting closes {iso_utc(end)}"}.get(
            state, f"voting closed {iso_utc(end)}")
        raise WrongProposalState(f"proposal {proposal_id} is {state} ({when}), not {wanted}: cannot {action}; "
                                 "nothing sent")

    def vote(self, voter: LocalAccount, proposal: Proposal | int, support: int | str = FOR) -> dict:
        pid = proposal.id if isinstance(proposal, Proposal) else proposal
        self.require_state(pid, "Active", "vote")
        return self.chain.transact(voter, self.governor.functions.castVote(pid, support_value(support)))

    def sign_ballot(self, voter: LocalAccount, proposal: Proposal | int, support: int | str = FOR) -> bytes:
        return self.signed_ballot(voter, proposal, support).signature

    def signed_ballot(self, voter: LocalAccount, proposal: Proposal | int, support: int | str = FOR) -> SignedBallot:
        """The voter's EIP-712 ballot, signed here, to be relayed by anyone (nothing sent)."""
        pid = proposal.id if isinstance(proposal, Proposal) else proposal
        self.state(pid)  # ProposalNotFound for an unknown id
        nonce = self.chain.call(self.governor.functions.nonces(voter.address))
        sv = support_value(support)
        data = ballot_typed_data(self.chain.chain_id, self.governor.address, pid, sv, voter.address, nonce)
        sig = bytes(voter.sign_message(encode_typed_data(full_message=data)).signature)
        return SignedBallot(self.chain.chain_id, self.governor.address, pid, sv, voter.address, nonce, sig)

    def vote_by_sig(self, relayer: LocalAccount, voter: str, proposal: Proposal | int, support: int | str,
                    signature: bytes) -> dict:
        pid = proposal.id if isinstance(proposal, Proposal) else proposal
        return self.chain.transact(relayer, self.governor.functions.castVoteBySig(pid, support_value(support), voter,
                                                                                 signature))

    def relay(self, relayer: LocalAccount, ballot: SignedBallot) -> dict:
        """Send a ballot signed elsewhere, after checking it is for this chain and governor, that its
        nonce is still the voter's, that the signature is the voter's over exactly these fields (not
        another proposal or vote) and that voting is open; BadBallot / WrongProposalState otherwise."""
        try:
            check_ballot(ballot, chain_id=self.chain.chain_id, governor=self.governor.address,
                         voter_nonce=self.chain.call(self.governor.functions.nonces(ballot.voter)))
        except BallotFileError as e:
            raise BadBallot(str(e)) from None
        data = ballot_typed_data(ballot.chain_id, self.governor.address, ballot.proposal_id, ballot.support,
                                 ballot.voter, ballot.nonce)
        signer = Account.recover_message(encode_typed_data(full_message=data), signature=ballot.signature)
        if signer.lower() != ballot.voter.lower():
            raise BadBallot(f"the signature is not {ballot.voter}'s over this ballot (proposal {ballot.proposal_id}, "
                            f"{ballot.support_name}, nonce {ballot.nonce}): it was signed for another proposal, vote "
                            "or chain; nothing sent")
        self.require_state(ballot.proposal_id, "Active", "relay the vote")
        return self.vote_by_sig(relayer, ballot.voter, ballot.proposal_id, ballot.support, ballot.signature)

    def execute(self, executor: LocalAccount, proposal: Proposal | int) -> dict:
        if not isinstance(proposal, Proposal):
            proposal = self.find(proposal)
        self.require_state(proposal.id, "Succeeded", "execute")
        a = proposal.actions
        return self.chain.transact(executor, self.governor.functions.execute(
            [x.target for x in a], [0] * len(a), [x.calldata for x in a], proposal.description_hash))

    # -- gas credits ------------------------------------------------------------------------
    def buy_credits(self, buyer: LocalAccount, credits: int) -> dict:
        """Buy `credits` gas credits at the voted price, paying LOYAL through `Token.pay_and_call`
        (no approval left behind a refused purchase)."""
        from agents.core.token import Token

        if credits <= 0:
            raise ValueError(f"credits to buy must be positive, got {credits}")
        price = self.chain.call(self.credits.functions.creditPrice())
        return Token(self.chain).pay_and_call(buyer, self.credits.address, credits * price,
                                              self.credits.functions.buy(credits, price), purpose="the gas credits")

    # -- time (dev chain) ------------------------------------------------------------------
    def now(self) -> int:
        return self.chain.w3.eth.get_block("latest")["timestamp"]

    def advance_past(self, timestamp: int) -> None:
        """Move Anvil's clock (evm_increaseTime + evm_mine) to just after `timestamp`."""
        gap = timestamp + 1 - self.now()
        if gap > 0:
            self.chain.advance_time(gap)

    def pass_proposal(self, proposal: Proposal, voters: list[LocalAccount], executor: LocalAccount,
                      support: int | str = FOR) -> dict:
        """Dev-chain helper: wait for the vote to open, vote with `voters`, wait for the end, execute."""
        self.advance_past(proposal.vote_start)
        for v in voters:
            self.vote(v, proposal, support)
        self.advance_past(proposal.vote_end)
        return self.execute(executor, proposal)
