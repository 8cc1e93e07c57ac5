"""Forks of forks on a real Anvil: three generations owned by three users, each starting from its
parent's export at a given op; verify rebuilds the grandchild byte for byte from the base; bad fork
points, wrong keys and a doctored export at a fork point are refused or named."""
from __future__ import annotations

import pytest

from agents.ledger.agent import UserAgent, fields_arg
from common.errors import ConfigError, Reverted
from ml.ledger import tensors
from ml.ledger.base import load_base
from ml.ledger.crypto import BlobContext, ForkKey, UserKey
from ml.ledger.errors import DecryptionFailed, StateMismatch
from ml.ledger.trainer import Interaction

LR = dict(lr=0.5, seed=0)


def _agent(chain, signer, store, tmp_path, name):
    return UserAgent(chain, signer, store, UserKey.generate(), tmp_path / name)


def _train(agent, fid, tiny_lm_dir, n, tag):
    agent.attach(fid, *load_base(tiny_lm_dir), **LR)
    return [agent.train(fid, Interaction(f"{tag} question {i}", f"{tag} answer {i}")) for i in range(n)]


@pytest.fixture
def three_generations(chain, signers, store, tiny_lm_dir, tmp_path):
    """alice: fork 1 of the base (4 ops, exported at op 2 and op 4); bob: fork 2 from alice's op 2
    (3 ops, exported at op 3); carol: fork 3 from bob's op 3 (2 ops, exported)."""
    admin = UserAgent(chain, signers[0], store, None, tmp_path / "admin")
    base_id, _ = admin.register_base(load_base(tiny_lm_dir)[0], "tiny")
    alice, bob, carol = (_agent(chain, signers[i], store, tmp_path, n) for i, n in ((1, "alice"), (2, "bob"), (3, "carol")))
    a = alice.fork(base_id)
    _train(alice, a, tiny_lm_dir, 2, "alice")
    alice.export(a)  # the fork point bob uses
    _train(alice, a, tiny_lm_dir, 2, "alice later")
    alice.export(a)
    bob.add_fork_key(a, alice.share_fork_key(a))
    b = bob.fork_from(a, 2)
    _train(bob, b, tiny_lm_dir, 3, "bob")
    bob.export(b)
    carol.add_fork_key(a, alice.share_fork_key(a))
    carol.add_fork_key(b, bob.share_fork_key(b))
    c = carol.fork_from(b, 3)
    _train(carol, c, tiny_lm_dir, 2, "carol")
    carol.export(c)
    admin.ledger.seal_all(signers[0])
    return admin, alice, bob, carol, (a, b, c)


def test_grandchild_rebuilds_byte_for_byte_from_the_base(three_generations, chain, store):
    admin, alice, bob, carol, (a, b, c) = three_generations
    lineage = carol.ledger.lineage(c)
    assert [(f.user_model_id, f.generation, f.parent_id, f.parent_seq) for f in lineage] == [
        (a, 1, 0, 0), (b, 2, a, 2), (c, 3, b, 3)]
    assert {f.base_model_id for f in lineage} == {1}
    report = carol.verify(c)
    assert report["generation"] == 3 and report["ops"] == 2
    assert [g["ops_used"] for g in report["lineage"]] == [2, 3, 2], "alice's ops 3-4 are not in carol's model"
    assert report["lineage_ops"] == 7 and report["sealed_ops_proven"] == 7
    # Byte for byte: the rebuilt grandchild is exactly what carol exported, and carol's model
    # started from bob's op-3 state, which started from alice's op-2 state.
    rebuilt, _, _ = carol.rebuild_lineage(c)
    exported = carol.fork_key(c).decrypt(store.get(carol.ledger.latest_export(c).state_cid),
                                         BlobContext("state", chain.chain_id, carol.ledger.address, c, 2))
    assert rebuilt.state == exported
    assert carol.initial_state(carol.ledger.fork(c)) == bob.current_state(b)
    from ml.ledger.rebuild import RecordedOp, rebuild

    first_two = [RecordedOp(o.op_id, o.fields(), o.op_hash) for o in alice.ledger.fork_ops(a)[:2]]
    alice_at_2 = rebuild(chain.chain_id, alice.ledger.address, alice.ledger.fork(a).genesis, first_two, store.get,
                         alice.fork_key(a)).state
    assert bob.initial_state(bob.ledger.fork(b)) == alice_at_2 != alice.current_state(a)
    # The children's genesis hashes commit to the parent's op at the fork point.
    assert lineage[1].genesis != lineage[2].genesis
    assert alice.verify(a)["lineage_ops"] == 4


