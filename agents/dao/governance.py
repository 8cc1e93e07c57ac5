"""Python side of the DAO governor: typed proposals, votes (direct and EIP-712 by signature), execution.

Thin over web3: every step is one transaction through `Chain.transact`, so refusals arrive as
`Reverted` named after the contract's custom error (e.g. `VoterNotEligible`, `ProposerTierTooLow`).
"""
from __future__ import annotations

from dataclasses import dataclass

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from agents.core.chain import Chain
from common.typed_data import BALLOT, Domain, typed_data

from .deploy import PROPOSAL_TYPES

AGAINST, FOR, ABSTAIN = 0, 1, 2
SUPPORT = {"against": AGAINST, "for": FOR, "abstain": ABSTAIN}
STATES = ["Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed"]


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
        receipt = self.chain.transact(proposer, fn)
        ev = next(e for e in self.chain.decode_events(receipt) if e.name == "ProposalCreated")
        return Proposal(ev.args["proposalId"], t, tuple(actions), description, ev.args["voteStart"], ev.args["voteEnd"],
                        receipt["gasUsed"])

    def state(self, proposal: Proposal | int) -> str:
        pid = proposal.id if isinstance(proposal, Proposal) else proposal
        return STATES[self.chain.call(self.governor.functions.state(pid))]

    def vote(self, voter: LocalAccount, proposal: Proposal | int, support: int | str = FOR) -> dict:
        pid = proposal.id if isinstance(proposal, Proposal) else proposal
        return self.chain.transact(voter, self.governor.functions.castVote(pid, support_value(support)))

    def sign_ballot(self, voter: LocalAccount, proposal: Proposal | int, support: int | str = FOR) -> bytes:
        pid = proposal.id if isinstance(proposal, Proposal) else proposal
        nonce = self.chain.call(self.governor.functions.nonces(voter.address))
        data = ballot_typed_data(self.chain.chain_id, self.governor.address, pid, support_value(support),
                                 voter.address, nonce)
        return bytes(voter.sign_message(encode_typed_data(full_message=data)).signature)

    def vote_by_sig(self, relayer: LocalAccount, voter: str, proposal: Proposal | int, support: int | str,
                    signature: bytes) -> dict:
        pid = proposal.id if isinstance(proposal, Proposal) else proposal
        return self.chain.transact(relayer, self.governor.functions.castVoteBySig(pid, support_value(support), voter,
                                                                                 signature))

    def execute(self, executor: LocalAccount, proposal: Proposal) -> dict:
        a = proposal.actions
        return self.chain.transact(executor, self.governor.functions.execute(
            [x.target for x in a], [0] * len(a), [x.calldata for x in a], proposal.description_hash))

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
