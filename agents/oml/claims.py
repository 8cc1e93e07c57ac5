"""Read-side view of `Claims`: the claim record as a dataclass and its status as an enum."""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from agents.core.chain import Chain


class ClaimStatus(IntEnum):
    """Mirrors `Claims.Status`."""
    NONE = 0
    OPEN = 1
    DEFENDED = 2
    CONFIRMED = 3
    REJECTED = 4


@dataclass(frozen=True)
class ClaimRecord:
    claim_id: int
    prover: str
    host: str
    model_id: int
    key_hash: bytes
    response_hash: bytes
    committed_at: int
    revealed_at: int
    reveal_block: int
    verifiers_at_reveal: int
    confirmations: int
    rejections: int
    status: ClaimStatus
    endpoint_hash: bytes  # zero: a claim against the host's own service; else a leaked endpoint's URL hash
    verifier_reward: int  # per verifier that voted with the outcome (set when decided)

    @property
    def is_leak(self) -> bool:
        return self.endpoint_hash != bytes(32)


def read_claim(chain: Chain, claim_id: int) -> ClaimRecord:
    """The on-chain record of claim `claim_id` (raises Reverted UnknownClaim)."""
    c = chain.call(chain.contract("Claims").functions.claim(claim_id))
    return ClaimRecord(claim_id, c[0], c[1], c[2], bytes(c[3]), bytes(c[4]), *c[5:11], ClaimStatus(c[11]),
                       bytes(c[12]), c[13])
