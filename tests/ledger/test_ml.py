"""Adapter deltas, the fold, encryption and the rebuild check, without a chain."""
from __future__ import annotations

import hashlib

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ml.ledger import tensors
from ml.ledger.crypto import BlobContext, UserKey
from ml.ledger.errors import ChainBroken, DecryptionFailed, DeltaHashMismatch, NonCanonicalTensors, StateMismatch
from ml.ledger.ophash import OpFields, op_hash
from ml.ledger.rebuild import RecordedOp, check_export, rebuild
from ml.ledger.trainer import Interaction

LEDGER = "0x00000000000000000000000000000000000000AA"
GENESIS = b"\x11" * 32


def test_canonical_bytes_independent_of_insertion_order():
    a = {"b": torch.ones(3), "a": torch.arange(4.0).reshape(2, 2)}
    b = {"a": torch.arange(4.0).reshape(2, 2), "b": torch.ones(3)}
    assert tensors.to_bytes(a) == tensors.to_bytes(b)
    assert tensors.to_bytes(tensors.from_bytes(tensors.to_bytes(a))) == tensors.to_bytes(a)


def test_canonical_bytes_are_valid_safetensors():
    state = {"z.lora_B": torch.randn(8, 4), "a.lora_A": torch.randn(4, 8), "m": torch.randn(3)}
    data = tensors.to_bytes(state)
    assert data == st_save({k: state[k] for k in sorted(state)}), "same bytes as the safetensors writer today"
    back = st_load(data)
    assert all(torch.equal(back[k], state[k]) for k in state)


@pytest.mark.parametrize(
    "blob",
    [
        st_save({"a": torch.ones(2)}, metadata={"x": "y"}),  # metadata
        st_save({"a": torch.ones(2, dtype=torch.float64)}),  # other dtype
        b"not safetensors",
    ],
)
def test_non_canonical_bytes_rejected(blob):
    with pytest.raises(NonCanonicalTensors):
        tensors.from_bytes(blob)


def test_fold_is_elementwise_float32_sum():
    s = {"w": torch.tensor([1.0, 2.0])}
    d = {"w": torch.tensor([0.5, -2.0])}
    assert torch.equal(tensors.fold(s, d)["w"], torch.tensor([1.5, 0.0]))
    assert torch.equal(tensors.fold({}, d)["w"], d["w"])
    with pytest.raises(NonCanonicalTensors):
        tensors.fold(s, {"v": torch.ones(2)})


def test_training_steps_fold_to_trainer_state(trainer):
    it = Interaction("what is loyal?", "community owned ai")
    state, losses = {}, []
    for _ in range(6):
        step = trainer.step(it)
        state = tensors.fold(state, tensors.from_bytes(step.delta))
        assert tensors.to_bytes(state) == step.state, "fold of deltas is the trainer's state, byte for byte"
        losses.append(step.loss)
    assert losses[-1] < losses[0], "real SFT steps lower the loss on the interaction"
    assert all("lora_" in name for name in state), "only adapter tensors are trained and recorded"


def test_any_causal_lm_llama_architecture(tmp_path):
    """SmolLM2's architecture (Llama) works with peft's default LoRA targets and the same fold."""
    from ml.ledger.base import load_base
    from ml.ledger.trainer import ForkTrainer
    from ml.ledger.tiny import make_tiny_lm

    model, tok = load_base(make_tiny_lm(tmp_path / "llama", arch="llama"))
    tr = ForkTrainer(model, tok, lr=0.5, seed=0)
    state, losses = {}, []
    for _ in range(4):
        step = tr.step(Interaction("q", "a longer answer"))
        state = tensors.fold(state, tensors.from_bytes(step.delta))
        assert tensors.to_bytes(state) == step.state
        losses.append(step.loss)
    assert any("q_proj.lora_A" in n for n in state) and any("v_proj.lora_B" in n for n in state)
    assert losses[-1] < losses[0]


def test_feedback_is_the_training_target(tiny_lm_dir):
    from ml.ledger.base import load_base
    from ml.ledger.trainer import ForkTrainer

    deltas = []
    for fb in (None, "a corrected answer"):
        model, tok = load_base(tiny_lm_dir)
        tr = ForkTrainer(model, tok, lr=0.5, seed=0)
        deltas.append(tr.step(Interaction("q", "an answer", fb)).delta)
    assert deltas[0] != deltas[1]


