"""The ledger end to end on a real Anvil with the suite deployed: fork, train, seal, history, export,
verify, claim, and every bad input refused with nothing written."""
from __future__ import annotations

import pytest

from common.errors import Reverted
from agents.core.store import CorruptBlob
from agents.ledger.agent import NotYourFork, UserAgent
from ml.ledger import tensors
from ml.ledger.base import load_base
from ml.ledger.crypto import BlobContext, UserKey
from ml.ledger.errors import BaseModelMismatch, DecryptionFailed, DeltaHashMismatch, StateMismatch
from ml.ledger.ophash import OpFields, op_hash
from ml.ledger.trainer import Interaction

LR = dict(lr=0.5, seed=0)


@pytest.fixture
def setup(chain, signers, store, tiny_lm_dir, tmp_path):
    admin = UserAgent(chain, signers[0], store, UserKey.generate(), tmp_path / "admin")
    model, tok = load_base(tiny_lm_dir)
    base_id, base_cid = admin.register_base(model, "tiny-gpt2")
    alice = UserAgent(chain, signers[1], store, UserKey.generate(), tmp_path / "alice")
    bob = UserAgent(chain, signers[2], store, UserKey.generate(), tmp_path / "bob")
    return admin, alice, bob, base_id, base_cid


def _trained(alice, base_id, tiny_lm_dir, n):
    fid = alice.fork(base_id)
    model, tok = load_base(tiny_lm_dir)
    alice.attach(fid, model, tok, **LR)
    results = [alice.train(fid, Interaction(f"question {i}", f"answer {i}", "better answer" if i == 1 else None))
               for i in range(n)]
    return fid, results


def _blob_count(store):
    return sum(1 for p in (store.root / "blobs").rglob("*") if p.is_file()) if (store.root / "blobs").exists() else 0


def test_fork_train_history_export_verify(setup, tiny_lm_dir, chain, signers):
    admin, alice, bob, base_id, base_cid = setup
    fid, results = _trained(alice, base_id, tiny_lm_dir, 4)
    f = alice.ledger.fork(fid)
    assert f.owner == signers[1].address and f.op_count == 4 and f.head == results[-1].op_hash
    assert alice.ledger.base_cid(base_id) == base_cid

    ops, total = alice.ledger.history(signers[1].address, offset=1, limit=2)
    assert total == 4 and [o.seq for o in ops] == [2, 3]
    assert ops[0].prev_op_hash == results[0].op_hash, "ops are hash-chained"
    for o in ops:  # per-op time: the block time of the block that holds the op
        assert o.recorded_at == chain.w3.eth.get_block(o.recorded_at_block)["timestamp"]
        assert o.recorder == signers[1].address and o.owner == signers[1].address

    blocks = admin.ledger.seal_all(signers[0])
    assert len(blocks) == 1
    exp = alice.export(fid)
    assert exp.op_count == 4 and exp.head == f.head
    report = alice.verify(fid)
    assert report["ok"] and report["ops"] == 4 and report["sealed_ops_proven"] == 4

    # Only ciphertext reaches the store: no plaintext prompt in any blob.
    for o in alice.ledger.fork_ops(fid):
        assert b"question" not in alice.store.get(o.interaction_cid)


    # Every record is readable by `loyal events` (the core event reader).
    from agents.core.events import fetch_events

    evs = fetch_events(chain, contracts=["TrainingLedger"])
    assert {"BaseModelRegistered", "ModelForked", "TrainingRecorded", "BlockSealed", "ModelExported"} <= {
        e.name for e in evs}
    # The ops read back from events are exactly what was recorded (CIDs, commitments, hashes).
    by_seq = {o.seq: o for o in alice.ledger.fork_ops(fid)}
    assert [by_seq[i + 1].delta_cid for i in range(4)] == [r.delta_cid for r in results]
    assert [by_seq[i + 1].interaction_cid for i in range(4)] == [r.interaction_cid for r in results]
    rec = [e for e in evs if e.name == "TrainingRecorded" and e.args["userModelId"] == fid]
    assert [e.args["opHash"] for e in rec] == [r.op_hash for r in results]


