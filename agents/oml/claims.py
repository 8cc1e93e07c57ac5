"""Read-side view of `Claims`: the claim record as a dataclass and its status as an enum."""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from agents.core.chain import Chain
from agents.core.views import read, record_as


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
    commit_block: int     # σ / usage batches defend only from an earlier block
    sealed_commitment: bytes  # a sealed leak claim's commitment (verifiers vote on observations), else zero

    @property
    def is_leak(self) -> bool:
        return self.endpoint_hash != bytes(32)

    @property
    def is_sealed(self) -> bool:
        return self.sealed_commitment != bytes(32)


def read_claim(chain: Chain, claim_id: int) -> ClaimRecord:
    """The on-chain record of claim `claim_id` (raises Reverted UnknownClaim)."""
    return record_as(ClaimRecord, read(chain, chain.contract("Claims").functions.claim(claim_id)), claim_id=claim_id)