def test_resumed_trainer_continues_identically(tiny_lm_dir):
    from ml.ledger.base import load_base
    from ml.ledger.trainer import ForkTrainer

    its = [Interaction(f"prompt {i}", f"response {i}") for i in range(3)]
    model, tok = load_base(tiny_lm_dir)
    a = ForkTrainer(model, tok, lr=0.5, seed=0)
    steps = [a.step(it) for it in its]
    model, tok = load_base(tiny_lm_dir)
    b = ForkTrainer(model, tok, lr=0.5, seed=0)
    b.load_state(steps[1].state)
    assert b.step(its[2]).delta == steps[2].delta


def test_aes_gcm_binds_key_and_context():
    key, other = UserKey.generate(), UserKey.generate()
    ctx = BlobContext("delta", 31337, LEDGER, 1, 1)
    blob = key.encrypt(b"adapter bytes", ctx)
    assert b"adapter bytes" not in blob
    assert key.decrypt(blob, ctx) == b"adapter bytes"
    assert key.encrypt(b"adapter bytes", ctx)[4:16] != blob[4:16], "fresh random nonce per blob"
    with pytest.raises(DecryptionFailed):
        other.decrypt(blob, ctx)
    with pytest.raises(DecryptionFailed):
        key.decrypt(blob, BlobContext("delta", 31337, LEDGER, 1, 2))  # moved to another op
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(DecryptionFailed):
        key.decrypt(bytes(tampered), ctx)


def test_key_file_roundtrip_and_no_overwrite(tmp_path):
    p = tmp_path / "k.key"
    k = UserKey.create_file(p)
    assert oct(p.stat().st_mode & 0o777) == "0o600"
    assert UserKey.load(p).commitment("x", b"1") == k.commitment("x", b"1")
    with pytest.raises(FileExistsError):
        UserKey.create_file(p)


def _record_chain(trainer, key, n, tamper=None):
    """Build n ops in memory (blobs in a dict keyed by sha256) the way the agent does."""
    blobs, ops, prev = {}, [], GENESIS

    def put(b):
        cid = hashlib.sha256(b).hexdigest()
        blobs[cid] = b
        return cid

    for seq in range(1, n + 1):
        step = trainer.step(Interaction(f"p{seq}", f"r{seq}"))
        delta = step.delta
        dc = key.commitment("delta", delta)
        if tamper == seq:
            delta = tensors.to_bytes({k: v + 1 for k, v in tensors.from_bytes(delta).items()})
        dcid = put(key.encrypt(delta, BlobContext("delta", 1, LEDGER, 7, seq)))
        f = OpFields(7, seq, prev, "icid", dcid, dc, key.commitment("state", step.state))
        h = op_hash(1, LEDGER, f)
        ops.append(RecordedOp(seq, f, h))
        prev = h
    return blobs, ops, step.state


def test_rebuild_matches_and_export_checks(trainer):
    key = UserKey.generate()
    blobs, ops, final = _record_chain(trainer, key, 4)
    rebuilt = rebuild(1, LEDGER, GENESIS, ops, blobs.__getitem__, key)
    assert rebuilt.state == final
    export = key.encrypt(final, BlobContext("state", 1, LEDGER, 7, 4))
    check_export(rebuilt, export, 1, LEDGER, 7, key, ops[-1].op_hash, 4)
    other = key.encrypt(tensors.to_bytes({k: v * 2 for k, v in tensors.from_bytes(final).items()}),
                        BlobContext("state", 1, LEDGER, 7, 4))
    with pytest.raises(StateMismatch):
        check_export(rebuilt, other, 1, LEDGER, 7, key, ops[-1].op_hash, 4)


def test_rebuild_detects_delta_not_matching_commitment(trainer):
    key = UserKey.generate()
    blobs, ops, _ = _record_chain(trainer, key, 3, tamper=2)
    with pytest.raises(DeltaHashMismatch, match="seq 2"):
        rebuild(1, LEDGER, GENESIS, ops, blobs.__getitem__, key)


def test_rebuild_detects_broken_link(trainer):
    key = UserKey.generate()
    blobs, ops, _ = _record_chain(trainer, key, 3)
    with pytest.raises(ChainBroken):
        rebuild(1, LEDGER, GENESIS, [ops[0], ops[2]], blobs.__getitem__, key)


def test_rebuild_with_wrong_key_fails(trainer):
    blobs, ops, _ = _record_chain(trainer, UserKey.generate(), 2)
    with pytest.raises(DecryptionFailed):
        rebuild(1, LEDGER, GENESIS, ops, blobs.__getitem__, UserKey.generate())