def test_verify_by_a_fresh_agent_with_the_same_key(setup, tiny_lm_dir, chain, signers, store, tmp_path):
    admin, alice, bob, base_id, _ = setup
    fid, _ = _trained(alice, base_id, tiny_lm_dir, 3)
    alice.export(fid)
    auditor = UserAgent(chain, signers[5], store, alice.key, tmp_path / "auditor")  # key shared by the user
    assert auditor.verify(fid)["ops"] == 3
    stranger = UserAgent(chain, signers[5], store, UserKey.generate(), tmp_path / "stranger")
    with pytest.raises(DecryptionFailed):
        stranger.verify(fid)


def test_resume_training_in_a_new_process_from_chain(setup, tiny_lm_dir, chain, signers, store, tmp_path):
    admin, alice, bob, base_id, _ = setup
    fid, _ = _trained(alice, base_id, tiny_lm_dir, 2)
    again = UserAgent(chain, signers[1], store, alice.key, tmp_path / "alice-new-home")  # no cache: rebuilds
    model, tok = load_base(tiny_lm_dir)
    again.attach(fid, model, tok, **LR)
    r = again.train(fid, Interaction("q", "a"))
    assert r.seq == 3
    again.export(fid)
    assert alice.verify(fid)["ops"] == 3


def test_verify_detects_a_tampered_blob(setup, tiny_lm_dir, store):
    admin, alice, bob, base_id, _ = setup
    fid, results = _trained(alice, base_id, tiny_lm_dir, 3)
    alice.export(fid)
    path = store.path_of(results[1].delta_cid)
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(CorruptBlob):
        alice.verify(fid)


def test_verify_detects_delta_not_matching_its_commitment(setup, tiny_lm_dir, chain, signers, store):
    """A recorder that commits to one delta but uploads another is caught by verify."""
    admin, alice, bob, base_id, _ = setup
    fid, results = _trained(alice, base_id, tiny_lm_dir, 1)
    f = alice.ledger.fork(fid)
    state = tensors.from_bytes(alice.current_state(fid))
    real = {k: v * 0.5 for k, v in state.items()}
    fake = {k: v * 0.25 for k, v in state.items()}
    ctx = BlobContext("delta", chain.chain_id, alice.ledger.address, fid, 2)
    fkey = alice.fork_key(fid)
    dcid = store.put(fkey.encrypt(tensors.to_bytes(fake), ctx))
    fields = OpFields(fid, 2, f.head, results[0].interaction_cid, dcid,
                      fkey.commitment("delta", tensors.to_bytes(real)),
                      fkey.commitment("state", tensors.to_bytes(tensors.fold(state, real))))
    chain.transact(signers[1], alice.c.functions.recordTraining(
        fid, fields.interaction_cid, dcid, fields.delta_commitment, fields.state_commitment,
        op_hash(chain.chain_id, alice.ledger.address, fields)))
    with pytest.raises(DeltaHashMismatch, match="seq 2"):
        alice.verify(fid)


def test_verify_detects_export_of_another_state(setup, tiny_lm_dir, chain, signers, store):
    admin, alice, bob, base_id, _ = setup
    fid, _ = _trained(alice, base_id, tiny_lm_dir, 2)
    state = tensors.from_bytes(alice.current_state(fid))
    other = tensors.to_bytes({k: v + 1e-3 for k, v in state.items()})
    cid = store.put(alice.fork_key(fid).encrypt(other, BlobContext("state", chain.chain_id, alice.ledger.address, fid, 2)))
    from agents.ledger.agent import fields_arg

    chain.transact(signers[1], alice.c.functions.exportModel(fid, cid, fields_arg(alice.ledger.fork_ops(fid)[-1])))
    with pytest.raises(StateMismatch, match="byte"):
        alice.verify(fid)


