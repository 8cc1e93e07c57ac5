"""A signed DAO ballot as a file: signed on one machine (`--sign-only FILE`), relayed from another
(`--relay FILE`) by anyone, through `castVoteBySig`.

The file holds what the EIP-712 `Ballot` commits to (chain, governor, proposal, support, voter,
nonce) and the signature. `read_ballot` checks its shape; `check_ballot` refuses a ballot for
another chain or governor, or whose nonce is no longer the voter's, each with one line naming the
problem. Whether the signature is the voter's over exactly these fields (not over another
proposal or vote) is checked by the relaying side, which recovers the signer before sending.

Standard library only: the Ape scripts (their own venv) use it too. Proposal ids are uint256, so
they are written as decimal strings (no 53-bit reader loses them).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

KIND = "loyal-dao-ballot"
SUPPORT_NAMES = ("against", "for", "abstain")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")


class BallotFileError(ValueError):
    """A ballot file that cannot be relayed; `str(e)` is one line naming the problem."""


@dataclass(frozen=True)
class SignedBallot:
    chain_id: int
    governor: str
    proposal_id: int
    support: int  # 0 against, 1 for, 2 abstain
    voter: str
    nonce: int
    signature: bytes

    @property
    def support_name(self) -> str:
        return SUPPORT_NAMES[self.support]

    def message(self) -> dict:
        """The EIP-712 Ballot message (common.typed_data.BALLOT fields)."""
        return {"proposalId": self.proposal_id, "support": self.support, "voter": self.voter, "nonce": self.nonce}

    def to_json(self) -> dict:
        return {"kind": KIND, "chainId": self.chain_id, "governor": self.governor,
                "proposalId": str(self.proposal_id), "support": self.support_name, "voter": self.voter,
                "nonce": self.nonce, "signature": "0x" + self.signature.hex()}


def write_ballot(path: str | Path, ballot: SignedBallot) -> Path:
    p = Path(path)
    p.write_text(json.dumps(ballot.to_json(), indent=2) + "\n")
    return p


def read_ballot(path: str | Path) -> SignedBallot:
    """The ballot in `path`, its shape checked (BallotFileError otherwise)."""
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError:
        raise BallotFileError(f"ballot file {p} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError):
        raise BallotFileError(f"ballot file {p} is not JSON") from None
    if not isinstance(d, dict) or d.get("kind") != KIND:
        raise BallotFileError(f"{p} is not a signed ballot (kind {KIND!r}; write one with --sign-only)")
    try:
        support = d["support"]
        ballot = SignedBallot(int(d["chainId"]), str(d["governor"]), int(d["proposalId"]),
                              SUPPORT_NAMES.index(support) if isinstance(support, str) else int(support),
                              str(d["voter"]), int(d["nonce"]), bytes.fromhex(str(d["signature"])[2:]))
    except (KeyError, ValueError, TypeError) as e:
        raise BallotFileError(f"ballot file {p} is malformed ({type(e).__name__}: {e})") from None
    if not _ADDRESS.match(ballot.governor) or not _ADDRESS.match(ballot.voter):
        raise BallotFileError(f"ballot file {p}: governor and voter must be 0x addresses")
    if not _SIGNATURE.match(str(d["signature"])):
        raise BallotFileError(f"ballot file {p}: the signature must be 65 bytes of 0x-hex")
    if ballot.support not in (0, 1, 2):
        raise BallotFileError(f"ballot file {p}: support must be against, for or abstain")
    return ballot


def check_ballot(ballot: SignedBallot, *, chain_id: int, governor: str, voter_nonce: int) -> None:
    """Refuse a ballot that cannot count here (BallotFileError naming why)."""
    if ballot.chain_id != chain_id:
        raise BallotFileError(f"the ballot was signed for chain {ballot.chain_id}, this is chain {chain_id}: "
                              "nothing sent")
    if ballot.governor.lower() != governor.lower():
        raise BallotFileError(f"the ballot was signed for governor {ballot.governor}, this chain's governor is "
                              f"{governor}: nothing sent")
    if ballot.nonce != voter_nonce:
        raise BallotFileError(f"the ballot was signed with nonce {ballot.nonce}, {ballot.voter}'s nonce is now "
                              f"{voter_nonce} (used by another signed vote): sign again; nothing sent")