def test_lineage_needs_every_generations_key(three_generations, chain, signers, store, tmp_path):
    admin, alice, bob, carol, (a, b, c) = three_generations
    dave = _agent(chain, signers[4], store, tmp_path, "dave")
    dave.add_fork_key(c, carol.share_fork_key(c))
    dave.add_fork_key(b, bob.share_fork_key(b))
    with pytest.raises(ConfigError, match="ledger key"):  # no key for alice's fork: dave cannot rebuild from the base
        UserAgent(chain, signers[4], store, None, tmp_path / "dave").verify(c)
    with pytest.raises(DecryptionFailed):  # his own master key does not open alice's fork
        dave.verify(c)
    dave.add_fork_key(a, alice.share_fork_key(a))
    assert dave.verify(c)["ops"] == 2


def test_bad_fork_points_and_keys_are_refused_with_nothing_recorded(three_generations, chain, signers, store, tmp_path):
    admin, alice, bob, carol, (a, b, c) = three_generations
    forks_before = chain.call(alice.c.functions.counts())[1]
    with pytest.raises(Reverted.named("UnknownParentOp")):  # an op that does not exist
        carol.fork_from(a, 9)
    with pytest.raises(Reverted.named("NotExported")):  # exists, never exported there
        carol.fork_from(a, 3)
    with pytest.raises(Reverted.named("UnknownFork")):
        carol.fork_from(77, 1)
    assert chain.call(alice.c.functions.counts())[1] == forks_before
    # A fork key that does not open the fork is not kept.
    eve = _agent(chain, signers[5], store, tmp_path, "eve")
    with pytest.raises(DecryptionFailed):
        eve.add_fork_key(a, ForkKey.generate())
    assert not eve._shared_key_path(a).exists()
    with pytest.raises(Exception, match="only its owner shares"):
        eve.share_fork_key(a)


def test_a_doctored_export_at_the_fork_point_is_named(chain, signers, store, tiny_lm_dir, tmp_path):
    """A parent that exports, at the fork point, a state other than its rebuilt one (its deltas fold
    to something else) is caught when the child is verified from the base."""
    admin = UserAgent(chain, signers[0], store, None, tmp_path / "admin")
    base_id, _ = admin.register_base(load_base(tiny_lm_dir)[0], "tiny")
    alice, bob = _agent(chain, signers[1], store, tmp_path, "alice"), _agent(chain, signers[2], store, tmp_path, "bob")
    a = alice.fork(base_id)
    _train(alice, a, tiny_lm_dir, 2, "alice")
    state = tensors.from_bytes(alice.current_state(a))
    doctored = tensors.to_bytes({k: v + 1e-3 for k, v in state.items()})
    fkey = alice.fork_key(a)
    cid = store.put(fkey.encrypt(doctored, BlobContext("state", chain.chain_id, alice.ledger.address, a, 2)))
    head = alice.ledger.fork_ops(a)[-1]
    chain.transact(signers[1], alice.c.functions.exportModel(a, cid, fields_arg(head)))
    bob.add_fork_key(a, alice.share_fork_key(a))
    b = bob.fork_from(a, 2)
    with pytest.raises(StateMismatch, match="state commitment"):  # bob's agent refuses to train on it
        bob.attach(b, *load_base(tiny_lm_dir), **LR)
    with pytest.raises(StateMismatch):
        bob.verify(b)