def test_recording_to_another_users_fork_writes_nothing(setup, tiny_lm_dir, chain, signers, store):
    admin, alice, bob, base_id, _ = setup
    fid, _ = _trained(alice, base_id, tiny_lm_dir, 1)
    before = (_blob_count(store), chain.call(alice.c.functions.counts()))
    with pytest.raises(NotYourFork, match="may not record"):
        bob.train(fid, Interaction("q", "a"))
    f = alice.ledger.fork(fid)
    fields = OpFields(fid, 2, f.head, "bafkreia", "bafkreib", b"\0" * 32, b"\0" * 32)
    with pytest.raises(Reverted.named("NotAuthorisedRecorder")):
        chain.transact(signers[2], alice.c.functions.recordTraining(
            fid, "bafkreia", "bafkreib", b"\0" * 32, b"\0" * 32, op_hash(chain.chain_id, alice.ledger.address, fields)))
    assert (_blob_count(store), chain.call(alice.c.functions.counts())) == before


def test_delta_hash_mismatch_and_replay_refused(setup, tiny_lm_dir, chain, signers):
    admin, alice, bob, base_id, _ = setup
    fid, results = _trained(alice, base_id, tiny_lm_dir, 1)
    f = alice.ledger.fork(fid)
    fields = OpFields(fid, 2, f.head, "bafkreia", "bafkreib", b"\1" * 32, b"\2" * 32)
    h = op_hash(chain.chain_id, alice.ledger.address, fields)
    with pytest.raises(Reverted.named("OpHashMismatch")):
        chain.transact(signers[1], alice.c.functions.recordTraining(fid, "bafkreia", "bafkreib", b"\3" * 32, b"\2" * 32, h))
    op1 = alice.ledger.fork_ops(fid)[0]
    with pytest.raises(Reverted.named("OpAlreadyRecorded")):  # the same transaction sent again
        chain.transact(signers[1], alice.c.functions.recordTraining(
            fid, op1.interaction_cid, op1.delta_cid, op1.delta_commitment, op1.state_commitment, op1.op_hash))
    other = alice.fork(base_id)
    with pytest.raises(Reverted.named("OpHashMismatch")):  # copied to another fork of the same owner
        chain.transact(signers[1], alice.c.functions.recordTraining(
            other, op1.interaction_cid, op1.delta_cid, op1.delta_commitment, op1.state_commitment, op1.op_hash))
    assert alice.ledger.fork(fid) == f, "nothing written"
    assert alice.ledger.fork(other).op_count == 0
    assert chain.call(alice.c.functions.counts())[2] == 1


def test_attach_refuses_another_base_model(setup, tiny_lm_dir, tmp_path):
    from ml.ledger.tiny import make_tiny_lm

    admin, alice, bob, base_id, _ = setup
    fid = alice.fork(base_id)
    model, tok = load_base(make_tiny_lm(tmp_path / "other", seed=1))
    with pytest.raises(BaseModelMismatch):
        alice.attach(fid, model, tok)


def test_authorised_recorder_trains_for_the_owner(setup, tiny_lm_dir, chain, signers, store, tmp_path):
    admin, alice, bob, base_id, _ = setup
    fid = alice.fork(base_id)
    device = UserAgent(chain, signers[3], store, alice.key, tmp_path / "device")  # the user's second device
    chain.transact(signers[1], alice.c.functions.setRecorder(fid, signers[3].address, True))
    model, tok = load_base(tiny_lm_dir)
    device.attach(fid, model, tok, **LR)
    r = device.train(fid, Interaction("q", "a"))
    ops, total = alice.ledger.history(signers[1].address)
    assert total == 1 and ops[0].op_id == r.op_id
    assert ops[0].recorder == signers[3].address and ops[0].owner == signers[1].address


