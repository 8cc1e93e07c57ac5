"""Rebuild a fork's adapter from its recorded ops and check every link, byte for byte.

Given the fork's ops in chain order (as recorded on chain), a blob fetcher and the user's key:
1. each op links to the previous op hash (genesis for the first) and its op hash matches its fields;
2. each delta blob is fetched by CID (the store checks the content hash), decrypted with AES-GCM under
   the op's context, parsed as canonical safetensors, and its keyed commitment equals the recorded
   delta commitment;
3. the fold of the deltas after each op has the recorded state commitment;
4. the exported state blob decrypts to exactly the bytes of the final fold.
Only the key holder can run steps 2-4; anyone can run step 1 (and the Merkle inclusion proofs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import tensors
from .crypto import BlobContext, BlobKey
from .errors import ChainBroken, DeltaHashMismatch, StateMismatch
from .ophash import OpFields, op_hash


@dataclass(frozen=True)
class RecordedOp:
    op_id: int
    fields: OpFields
    op_hash: bytes


@dataclass(frozen=True)
class Rebuilt:
    state: bytes  # canonical bytes of the rebuilt adapter
    head: bytes  # op hash of the last op
    ops: int


def check_chain(chain_id: int, ledger: str, genesis: bytes, ops: list[RecordedOp]) -> bytes:
    """Check links and op hashes; returns the head hash. Needs no key."""
    prev = genesis
    for i, op in enumerate(ops, start=1):
        f = op.fields
        if f.seq != i:
            raise ChainBroken(f"op {op.op_id}: sequence {f.seq}, expected {i}")
        if f.prev_op_hash != prev:
            raise ChainBroken(f"op {op.op_id} (seq {i}) does not link to the previous op hash")
        if op_hash(chain_id, ledger, f) != op.op_hash:
            raise ChainBroken(f"op {op.op_id} (seq {i}): op hash does not match its recorded fields")
        prev = op.op_hash
    return prev


def rebuild(chain_id: int, ledger: str, genesis: bytes, ops: list[RecordedOp],
            fetch: Callable[[str], bytes], key: BlobKey, initial: bytes | None = None) -> Rebuilt:
    """Fold the fork's deltas onto `initial` (canonical bytes of the state the fork started from:
    None for a fork of the base model, the parent's state at the fork point for a fork of a fork),
    checking every commitment on the way. `key` is the fork's key."""
    if not ops:
        raise StateMismatch("the fork has no ops to rebuild")
    head = check_chain(chain_id, ledger, genesis, ops)
    state: tensors.State = tensors.from_bytes(initial) if initial is not None else {}
    for op in ops:
        f = op.fields
        ctx = BlobContext("delta", chain_id, ledger, f.user_model_id, f.seq)
        delta_bytes = key.decrypt(fetch(f.delta_cid), ctx)
        if key.commitment("delta", delta_bytes) != f.delta_commitment:
            raise DeltaHashMismatch(f"op {op.op_id} (seq {f.seq}): delta does not match its recorded commitment")
        state = tensors.fold(state, tensors.from_bytes(delta_bytes))
        if key.commitment("state", tensors.to_bytes(state)) != f.state_commitment:
            raise StateMismatch(f"op {op.op_id} (seq {f.seq}): folded state does not match its recorded commitment")
    return Rebuilt(tensors.to_bytes(state), head, len(ops))


def check_export(rebuilt: Rebuilt, export_blob: bytes, chain_id: int, ledger: str, user_model_id: int,
                 key: BlobKey, export_head: bytes, export_ops: int) -> None:
    """The exported state must be the rebuilt state, byte for byte, at the same head."""
    if export_head != rebuilt.head or export_ops != rebuilt.ops:
        raise StateMismatch(f"export is at op {export_ops}, the chain rebuilt to op {rebuilt.ops}")
    exported = key.decrypt(export_blob, BlobContext("state", chain_id, ledger, user_model_id, export_ops))
    if exported != rebuilt.state:
        raise StateMismatch("exported adapter bytes differ from the adapter rebuilt from the deltas")
