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
from ml.ledger.blocksig import (BlockKeyMismatch, BlockSignatureInvalid, BlockSignatureMissing, BlockSigningKey,
                                key_hash, verify_block)
from ml.ledger.crypto import BlobContext, BlobKey, ForkKey, UserKey
from ml.ledger.errors import BaseModelMismatch, ChainBroken, DeltaHashMismatch, StateMismatch
from ml.ledger.ophash import BlockTree, OpFields, genesis_hash, op_hash, verify_proof
from ml.ledger.rebuild import Rebuilt, RecordedOp, check_export, rebuild
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

    def lineage(self, fid: int) -> list[ForkView]:
        """Fork `fid` and its ancestors, oldest first: [generation 1 (a fork of the base), ..., fid]."""
        out = [self.fork(fid)]
        while out[0].parent_id != 0:
            out.insert(0, self.fork(out[0].parent_id))
        return out

    def export_at(self, fid: int, seq: int) -> ExportView | None:
        """Fork `fid`'s export at op `seq` (None if it exported none there)."""
        point = read(self.chain, self.c.functions.exportAt(fid, seq))
        if point.atBlock == 0:
            return None
        return self.log.export(fid, seq, point.headOpHash, point.atBlock)

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
        return None if seq == 0 else self.export_at(fid, seq)

    # -- ML-DSA block signatures --------------------------------------------------------
    def block_key(self, account: str, store: ContentStore) -> bytes | None:
        """`account`'s registered ML-DSA-65 public key, fetched from the store and checked against the
        hash on chain (None if it registered none)."""
        k = read(self.chain, self.c.functions.blockKeyOf(account))
        if k.keyHash == b"\0" * 32:
            return None
        evs = [e for e in self.log.events_at(k.registeredAtBlock, "BlockKeyRegistered") if e.args["account"] == account]
        if not evs:
            raise ChainBroken(f"no BlockKeyRegistered event of {account} in block {k.registeredAtBlock}")
        public_key = store.get(evs[-1].args["keyCid"])
        if key_hash(public_key) != k.keyHash:
            raise BlockKeyMismatch(f"the ML-DSA-65 key of {account} in the store ({evs[-1].args['keyCid']}) does not "
                                   f"hash to the key hash registered on chain (0x{k.keyHash.hex()})")
        return public_key

    def block_signature(self, block_id: int, signer: str, store: ContentStore) -> bytes | None:
        """`signer`'s latest published signature of block `block_id` (None if it published none)."""
        at = self.chain.call(self.c.functions.blockSignatureAt(block_id, signer))
        if at == 0:
            return None
        evs = [e for e in self.log.events_at(at, "BlockSigned")
               if e.args["blockId"] == block_id and e.args["signer"] == signer]
        if not evs:
            raise ChainBroken(f"no BlockSigned event of {signer} for block {block_id} in block {at}")
        return store.get(evs[-1].args["signatureCid"])

    def blocks_of(self, ops: list[OpView]) -> dict[int, list[OpView]]:
        """The sealed blocks holding `ops`, each with the ops of `ops` it holds."""
        sealed = self.chain.call(self.c.functions.sealedOpCount())
        out: dict[int, list[OpView]] = {}
        last: tuple[int, int, int] | None = None  # (block, first op id, op count)
        for op in ops:
            if op.op_id > sealed:
                continue
            if last is None or not last[1] <= op.op_id < last[1] + last[2]:
                b = self.chain.call(self.c.functions.blockOfOp(op.op_id))
                blk = read(self.chain, self.c.functions.getBlock(b))
                last = (b, blk.firstOpId, blk.opCount)
            out.setdefault(last[0], []).append(op)
        return out

    def check_block_signatures(self, ops: list[OpView], owner: str, store: ContentStore) -> dict:
        """Every sealed block holding `ops` must carry a valid ML-DSA-65 signature of its root by
        `owner`'s registered key; raises naming the first block (and its ops) that does not."""
        public_key = self.block_key(owner, store)
        blocks = self.blocks_of(ops)
        if public_key is None:
            return {"block_key": "none registered by the owner", "blocks_signed": 0, "blocks": len(blocks)}
        for b, held in blocks.items():
            root = read(self.chain, self.c.functions.getBlock(b)).root
            names = ", ".join(f"op {o.op_id} (seq {o.seq})" for o in held)
            sig = self.block_signature(b, owner, store)
            if sig is None:
                raise BlockSignatureMissing(f"block {b} (holding {names}) has no ML-DSA-65 signature by the fork owner "
                                            f"{owner}: run `loyal ledger sign --fork {held[0].user_model_id}`")
            if not verify_block(public_key, sig, self.chain.chain_id, self.address, b, root):
                raise BlockSignatureInvalid(f"block {b} (holding {names}): the signature published by {owner} does "
                                            "not verify under its registered ML-DSA-65 key")
        return {"block_key": "0x" + key_hash(public_key).hex(), "blocks_signed": len(blocks), "blocks": len(blocks)}

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

    def __init__(self, chain: Chain, signer: LocalAccount, store: ContentStore, key: UserKey | None, home: Path,
                 block_key: BlockSigningKey | None = None):
        self.chain = chain
        self.ledger = Ledger(chain)
        self.signer = signer
        self.store = store
        self._key = key
        self._block_key = block_key
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

    @property
    def block_key(self) -> BlockSigningKey:
        if self._block_key is None:
            raise ConfigError("this command needs the signer's ML-DSA-65 block-signing key "
                              "(create one with `loyal ledger keygen`)")
        return self._block_key

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

    def fork_from(self, parent_id: int, parent_seq: int) -> int:
        """Fork fork `parent_id` at its op `parent_seq` (which the parent exported); generation parent + 1."""
        receipt = self.chain.transact(self.signer, self.c.functions.forkFromExport(parent_id, parent_seq))
        return [e for e in self.chain.decode_events(receipt) if e.name == "ModelForked"][0].args["userModelId"]

    # -- fork keys ---------------------------------------------------------------------------
    def _shared_key_path(self, fid: int) -> Path:
        return self.home / "fork-keys" / f"{self.chain.chain_id}-{self.ledger.address.lower()}-{fid}.key"

    def fork_key(self, fid: int) -> BlobKey:
        """The key of fork `fid`'s deltas and states: one another owner shared with this agent
        (`add_fork_key`), else the one derived from this user's master key."""
        shared = self._shared_key_path(fid)
        if shared.is_file():
            return ForkKey.load(shared)
        return self.key.fork_key(self.chain.chain_id, self.ledger.address, fid)

    def share_fork_key(self, fid: int) -> ForkKey:
        """The key of the signer's fork `fid`, to give someone who may fork, evaluate or verify it. It
        opens that fork's deltas and states (all of them, later ones too) and nothing else: not its
        interactions, not the owner's other forks."""
        f = self.ledger.fork(fid)
        if f.owner != self.signer.address:
            raise NotYourFork(f"fork {fid} belongs to {f.owner}: only its owner shares its key")
        return self.key.fork_key(self.chain.chain_id, self.ledger.address, fid)

    def add_fork_key(self, fid: int, key: ForkKey) -> None:
        """Keep a fork key another owner shared, after checking it opens the fork's first delta."""
        f = self.ledger.fork(fid)
        if f.op_count == 0:
            raise ConfigError(f"fork {fid} has no ops yet: nothing to check its key against")
        op = self.ledger.fork_ops(fid, f)[0]
        delta = key.decrypt(self.store.get(op.delta_cid), self._ctx("delta", fid, 1))  # DecryptionFailed if not its key
        if key.commitment("delta", delta) != op.delta_commitment:
            raise DeltaHashMismatch(f"the key opens fork {fid}'s first delta but its commitment does not match")
        path = self._shared_key_path(fid)
        if path.is_file():
            if ForkKey.load(path).commitment("check", b"") == key.commitment("check", b""):
                return
            path.unlink()  # the checked key replaces one that did not open the fork
        key.save(path)

    def check_recorder(self, fid: int) -> ForkView:
        f = self.ledger.fork(fid)  # UnknownFork if absent
        if not self.chain.call(self.c.functions.isRecorder(fid, self.signer.address)):
            raise NotYourFork(f"fork {fid} belongs to {f.owner}; {self.signer.address} may not record on it")
        return f

    # -- state ---------------------------------------------------------------------------
    def _cache(self, fid: int) -> Path:
        return self.home / "forks" / f"{self.chain.chain_id}-{self.ledger.address.lower()}-{fid}"

    def initial_state(self, f: ForkView) -> bytes | None:
        """The state fork `f` starts from: None for a fork of the base model; for a fork of a fork,
        the parent's exported state at the fork point (opened with the parent's fork key and checked
        against the state commitment the export proved on chain)."""
        if f.parent_id == 0:
            return None
        export = self.ledger.export_at(f.parent_id, f.parent_seq)
        if export is None:
            raise ChainBroken(f"fork {f.user_model_id}'s parent {f.parent_id} has no export at op {f.parent_seq}")
        pkey = self.fork_key(f.parent_id)
        state = pkey.decrypt(self.store.get(export.state_cid), self._ctx("state", f.parent_id, f.parent_seq))
        if pkey.commitment("state", state) != export.state_commitment:
            raise StateMismatch(f"fork {f.parent_id}'s export at op {f.parent_seq} does not match its state commitment")
        return state

    def current_state(self, fid: int, f: ForkView | None = None) -> bytes | None:
        """Canonical bytes of the fork's state at its chain head (before the first op: its initial
        state, None for a fork of the base model).

        From the local cache when it is at the chain head, else rebuilt (and checked) from the chain.
        """
        f = f or self.ledger.fork(fid)
        if f.op_count == 0:
            return self.initial_state(f)
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

    def state_at(self, fid: int, seq: int) -> bytes | None:
        """Canonical bytes of fork `fid`'s state after its op `seq` (0: its initial state), folded from
        its deltas and checked against their commitments (needs the fork's key, and its parent's)."""
        f = self.ledger.fork(fid)
        if not 0 <= seq <= f.op_count:
            raise ConfigError(f"fork {fid} has ops 1..{f.op_count}, not {seq}")
        initial = self.initial_state(f)
        if seq == 0:
            return initial
        ops = self.ledger.fork_ops(fid, f)[:seq]
        return rebuild(self.chain.chain_id, self.ledger.address, f.genesis,
                       [RecordedOp(o.op_id, o.fields(), o.op_hash) for o in ops], self.store.get, self.fork_key(fid),
                       initial=initial).state

    def _check_genesis(self, f: ForkView, parent_op_hash: bytes) -> None:
        genesis = genesis_hash(self.chain.chain_id, self.ledger.address, f.user_model_id, f.base_model_id,
                               self.ledger.base_cid(f.base_model_id), f.owner, f.parent_id, f.parent_seq,
                               parent_op_hash, f.generation)
        if genesis != f.genesis:
            raise ChainBroken(f"fork {f.user_model_id}: genesis on chain does not match its base model, owner and parent")

    def _rebuild(self, fid: int, f: ForkView, ops: list[OpView] | None = None):
        """The fork's state at its head, from its initial state (the parent's checked export) and its deltas."""
        ops = self.ledger.fork_ops(fid, f) if ops is None else ops
        parent_op_hash = b"\0" * 32
        if f.parent_id:
            parent_op_hash = read(self.chain, self.c.functions.exportAt(f.parent_id, f.parent_seq)).headOpHash
        self._check_genesis(f, parent_op_hash)
        recorded = [RecordedOp(o.op_id, o.fields(), o.op_hash) for o in ops]
        return rebuild(self.chain.chain_id, self.ledger.address, f.genesis, recorded, self.store.get, self.fork_key(fid),
                       initial=self.initial_state(f))

    def rebuild_lineage(self, fid: int) -> tuple[Rebuilt, list[dict], list[tuple[ForkView, list[OpView]]]]:
        """Rebuild fork `fid` from the base model: every ancestor's deltas up to the op its child
        forked at, checking at each fork point that the parent's export is the rebuilt state byte
        for byte, then the fork's own deltas. Needs the fork key of every generation. Returns the
        fork's rebuilt state, a report per generation and the ops used per generation."""
        lineage = self.ledger.lineage(fid)
        state: bytes | None = None
        parent_op_hash = b"\0" * 32
        report, used_ops = [], []
        for i, g in enumerate(lineage):
            self._check_genesis(g, parent_op_hash)
            ops = self.ledger.fork_ops(g.user_model_id, g)
            cut = lineage[i + 1].parent_seq if i + 1 < len(lineage) else len(ops)
            used = ops[:cut]
            key = self.fork_key(g.user_model_id)
            rebuilt = rebuild(self.chain.chain_id, self.ledger.address, g.genesis,
                              [RecordedOp(o.op_id, o.fields(), o.op_hash) for o in used], self.store.get, key,
                              initial=state)
            if i + 1 < len(lineage):  # the child starts from this export: it must be the rebuilt state
                export = self.ledger.export_at(g.user_model_id, cut)
                check_export(rebuilt, self.store.get(export.state_cid), self.chain.chain_id, self.ledger.address,
                             g.user_model_id, key, export.head_op_hash, cut)
            report.append({"fork": g.user_model_id, "generation": g.generation, "owner": g.owner,
                           "parent": g.parent_id, "parent_seq": g.parent_seq, "ops_used": cut,
                           "head_used": "0x" + rebuilt.head.hex()})
            used_ops.append((g, used))
            state, parent_op_hash = rebuilt.state, rebuilt.head
        return rebuilt, report, used_ops

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
            fkey = self.fork_key(fid)
            ikey = self.key.interaction_key(self.chain.chain_id, self.ledger.address, fid)
            iblob = ikey.encrypt(record, self._ctx("interaction", fid, seq))
            dblob = fkey.encrypt(step.delta, self._ctx("delta", fid, seq))
            icid, dcid = cid_of(iblob), cid_of(dblob)
            fields = OpFields(fid, seq, f.head, icid, dcid, fkey.commitment("delta", step.delta),
                              fkey.commitment("state", step.state))
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

    # -- ML-DSA block signatures -------------------------------------------------------------
    def register_block_key(self) -> str:
        """Put the signer's ML-DSA-65 public key in the store and bind its hash on chain (once)."""
        pk = self.block_key.public_key
        cid = self.store.put(pk)
        stored = self.store.get(cid)
        if key_hash(stored) != key_hash(pk):
            raise BlockKeyMismatch(f"the store returned a key for {cid} that does not hash to the signer's key")
        self.chain.transact(self.signer, self.c.functions.registerBlockKey(key_hash(pk), cid))
        return cid

    def sign_blocks(self, fid: int) -> list[int]:
        """Sign the root of every sealed block holding ops of the signer's fork `fid` that has no
        valid signature by the signer yet. Before signing a block, checks each of the fork's ops in
        it is the key holder's own (its delta blob opens under the fork's key and matches its
        commitment), and that the signature verifies under the key registered on chain; nothing is
        published otherwise. Returns the blocks signed."""
        f = self.ledger.fork(fid)
        if f.owner != self.signer.address:
            raise NotYourFork(f"fork {fid} belongs to {f.owner}: only its owner signs its blocks")
        registered = read(self.chain, self.c.functions.blockKeyOf(self.signer.address)).keyHash
        if registered == b"\0" * 32:
            raise ConfigError(f"{self.signer.address} has no ML-DSA-65 key on chain: run `loyal ledger register-key`")
        if registered != self.block_key.key_hash:
            raise BlockKeyMismatch(f"the local ML-DSA-65 key hashes to 0x{self.block_key.key_hash.hex()}, but "
                                   f"{self.signer.address} registered 0x{registered.hex()}")
        signed = []
        for b, held in self.ledger.blocks_of(self.ledger.fork_ops(fid, f)).items():
            root = read(self.chain, self.c.functions.getBlock(b)).root
            old = self.ledger.block_signature(b, self.signer.address, self.store)
            if old is not None and verify_block(self.block_key.public_key, old, self.chain.chain_id, self.ledger.address,
                                                b, root):
                continue
            fkey = self.fork_key(fid)
            for op in held:  # never vouch for an op this key did not make
                blob = self.store.get(op.delta_cid)
                delta = fkey.decrypt(blob, self._ctx("delta", fid, op.seq))
                if fkey.commitment("delta", delta) != op.delta_commitment:
                    raise DeltaHashMismatch(f"op {op.op_id} (seq {op.seq}) in block {b}: its delta does not match its "
                                            "commitment; refusing to sign the block")
            sig = self.block_key.sign_block(self.chain.chain_id, self.ledger.address, b, root)
            if not verify_block(self.block_key.public_key, sig, self.chain.chain_id, self.ledger.address, b, root):
                raise BlockSignatureInvalid(f"block {b}: the new signature does not verify; nothing published")
            self.chain.transact(self.signer, self.c.functions.submitBlockSignature(b, self.store.put(sig)))
            signed.append(b)
        return signed

    # -- export, verify, claim -------------------------------------------------------------
    def export(self, fid: int) -> ExportResult:
        """Encrypt the state at the head, store it and publish its CID on chain."""
        f = self.check_recorder(fid)
        state = self.current_state(fid, f)
        if state is None:
            raise StateMismatch(f"fork {fid} has no ops yet: nothing to export")
        head = self.ledger.fork_ops(fid, f)[-1]
        cid = self.store.put(self.fork_key(fid).encrypt(state, self._ctx("state", fid, f.op_count)))
        self.chain.transact(self.signer, self.c.functions.exportModel(fid, cid, fields_arg(head)))
        return ExportResult(cid, f.head, f.op_count)

    def verify(self, fid: int) -> dict:
        """Rebuild the fork's adapter from the base model (through every ancestor, for a fork of a
        fork) and check it equals its latest export byte for byte; check every op's Merkle proof and
        every block signature of every generation's owner."""
        f = self.ledger.fork(fid)
        rebuilt, generations, used = self.rebuild_lineage(fid)
        export = self.ledger.latest_export(fid)
        if export is None:
            raise StateMismatch(f"fork {fid} has no export to check against (run `loyal ledger export`)")
        check_export(rebuilt, self.store.get(export.state_cid), self.chain.chain_id, self.ledger.address, fid,
                     self.fork_key(fid), export.head_op_hash, export.seq)
        proven, signed, blocks = 0, 0, 0
        for g, ops in used:
            proven += self.ledger.proven_ops(ops)
            sig = self.ledger.check_block_signatures(ops, g.owner, self.store)
            signed, blocks = signed + sig["blocks_signed"], blocks + sig["blocks"]
            if g.user_model_id == fid:
                key_report = sig["block_key"]
        return {"fork": fid, "generation": f.generation, "ops": rebuilt.ops, "head": "0x" + rebuilt.head.hex(),
                "state_cid": export.state_cid, "state_bytes": len(rebuilt.state),
                "lineage_ops": sum(len(o) for _, o in used), "sealed_ops_proven": proven, "block_key": key_report,
                "blocks_signed": signed, "blocks": blocks, "lineage": generations, "ok": True}