def _record_ops(chain, ledger, signers, count, start=0):
    """Record `count` ops, two forks of base 1 interleaved (fork 1 by signers[1], fork 2 by signers[2])."""
    c = ledger.c
    for i in range(start, start + count):
        fid, s = (1, signers[1]) if i % 3 else (2, signers[2])
        f = ledger.fork(fid)
        fields = OpFields(fid, f.op_count + 1, f.head, f"bafkint{i}", f"bafkdelta{i}", bytes([i]) * 32, b"\0" * 32)
        chain.transact(s, c.functions.recordTraining(fid, fields.interaction_cid, fields.delta_cid,
                                                     fields.delta_commitment, fields.state_commitment,
                                                     op_hash(chain.chain_id, ledger.address, fields)))


def _ledger_with_two_forks(chain, signers):
    from agents.ledger.agent import Ledger

    ledger = Ledger(chain)
    chain.transact(signers[0], ledger.c.functions.registerBaseModel("bafkreibase", "b"))
    for s in (signers[1], signers[2]):
        chain.transact(s, ledger.c.functions.forkModel(1))
    return ledger


def test_python_block_tree_matches_chain_across_blocks(chain, signers):
    """70 ops (two forks interleaved) seal into blocks of 64 + 6; the off-chain tree gives the stored
    roots and every op's proof passes OZ-compatible checks on and off chain."""
    from ml.ledger.ophash import BlockTree

    ledger = _ledger_with_two_forks(chain, signers)
    c = ledger.c
    _record_ops(chain, ledger, signers, 70)
    assert [b for b, _ in ledger.seal_all(signers[3])] == [1, 2]
    for b, (first, n) in ((1, (1, 64)), (2, (65, 6))):
        hashes = [ledger.op_hash(i) for i in range(first, first + n)]
        assert BlockTree(first, hashes).root == bytes(chain.call(c.functions.getBlock(b))[3])
    all_ops = ledger.fork_ops(1) + ledger.fork_ops(2)
    assert ledger.proven_ops(all_ops) == 70


def test_python_block_tree_matches_chain_for_odd_block_sizes(chain, signers):
    """Blocks of 1, 2, 3, 5, 7 and 9 ops: OpMerkle's on-chain root is common.merkle's (OpenZeppelin's
    StandardMerkleTree, unsorted) also where OZ's layout differs from carrying the odd node up."""
    from common.merkle import StandardMerkleTree
    from ml.ledger.ophash import LEAF_TYPES, BlockTree, verify_proof

    ledger = _ledger_with_two_forks(chain, signers)
    c = ledger.c
    recorded = 0
    for size in (1, 2, 3, 5, 7, 9):
        _record_ops(chain, ledger, signers, size, start=recorded)
        recorded += size
        [(b, _)] = ledger.seal_all(signers[3])
        first, n, _, root = chain.call(c.functions.getBlock(b))
        assert (first, n) == (recorded - size + 1, size)
        hashes = [ledger.op_hash(i) for i in range(first, first + n)]
        tree = BlockTree(first, hashes)
        assert tree.root == bytes(root) == StandardMerkleTree.of(
            [(first + i, h) for i, h in enumerate(hashes)], LEAF_TYPES, sort_leaves=False).root
        for op_id, h in zip(range(first, first + n), hashes):
            proof = tree.proof(op_id)
            assert verify_proof(proof, tree.root, op_id, h)
            assert chain.call(c.functions.verifyOpInclusion(b, op_id, h, proof))


