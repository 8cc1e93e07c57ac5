"""The ledger's history read from its events: a fork's ops, a user's ops, a fork's exports.

TrainingLedger stores per op only its hash; what the hash commits to (CIDs, commitments), who
recorded the op and when are in its `TrainingRecorded` event. The contract stores where to look:
a fork's ops lie between blocks `forkedAtBlock` and `lastOpBlock`, an export's event is in block
`exportAt(fork, seq).atBlock`. So every read here is `fetch_events` (the suite's one event reader)
over a bounded range, never a scan from block 0.

Ops never change once recorded, so a fork's ops read once are kept for the life of the `OpLog`
and only the blocks after them are read next time. What comes back is checked against storage:
seq 1..n in order, n = the fork's op count, and the last op hash = the fork's stored head (the
links between ops are checked by `ml.ledger.rebuild.check_chain` in verify).
"""
from __future__ import annotations

from dataclasses import dataclass

from agents.core.chain import Chain, Event
from agents.core.events import fetch_events
from ml.ledger.errors import ChainBroken
from ml.ledger.ophash import OpFields

CONTRACT = "TrainingLedger"


@dataclass(frozen=True)
class ForkView:
    user_model_id: int
    owner: str
    op_count: int
    last_op_block: int
    head: bytes
    genesis: bytes
    base_model_id: int
    forked_at_block: int
    parent_id: int  # 0: a fork of the base model
    parent_seq: int  # the parent's op whose exported state this fork starts from
    generation: int  # 1 for a fork of the base model


@dataclass(frozen=True)
class OpView:
    """One op as its `TrainingRecorded` event tells it."""

    op_id: int
    user_model_id: int
    owner: str
    seq: int
    prev_op_hash: bytes
    op_hash: bytes
    interaction_cid: str
    delta_cid: str
    delta_commitment: bytes
    state_commitment: bytes
    recorder: str
    recorded_at: int  # block time (unix seconds)
    recorded_at_block: int
    tx: str

    @classmethod
    def of(cls, ev: Event) -> "OpView":
        a = ev.args
        return cls(a["opId"], a["userModelId"], a["owner"], a["seq"], a["prevOpHash"], a["opHash"],
                   a["interactionCid"], a["deltaCid"], a["deltaCommitment"], a["stateCommitment"], a["recorder"],
                   a["recordedAt"], ev.block, ev.tx)

    def fields(self) -> OpFields:
        return OpFields(self.user_model_id, self.seq, self.prev_op_hash, self.interaction_cid, self.delta_cid,
                        self.delta_commitment, self.state_commitment)

    def to_json(self) -> dict:
        return {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class ExportView:
    """A fork's export at op `seq`, as its `ModelExported` event tells it."""

    user_model_id: int
    seq: int
    state_cid: str
    head_op_hash: bytes
    state_commitment: bytes
    block: int


class OpLog:
    """Event-sourced reads of one ledger on one chain (ops cached per fork, append only)."""

    def __init__(self, chain: Chain):
        self.chain = chain
        self._ops: dict[int, list[OpView]] = {}
        self.event_reads = 0  # fetch_events calls made (tests and benchmarks)

    def _events(self, lo: int, hi: int, name: str) -> list[Event]:
        self.event_reads += 1
        return fetch_events(self.chain, from_block=lo, to_block=hi, contracts=[CONTRACT], names=[name])

    def events_at(self, block: int, name: str) -> list[Event]:
        """The ledger's `name` events in block `block` (where the contract says one is)."""
        return self._events(block, block, name)

    def fork_ops(self, f: ForkView) -> list[OpView]:
        """Fork `f`'s ops in seq order, all `f.op_count` of them."""
        fid = f.user_model_id
        have = self._ops.get(fid, [])
        if len(have) < f.op_count:
            # From the block of the last op held (another op of the fork may share it), else the fork's height.
            lo = have[-1].recorded_at_block if have else f.forked_at_block
            known = {o.op_id for o in have}
            new = [OpView.of(e) for e in self._events(lo, f.last_op_block, "TrainingRecorded")
                   if e.args["userModelId"] == fid and e.args["opId"] not in known]
            have = have + sorted(new, key=lambda o: o.seq)
        ops = have[: f.op_count]
        if [o.seq for o in ops] != list(range(1, f.op_count + 1)) or (ops and ops[-1].op_hash != f.head):
            self._ops.pop(fid, None)  # a reorganised chain, or a node that lost logs: read afresh next time
            raise ChainBroken(f"fork {fid}: its events between blocks {f.forked_at_block} and {f.last_op_block} "
                              f"do not give its {f.op_count} ops up to the stored head")
        self._ops[fid] = ops
        return ops

    def user_ops(self, forks: list[ForkView]) -> list[OpView]:
        """Every op on `forks` (a user's forks), oldest first (by op id)."""
        return sorted((o for f in forks for o in self.fork_ops(f)), key=lambda o: o.op_id)

    def export(self, fid: int, seq: int, head: bytes, block: int) -> ExportView:
        """The `ModelExported` event of fork `fid` at op `seq` in block `block` with head `head`."""
        for e in reversed(self._events(block, block, "ModelExported")):
            a = e.args
            if a["userModelId"] == fid and a["opCount"] == seq and a["headOpHash"] == head:
                return ExportView(fid, seq, a["stateCid"], a["headOpHash"], a["stateCommitment"], e.block)
        raise ChainBroken(f"fork {fid}: no ModelExported event at op {seq} in block {block}, where the ledger says it is")
