"""A user's ledger agent: fork a base model, record one training op per interaction, export, verify, claim.

What leaves the user's machine: AES-GCM ciphertexts (to the content store) and CIDs, keyed
commitments and op hashes (to the chain). The key and plaintext adapter stay local; the agent keeps a
plaintext cache of its own fork's latest state under `home` so it need not rebuild on every call.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount

from eth_utils import keccak

from agents.core.chain import Chain
from agents.core.store import ContentStore, cid_of
from agents.core.views import read, record_as
from common.errors import ConfigError, LoyalError
from ml.ledger import tensors
from ml.ledger.crypto import BlobContext, UserKey
from ml.ledger.errors import BaseModelMismatch, ChainBroken, StateMismatch
from ml.ledger.ophash import BlockTree, OpFields, genesis_hash, op_hash, verify_proof
from ml.ledger.rebuild import RecordedOp, check_export, rebuild
from ml.ledger.trainer import ForkTrainer, Interaction, base_weights_bytes

from .oplog import ExportView, ForkView, OpLog, OpView

PAGE = 100  # TrainingLedger.MAX_PAGE (op hashes per getOpHashes call)


class NotYourFork(LoyalError):
    """The signer is neither the owner of the fork nor a recorder it authorised."""


@dataclass(frozen=True)
class TrainResult:
    op_id: int
    seq: int
    op_hash: bytes
    interaction_cid: str
    delta_cid: str
    loss: float
    gas_used: int


@dataclass(frozen=True)
class ExportResult:
    state_cid: str
    head: bytes
    op_count: int


def fields_arg(op: OpView) -> tuple:
    """The contract's `OpFields` of `op` (what exportModel and claims show to name an op)."""
    return (op.prev_op_hash, keccak(op.interaction_cid.encode()), keccak(op.delta_cid.encode()), op.delta_commitment,
            op.state_commitment)


class Ledger:
    """Read side of TrainingLedger (storage by view, history from events) plus sealing, which anyone may do."""

    def __init__(self, chain: Chain):
        self.chain = chain
        self.c = chain.contract("TrainingLedger")
        self.log = OpLog(chain)

    @property
    def address(self) -> str:
        return self.c.address

    def fork(self, fid: int) -> ForkView:
        return record_as(ForkView, read(self.chain, self.c.functions.getFork(fid)), user_model_id=fid)

    def op_hash(self, op_id: int) -> bytes:
        return bytes(self.chain.call(self.c.functions.opHashOf(op_id)))

    def base_cid(self, base_id: int) -> str:
        return read(self.chain, self.c.functions.baseModel(base_id)).cid

    def fork_ops(self, fid: int, f: ForkView | None = None) -> list[OpView]:
        """Every op of fork `fid`, in seq order (from its events; see oplog.py)."""
        return self.log.fork_ops(f or self.fork(fid))

    def forks_of(self, user: str) -> list[int]:
        return list(self.chain.call(self.c.functions.forksOf(user)))

    def history(self, user: str, offset: int = 0, limit: int = PAGE) -> tuple[list[OpView], int]:
        """A page of the ops on `user`'s forks, oldest first, and how many there are in all."""
        if offset < 0 or limit < 1:
            raise ConfigError(f"a history page needs offset >= 0 and limit >= 1 (got {offset}, {limit})")
        ops = self.log.user_ops([self.fork(i) for i in self.forks_of(user)])
        return ops[offset:offset + limit], len(ops)

    def latest_export(self, fid: int) -> ExportView | None:
        seq = self.chain.call(self.c.functions.latestExportSeq(fid))
        if seq == 0:
            return None
        point = read(self.chain, self.c.functions.exportAt(fid, seq))
        return self.log.export(fid, seq, point.headOpHash, point.atBlock)

    def seal_all(self, signer: LocalAccount) -> list[tuple[int, dict]]:
        """Seal every pending op (one bounded batch per transaction); returns (blockId, receipt) pairs."""
        out = []
        while self.chain.call(self.c.functions.sealedOpCount()) < read(self.chain, self.c.functions.counts()).ops:
            receipt = self.chain.transact(signer, self.c.functions.sealBlock())
            ev = [e for e in self.chain.decode_events(receipt) if e.name == "BlockSealed"][0]
            out.append((ev.args["blockId"], receipt))
        return out

    def block_tree(self, block_id: int) -> tuple[BlockTree, bytes]:
        block = read(self.chain, self.c.functions.getBlock(block_id))
        hashes = [bytes(h) for h in self.chain.call(self.c.functions.getOpHashes(block.firstOpId, block.opCount))]
        return BlockTree(block.firstOpId, hashes), block.root

    def proven_ops(self, ops: list[OpView]) -> int:
        """Check each sealed op's Merkle proof against its block's stored root (locally and with the
        contract's `verifyOpInclusion`); returns how many were proven."""
        sealed = self.chain.call(self.c.functions.sealedOpCount())
        trees: list[tuple[int, BlockTree, bytes]] = []
        n = 0
        for op in ops:
            if op.op_id > sealed:
                continue
            hit = [t for t in trees if t[1].first_op_id <= op.op_id < t[1].first_op_id + t[1].size]
            if not hit:
                b = self.chain.call(self.c.functions.blockOfOp(op.op_id))
                hit = [(b, *self.block_tree(b))]
                trees += hit
            b, tree, root = hit[0]
            proof = tree.proof(op.op_id)
            if not verify_proof(proof, root, op.op_id, op.op_hash) or not self.chain.call(
                self.c.functions.verifyOpInclusion(b, op.op_id, op.op_hash, proof)
            ):
                raise ChainBroken(f"op {op.op_id} has no valid Merkle proof in block {b}")
            n += 1
        return n