def test_history_from_events_reads_bounded_ranges_and_paginates(chain, signers, monkeypatch):
    """Two users' ops interleaved over three forks: each user's history (from events) pages in op-id
    order; every event read is bounded by a fork's height and its latest op's block, and a second
    read of a fork asks only for the blocks after what it already holds."""
    import agents.ledger.oplog as oplog

    ledger = _ledger_with_two_forks(chain, signers)
    chain.mine(50)  # blocks before the forks' ops that no read may touch
    chain.transact(signers[1], ledger.c.functions.forkModel(1))  # fork 3: signers[1]'s second
    reads: list[tuple[int, int]] = []
    real = oplog.fetch_events

    def spy(chain_, *, from_block=0, to_block=None, **kw):
        reads.append((from_block, to_block))
        return real(chain_, from_block=from_block, to_block=to_block, **kw)

    monkeypatch.setattr(oplog, "fetch_events", spy)
    _record_ops(chain, ledger, signers, 9)  # fork 1: i%3 != 0 -> 6 ops by signers[1]; fork 2: 3 ops
    for i in range(2):
        f = ledger.fork(3)
        fields = OpFields(3, f.op_count + 1, f.head, f"bafkx{i}", f"bafky{i}", b"\7" * 32, b"\0" * 32)
        chain.transact(signers[1], ledger.c.functions.recordTraining(3, fields.interaction_cid, fields.delta_cid,
                                                                      fields.delta_commitment, fields.state_commitment,
                                                                      op_hash(chain.chain_id, ledger.address, fields)))
    ops, total = ledger.history(signers[1].address, offset=0, limit=5)
    assert total == 8 and [o.op_id for o in ops] == sorted(o.op_id for o in ops)
    rest, _ = ledger.history(signers[1].address, offset=5, limit=5)
    assert len(rest) == 3 and rest[0].op_id > ops[-1].op_id
    assert {o.user_model_id for o in ops + rest} == {1, 3}
    bob, bob_total = ledger.history(signers[2].address)
    assert bob_total == 3 and all(o.user_model_id == 2 for o in bob)
    assert ledger.history(signers[3].address) == ([], 0)
    with pytest.raises(Exception, match="offset"):
        ledger.history(signers[1].address, offset=-1)
    assert reads, "history comes from events"
    for lo, hi in reads:
        assert lo > 0 and hi is not None, "no read from block 0 or to an open end"
        fork_bounds = [(ledger.fork(i).forked_at_block, ledger.fork(i).last_op_block) for i in (1, 2, 3)]
        assert any(a <= lo and hi <= b for a, b in fork_bounds), (lo, hi, fork_bounds)
    n = len(reads)
    ledger.history(signers[1].address)  # nothing new: served from what was read
    assert len(reads) == n
    _record_ops(chain, ledger, signers, 2, start=9)  # one more op on fork 1 (i=10), one on fork 2 (i=9)
    f1 = ledger.fork(1)
    assert len(ledger.fork_ops(1)) == f1.op_count == 7
    assert reads[-1][0] >= ledger.fork_ops(1)[-2].recorded_at_block, "only the blocks after what was held"


def test_owner_signs_block_roots_with_ml_dsa_and_verify_names_each_failure(setup, tiny_lm_dir, chain, signers, store):
    from common.errors import ConfigError
    from ml.ledger.blocksig import BlockSignatureInvalid, BlockSignatureMissing, BlockSigningKey

    admin, alice, bob, base_id, _ = setup
    alice._block_key = BlockSigningKey.generate()
    fid, _ = _trained(alice, base_id, tiny_lm_dir, 3)
    admin.ledger.seal_all(signers[0])  # block 1: ops 1-3
    alice.train(fid, Interaction("more", "data"))
    admin.ledger.seal_all(signers[0])  # block 2: op 4
    alice.export(fid)
    assert alice.verify(fid)["block_key"] == "none registered by the owner"
    with pytest.raises(ConfigError, match="register-key"):
        alice.sign_blocks(fid)
    alice.register_block_key()
    with pytest.raises(Reverted.named("BlockKeyAlreadyRegistered")):  # bound once: no rotation by an ECDSA tx
        alice.register_block_key()
    with pytest.raises(BlockSignatureMissing, match=r"block 1 \(holding op 1 \(seq 1\), op 2 \(seq 2\), op 3"):
        alice.verify(fid)
    assert alice.sign_blocks(fid) == [1, 2]
    assert alice.sign_blocks(fid) == [], "already signed"
    report = alice.verify(fid)
    assert report["blocks_signed"] == report["blocks"] == 2
    assert report["block_key"] == "0x" + alice.block_key.key_hash.hex()

    # A signature that does not verify, published for block 2 (a broken or hostile client with the
    # owner's Ethereum key): verify names the block and its op.
    chain.transact(signers[1], alice.c.functions.submitBlockSignature(2, store.put(b"\0" * 3309)))
    with pytest.raises(BlockSignatureInvalid, match=r"block 2 \(holding op 4 \(seq 4\)\)"):
        alice.verify(fid)
    # Someone else's valid signature of block 2 does not stand in for the owner's.
    bob._block_key = BlockSigningKey.generate()
    bob.register_block_key()
    root2 = chain.call(alice.c.functions.getBlock(2))[3]
    bob_sig = bob.block_key.sign_block(chain.chain_id, alice.ledger.address, 2, root2)
    chain.transact(signers[2], alice.c.functions.submitBlockSignature(2, store.put(bob_sig)))
    with pytest.raises(BlockSignatureInvalid, match="block 2"):
        alice.verify(fid)
    assert alice.sign_blocks(fid) == [2], "the owner's new signature supersedes its bad one"
    assert alice.verify(fid)["blocks_signed"] == 2


