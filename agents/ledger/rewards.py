"""Quality-gated training rewards: the evaluator's attestation, the owner's claim, the referee's re-check.

1. An evaluator (an account with `minEvaluatorStake` active in Staking) holding the fork's key
   (`loyal ledger add-key`) computes the held-out loss of the fork's state before the range
   (after op `fromSeq - 1`) and after it (op `toSeq`) on its own held-out set, puts the set in the
   store and signs an EIP-712 `QualityAttestation` (`attest`).
2. The fork's owner submits it (`submit_claim`): the contract checks the range, the op, the
   signature and the stake, reserves `rewardPerOp` per `minGainPerOp` of loss removed (at most one
   per op) and locks `bondMultiple` times that of the evaluator's stake.
3. During the challenge window a REFEREE_ROLE holder may re-run the evaluation (`recheck`: the same
   states, the data at the CID in the claim's event) and reject a false claim (`reject`), which
   slashes the bond into the pool. After the window anyone finalises it (`finalize`) and the owner
   is paid.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

from agents.core.views import read
from common.errors import ConfigError, LoyalError
from common.typed_data import QUALITY_ATTESTATION, Domain, typed_data
from ml.ledger.base import load_base
from ml.ledger.quality import RECHECK_TOLERANCE, data_bytes, data_from_bytes, held_out_losses, to_units
from ml.ledger.trainer import Interaction

from .agent import UserAgent, fields_arg


class BadAttestation(LoyalError):
    """An attestation file that is not one, or names another chain or ledger."""


@dataclass(frozen=True)
class Attestation:
    evaluator: str
    user_model_id: int
    from_seq: int
    to_seq: int
    to_op_hash: bytes
    eval_data_hash: bytes
    loss_before: int  # nats x LOSS_SCALE
    loss_after: int
    eval_data_cid: str
    signature: bytes
    chain_id: int
    ledger: str

    def message(self) -> dict:
        return {"evaluator": self.evaluator, "userModelId": self.user_model_id, "fromSeq": self.from_seq,
                "toSeq": self.to_seq, "toOpHash": self.to_op_hash, "evalDataHash": self.eval_data_hash,
                "lossBefore": self.loss_before, "lossAfter": self.loss_after}

    def as_arg(self) -> tuple:
        m = self.message()
        return tuple(m[n] for n, _ in QUALITY_ATTESTATION.fields)

    def to_json(self) -> dict:
        return {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict) -> "Attestation":
        try:
            b = lambda k: bytes.fromhex(d[k].removeprefix("0x"))  # noqa: E731
            return cls(to_checksum_address(d["evaluator"]), int(d["user_model_id"]), int(d["from_seq"]),
                       int(d["to_seq"]), b("to_op_hash"), b("eval_data_hash"), int(d["loss_before"]),
                       int(d["loss_after"]), str(d["eval_data_cid"]), b("signature"), int(d["chain_id"]),
                       to_checksum_address(d["ledger"]))
        except (KeyError, ValueError, TypeError, AttributeError):
            raise BadAttestation("not a quality attestation (expected the JSON `loyal ledger attest` writes)") from None

    @classmethod
    def load(cls, path: Path) -> "Attestation":
        import json

        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise ConfigError(f"attestation file {path} does not exist") from None
        except ValueError:
            raise BadAttestation(f"{path} is not JSON") from None


def _domain(agent: UserAgent) -> Domain:
    return Domain("LoyalTrainingLedger", "1", agent.chain.chain_id, agent.ledger.address)


def digest(agent: UserAgent, a: Attestation) -> bytes:
    """The EIP-712 digest of `a` (what `TrainingLedger.attestationDigest` returns)."""
    signable = encode_typed_data(full_message=typed_data(_domain(agent), QUALITY_ATTESTATION, a.message()))
    return keccak(b"\x19\x01" + signable.header + signable.body)


def attest(agent: UserAgent, fid: int, to_seq: int, data: list[Interaction], model_dir: Path,
           from_seq: int | None = None) -> Attestation:
    """As the evaluator (`agent`'s signer): measure fork `fid`'s held-out loss on `data` before op
    `from_seq` (default: the first op not yet paid) and after op `to_seq`, store `data`, sign."""
    c = agent.ledger.c
    f = agent.ledger.fork(fid)
    if from_seq is None:
        from_seq = agent.chain.call(c.functions.rewardedThroughSeq(fid)) + 1
    if not 1 <= from_seq <= to_seq <= f.op_count:
        raise ConfigError(f"fork {fid} has ops 1..{f.op_count}; cannot attest ops {from_seq}..{to_seq}")
    before, after = agent.state_at(fid, from_seq - 1), agent.state_at(fid, to_seq)
    model, tok = load_base(model_dir)
    loss_before, loss_after = held_out_losses(model, tok, [before, after], data)
    cid = agent.store.put(data_bytes(data))
    to_op = agent.ledger.fork_ops(fid, f)[to_seq - 1]
    return sign(agent, Attestation(agent.signer.address, fid, from_seq, to_seq, to_op.op_hash, keccak(cid.encode()),
                                   to_units(loss_before), to_units(loss_after), cid, b"", agent.chain.chain_id,
                                   agent.ledger.address))


def sign(agent: UserAgent, a: Attestation) -> Attestation:
    """`a` signed (EIP-712) by `agent`'s signer, which must be `a.evaluator`."""
    if a.evaluator != agent.signer.address:
        raise ConfigError(f"the attestation names evaluator {a.evaluator}; {agent.signer.address} cannot sign it")
    signable = encode_typed_data(full_message=typed_data(_domain(agent), QUALITY_ATTESTATION, a.message()))
    return Attestation(**{**asdict(a), "signature": bytes(agent.signer.sign_message(signable).signature)})


def submit_claim(agent: UserAgent, a: Attestation) -> int:
    """As the fork's owner: claim the reward `a` attests to; returns the claim id."""
    if (a.chain_id, a.ledger) != (agent.chain.chain_id, agent.ledger.address):
        raise BadAttestation(f"the attestation is for ledger {a.ledger} on chain {a.chain_id}, not this one")
    ops = agent.ledger.fork_ops(a.user_model_id)
    if not 1 <= a.to_seq <= len(ops):
        raise BadAttestation(f"fork {a.user_model_id} has no op {a.to_seq}")
    to_op = ops[a.to_seq - 1]
    receipt = agent.chain.transact(agent.signer, agent.ledger.c.functions.submitRewardClaim(
        a.as_arg(), a.signature, a.eval_data_cid, to_op.op_id, fields_arg(to_op)))
    return [e for e in agent.chain.decode_events(receipt) if e.name == "RewardClaimSubmitted"][0].args["claimId"]


def finalize(agent: UserAgent, claim_id: int) -> int:
    """Pay claim `claim_id` after its window (anyone may); returns the amount paid to the owner."""
    receipt = agent.chain.transact(agent.signer, agent.ledger.c.functions.finalizeRewardClaim(claim_id))
    return [e for e in agent.chain.decode_events(receipt) if e.name == "TrainingRewardsClaimed"][0].args["amount"]


@dataclass(frozen=True)
class Recheck:
    claim_id: int
    user_model_id: int
    from_seq: int
    to_seq: int
    attested: tuple[int, int]  # (loss before, loss after), nats x LOSS_SCALE
    recomputed: tuple[int, int]

    @property
    def holds(self) -> bool:
        return all(abs(x - y) <= RECHECK_TOLERANCE for x, y in zip(self.attested, self.recomputed))


def recheck(agent: UserAgent, claim_id: int, model_dir: Path) -> Recheck:
    """Re-run claim `claim_id`'s evaluation: the fork's states (needs its key, and its ancestors')
    on the held-out data at the CID in the claim's event."""
    c = read(agent.chain, agent.ledger.c.functions.getRewardClaim(claim_id))
    evs = [e for e in agent.ledger.log.events_at(c.submittedAtBlock, "RewardClaimSubmitted")
           if e.args["claimId"] == claim_id]
    if not evs:
        raise LoyalError(f"no RewardClaimSubmitted event of claim {claim_id} in block {c.submittedAtBlock}")
    a = evs[-1].args
    data = data_from_bytes(agent.store.get(a["evalDataCid"]))
    before = agent.state_at(c.userModelId, c.fromSeq - 1)
    after = agent.state_at(c.userModelId, c.toSeq)
    model, tok = load_base(model_dir)
    lb, la = held_out_losses(model, tok, [before, after], data)
    return Recheck(claim_id, c.userModelId, c.fromSeq, c.toSeq, (a["lossBefore"], a["lossAfter"]),
                   (to_units(lb), to_units(la)))


def reject(agent: UserAgent, claim_id: int, reason: str) -> int:
    """As a REFEREE_ROLE holder: reject a pending claim whose re-check failed; returns the stake slashed."""
    receipt = agent.chain.transact(agent.signer, agent.ledger.c.functions.rejectRewardClaim(claim_id, reason))
    return [e for e in agent.chain.decode_events(receipt) if e.name == "RewardClaimRejected"][0].args["slashed"]