class UserAgent:
    """One user's agent: their signer, their key, the shared content store."""

    def __init__(self, chain: Chain, signer: LocalAccount, store: ContentStore, key: UserKey | None, home: Path):
        self.chain = chain
        self.ledger = Ledger(chain)
        self.signer = signer
        self.store = store
        self._key = key
        self.home = Path(home)
        self._trainers: dict[int, ForkTrainer] = {}

    @property
    def c(self):
        return self.ledger.c

    @property
    def key(self) -> UserKey:
        if self._key is None:
            raise ConfigError("this command needs the user's ledger key (create one with `loyal ledger keygen`)")
        return self._key

    def _ctx(self, kind: str, fid: int, seq: int) -> BlobContext:
        return BlobContext(kind, self.chain.chain_id, self.ledger.address, fid, seq)

    # -- registry and forks ------------------------------------------------------------
    def register_base(self, model, name: str) -> tuple[int, str]:
        """Put the base model's canonical weights in the store and register their CID (REGISTRAR_ROLE)."""
        cid = self.store.put(base_weights_bytes(model))
        receipt = self.chain.transact(self.signer, self.c.functions.registerBaseModel(cid, name))
        ev = [e for e in self.chain.decode_events(receipt) if e.name == "BaseModelRegistered"][0]
        return ev.args["baseModelId"], cid

    def fork(self, base_id: int) -> int:
        receipt = self.chain.transact(self.signer, self.c.functions.forkModel(base_id))
        return [e for e in self.chain.decode_events(receipt) if e.name == "ModelForked"][0].args["userModelId"]

    def check_recorder(self, fid: int) -> ForkView:
        f = self.ledger.fork(fid)  # UnknownFork if absent
        if not self.chain.call(self.c.functions.isRecorder(fid, self.signer.address)):
            raise NotYourFork(f"fork {fid} belongs to {f.owner}; {self.signer.address} may not record on it")
        return f

    # -- state ---------------------------------------------------------------------------
    def _cache(self, fid: int) -> Path:
        return self.home / "forks" / f"{self.chain.chain_id}-{self.ledger.address.lower()}-{fid}"

    def current_state(self, fid: int, f: ForkView | None = None) -> bytes | None:
        """Canonical bytes of the fork's state at its chain head (None before the first op).

        From the local cache when it is at the chain head, else rebuilt (and checked) from the chain.
        """
        f = f or self.ledger.fork(fid)
        if f.op_count == 0:
            return None
        cache = self._cache(fid)
        head_file = cache.with_suffix(".head")
        if head_file.is_file() and head_file.read_text().strip() == f.head.hex():
            return cache.with_suffix(".safetensors").read_bytes()
        state = self._rebuild(fid, f).state
        self._save_cache(fid, state, f.head)
        return state

    def _save_cache(self, fid: int, state: bytes, head: bytes) -> None:
        cache = self._cache(fid)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.with_suffix(".safetensors").write_bytes(state)
        cache.with_suffix(".head").write_text(head.hex() + "\n")

    def _rebuild(self, fid: int, f: ForkView, ops: list[OpView] | None = None):
        ops = self.ledger.fork_ops(fid, f) if ops is None else ops
        genesis = genesis_hash(self.chain.chain_id, self.ledger.address, fid, f.base_model_id,
                               self.ledger.base_cid(f.base_model_id), f.owner)
        if genesis != f.genesis:
            raise ChainBroken(f"fork {fid}: genesis on chain does not match its base model and owner")
        recorded = [RecordedOp(o.op_id, o.fields(), o.op_hash) for o in ops]
        return rebuild(self.chain.chain_id, self.ledger.address, f.genesis, recorded, self.store.get, self.key)

    def attach(self, fid: int, model, tokenizer, **trainer_kw) -> ForkTrainer:
        """Wrap `model` (the fork's base model) in a LoRA trainer positioned at the fork's head."""
        f = self.ledger.fork(fid)
        registered = self.ledger.base_cid(f.base_model_id)
        actual = cid_of(base_weights_bytes(model))
        if actual != registered:
            raise BaseModelMismatch(f"model weights hash to {actual}, fork {fid}'s base model is {registered}")
        trainer = ForkTrainer(model, tokenizer, **trainer_kw)
        state = self.current_state(fid, f)
        if state is not None:
            trainer.load_state(state)
        self._trainers[fid] = trainer
        return trainer

    # -- recording -----------------------------------------------------------------------
    def train(self, fid: int, interaction: Interaction) -> TrainResult:
        """One SFT step on `interaction`, recorded as one op (needs `attach` first)."""
        f = self.check_recorder(fid)
        trainer = self._trainers.get(fid)
        if trainer is None:
            raise LoyalError(f"no model attached to fork {fid}: call attach(fork, model, tokenizer) first")
        current = self.current_state(fid, f)
        if current != (tensors.to_bytes(trainer.state) if trainer.state else None):
            if current is None:
                raise LoyalError(f"fork {fid} has no ops on chain but the attached trainer has state: attach again")
            trainer.load_state(current)  # another recorder of this fork advanced it
        snap = trainer.snapshot()
        step = trainer.step(interaction)
        seq = f.op_count + 1
        record = json.dumps({"prompt": interaction.prompt, "response": interaction.response,
                             "feedback": interaction.feedback}, sort_keys=True, separators=(",", ":")).encode()
        try:
            iblob = self.key.encrypt(record, self._ctx("interaction", fid, seq))
            dblob = self.key.encrypt(step.delta, self._ctx("delta", fid, seq))
            icid, dcid = cid_of(iblob), cid_of(dblob)
            fields = OpFields(fid, seq, f.head, icid, dcid, self.key.commitment("delta", step.delta),
                              self.key.commitment("state", step.state))
            h = op_hash(self.chain.chain_id, self.ledger.address, fields)
            fn = self.c.functions.recordTraining(fid, icid, dcid, fields.delta_commitment, fields.state_commitment, h)
            self.chain.call(fn, sender=self.signer.address)  # a refused op raises here, before the store is touched
            if self.store.put(iblob) != icid or self.store.put(dblob) != dcid:
                raise LoyalError("content store returned a CID other than the blob's own")
            receipt = self.chain.transact(self.signer, fn)
        except BaseException:
            trainer.restore(snap)
            raise
        ev = [e for e in self.chain.decode_events(receipt) if e.name == "TrainingRecorded"][0]
        self._save_cache(fid, step.state, h)
        return TrainResult(ev.args["opId"], seq, h, icid, dcid, step.loss, receipt["gasUsed"])

    # -- export, verify, claim -------------------------------------------------------------
    def export(self, fid: int) -> ExportResult:
        """Encrypt the state at the head, store it and publish its CID on chain."""
        f = self.check_recorder(fid)
        state = self.current_state(fid, f)
        if state is None:
            raise StateMismatch(f"fork {fid} has no ops yet: nothing to export")
        head = self.ledger.fork_ops(fid, f)[-1]
        cid = self.store.put(self.key.encrypt(state, self._ctx("state", fid, f.op_count)))
        self.chain.transact(self.signer, self.c.functions.exportModel(fid, cid, fields_arg(head)))
        return ExportResult(cid, f.head, f.op_count)

    def verify(self, fid: int) -> dict:
        """Rebuild the adapter from the recorded deltas and check it equals the export byte for byte."""
        f = self.ledger.fork(fid)
        ops = self.ledger.fork_ops(fid, f)
        rebuilt = self._rebuild(fid, f, ops)
        export = self.ledger.latest_export(fid)
        if export is None:
            raise StateMismatch(f"fork {fid} has no export to check against (run `loyal ledger export`)")
        check_export(rebuilt, self.store.get(export.state_cid), self.chain.chain_id, self.ledger.address, fid, self.key,
                     export.head_op_hash, export.seq)
        proven = self.ledger.proven_ops(ops)
        return {"fork": fid, "ops": rebuilt.ops, "head": "0x" + rebuilt.head.hex(), "state_cid": export.state_cid,
                "state_bytes": len(rebuilt.state), "sealed_ops_proven": proven, "ok": True}

    def claimable(self, fid: int) -> list[OpView]:
        """The fork's sealed ops not yet paid, in seq order."""
        sealed = self.chain.call(self.c.functions.sealedOpCount())
        paid = self.chain.call(self.c.functions.rewardedThroughSeq(fid))
        return [o for o in self.ledger.fork_ops(fid) if o.seq > paid and o.op_id <= sealed]

    def claim(self, fid: int) -> int:
        """Claim the reward of every sealed, unpaid op of the fork (one transaction); returns tokens paid."""
        owner = self.ledger.fork(fid).owner
        if owner != self.signer.address:
            raise NotYourFork(f"fork {fid} belongs to {owner}: only its owner claims its rewards")
        ops = self.claimable(fid)
        if not ops:
            return 0
        last = ops[-1]
        receipt = self.chain.transact(self.signer, self.c.functions.claimTrainingRewards(
            fid, last.op_id, last.seq, fields_arg(last)))
        return [e for e in self.chain.decode_events(receipt) if e.name == "TrainingRewardsClaimed"][0].args["amount"]