def test_block_signing_refuses_bad_keys_signatures_and_foreign_ops(setup, tiny_lm_dir, chain, signers, store, tmp_path):
    from agents.core.store import cid_of
    from ml.ledger.blocksig import BlockKeyMismatch, BlockSignatureInvalid, BlockSigningKey, key_hash

    admin, alice, bob, base_id, _ = setup
    alice._block_key = BlockSigningKey.generate()
    fid, _ = _trained(alice, base_id, tiny_lm_dir, 2)
    admin.ledger.seal_all(signers[0])
    alice.register_block_key()
    signed_at = lambda b: chain.call(alice.c.functions.blockSignatureAt(b, signers[1].address))  # noqa: E731

    # 1. A local key that is not the registered one: refused, nothing published.
    impostor = UserAgent(chain, signers[1], store, alice.key, tmp_path / "impostor", block_key=BlockSigningKey.generate())
    with pytest.raises(BlockKeyMismatch, match="registered"):
        impostor.sign_blocks(fid)
    # 2. A signature that does not verify is never published.
    good = alice._block_key
    alice._block_key = BlockSigningKey(good.public_key, BlockSigningKey.generate()._secret)  # wrong secret half
    with pytest.raises(BlockSignatureInvalid, match="nothing published"):
        alice.sign_blocks(fid)
    assert signed_at(1) == 0
    alice._block_key = good
    # 3. An op alice's key did not make (an authorised device gone rogue, or a forged transaction)
    #    in a block: alice refuses to vouch for that block.
    chain.transact(signers[1], alice.c.functions.setRecorder(fid, signers[4].address, True))
    f = alice.ledger.fork(fid)
    junk = store.put(b"LLG1" + b"\0" * 64)
    fields = OpFields(fid, 3, f.head, junk, junk, b"\1" * 32, b"\2" * 32)
    chain.transact(signers[4], alice.c.functions.recordTraining(fid, junk, junk, b"\1" * 32, b"\2" * 32,
                                                                op_hash(chain.chain_id, alice.ledger.address, fields)))
    admin.ledger.seal_all(signers[0])  # block 2 holds the foreign op
    with pytest.raises(DecryptionFailed):
        alice.sign_blocks(fid)
    assert signed_at(2) == 0, "nothing published for the block with the foreign op"
    # 4. A key hash on chain that the key in the store does not match (registered by a direct call):
    #    verify names the account.
    other = BlockSigningKey.generate()
    chain.transact(signers[2], alice.c.functions.registerBlockKey(key_hash(other.public_key), store.put(good.public_key)))
    bob_fid = bob.fork(base_id)
    with pytest.raises(BlockKeyMismatch, match=signers[2].address):
        bob.ledger.check_block_signatures([], bob.ledger.fork(bob_fid).owner, store)
    assert cid_of(good.public_key) == store.put(good.public_key)
