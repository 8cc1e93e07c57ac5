"""Quality-gated rewards on a real Anvil with real (tiny) training: an evaluator staked in Staking
measures held-out loss before and after a range of ops; the owner is paid per measured gain after
the challenge window; junk ops earn nothing; a lying evaluator is caught by a re-check and slashed."""
from __future__ import annotations

import random
from dataclasses import asdict

import pytest

from agents.core.token import Stakes
from agents.ledger import rewards
from agents.ledger.agent import UserAgent
from common.errors import Reverted
from ml.ledger.base import load_base
from ml.ledger.crypto import UserKey
from ml.ledger.trainer import Interaction

LR = dict(lr=0.5, seed=0)
HELD_OUT = [Interaction(f"what is loyal? {i}", "loyal is community owned ai") for i in range(4)]
GOOD = [Interaction(f"tell me about loyal {i}", "loyal is community owned ai, owned by its users") for i in range(5)]
DAY = 24 * 3600


def _junk(n, seed):
    """Farming ops: random strings, recorded with a negligible learning rate (cheap ops that change nothing)."""
    rng = random.Random(seed)
    word = lambda k: "".join(rng.choice("xqzjkv#@!") for _ in range(k))  # noqa: E731
    return [Interaction(word(12), word(20)) for _ in range(n)]


@pytest.fixture
def world(chain, signers, store, tiny_lm_dir, tmp_path):
    admin = UserAgent(chain, signers[0], store, UserKey.generate(), tmp_path / "admin")  # holds REFEREE_ROLE
    base_id, _ = admin.register_base(load_base(tiny_lm_dir)[0], "tiny")
    evaluator = UserAgent(chain, signers[4], store, UserKey.generate(), tmp_path / "evaluator")
    Stakes(chain).stake(signers[4], 200 * 10**18)
    return admin, evaluator, base_id


def _user(chain, signer, store, tmp_path, name, base_id, tiny_lm_dir, data):
    u = UserAgent(chain, signer, store, UserKey.generate(), tmp_path / name)
    fid = u.fork(base_id)
    u.attach(fid, *load_base(tiny_lm_dir), **LR)
    for it in data:
        u.train(fid, it)
    return u, fid


def _balance(chain, who):
    return chain.call(chain.contract("LoyalToken").functions.balanceOf(who))


def test_measured_gain_is_paid_after_the_window(world, chain, signers, store, tiny_lm_dir, tmp_path):
    admin, evaluator, base_id = world
    alice, fid = _user(chain, signers[1], store, tmp_path, "alice", base_id, tiny_lm_dir, GOOD)
    admin.ledger.seal_all(signers[0])
    evaluator.add_fork_key(fid, alice.share_fork_key(fid))
    att = rewards.attest(evaluator, fid, 5, HELD_OUT, tiny_lm_dir)
    assert att.from_seq == 1 and att.loss_after < att.loss_before
    assert rewards.digest(alice, att) == bytes(chain.call(alice.c.functions.attestationDigest(att.as_arg())))
    gain_rewards = (att.loss_before - att.loss_after) // 10**6
    assert gain_rewards >= 5, "five on-topic SFT steps remove more than 5 x 0.001 nats of held-out loss"
    before = _balance(chain, signers[1].address)
    claim_id = rewards.submit_claim(alice, att)
    admin.add_fork_key(fid, alice.share_fork_key(fid))
    check = rewards.recheck(admin, claim_id, tiny_lm_dir)
    assert check.holds and check.recomputed == check.attested, "same machine, same states, same data: same losses"
    with pytest.raises(Reverted.named("ChallengeWindowOpen")):
        rewards.finalize(alice, claim_id)
    chain.advance_time(DAY)
    assert rewards.finalize(evaluator, claim_id) == 5 * 10**18  # anyone may finalize; alice is paid
    assert _balance(chain, signers[1].address) - before == 5 * 10**18
    assert chain.call(alice.c.functions.rewardedThroughSeq(fid)) == 5
    assert chain.call(chain.contract("Staking").functions.lockedOf(signers[4].address)) == 0


def test_a_sybil_with_junk_ops_cannot_profit(world, chain, signers, store, tiny_lm_dir, tmp_path):
    admin, evaluator, base_id = world
    sybil_signer, sybil_eval_signer = signers[5], signers[6]
    forks = []
    sybil = None
    for k in range(2):
        agent = UserAgent(chain, sybil_signer, store, sybil.key if sybil else UserKey.generate(), tmp_path / "sybil")
        sybil = agent
        fid = agent.fork(base_id)
        agent.attach(fid, *load_base(tiny_lm_dir), lr=1e-5, seed=0)
        for it in _junk(10, seed=k):
            agent.train(fid, it)
        forks.append(fid)
    admin.ledger.seal_all(signers[0])
    sybil_balance = _balance(chain, sybil_signer.address)
    staking = chain.contract("Staking")
    side = lambda: _balance(chain, sybil_signer.address) + chain.call(staking.functions.stakeOf(sybil_eval_signer.address))  # noqa: E731
    # 1. An honest evaluator measures the junk: it made held-out loss no better, so no claim passes.
    for fid in forks:
        evaluator.add_fork_key(fid, sybil.share_fork_key(fid))
        att = rewards.attest(evaluator, fid, 10, HELD_OUT, tiny_lm_dir)
        assert att.loss_before - att.loss_after < 10**6, "junk removes less than one reward's worth of loss"
        with pytest.raises((Reverted.named("LossGotWorse"), Reverted.named("GainBelowMinimum"))):
            rewards.submit_claim(sybil, att)
    # 2. The owner inflates the gain after the honest evaluator signed: a forged attestation.
    forged = rewards.Attestation(**{**asdict(att), "loss_after": att.loss_before - 50 * 10**6})
    with pytest.raises(Reverted.named("ForgedAttestation")):
        rewards.submit_claim(sybil, forged)
    assert chain.call(sybil.c.functions.rewardsReserved()) == 0
    # 3. Its own staked evaluator signs a false gain; the referee's re-check catches it and slashes.
    Stakes(chain).stake(sybil_eval_signer, 150 * 10**18)
    sybil_eval = UserAgent(chain, sybil_eval_signer, store, UserKey.generate(), tmp_path / "sybil-eval")
    start = side()
    honest = rewards.attest(evaluator, forks[0], 10, HELD_OUT, tiny_lm_dir)
    lie = rewards.sign(sybil_eval, rewards.Attestation(**{**asdict(honest), "evaluator": sybil_eval_signer.address,
                                                         "loss_after": honest.loss_before - 20 * 10**6}))
    claim_id = rewards.submit_claim(sybil, lie)
    admin.add_fork_key(forks[0], sybil.share_fork_key(forks[0]))
    check = rewards.recheck(admin, claim_id, tiny_lm_dir)
    assert not check.holds and check.recomputed[1] != lie.loss_after
    slashed = rewards.reject(admin, claim_id, f"re-check: loss after {check.recomputed[1]}, not {lie.loss_after}")
    assert slashed == 20 * 10**18, "bond = 2 x the 10 rewards it tried to get"
    chain.advance_time(DAY)
    with pytest.raises(Reverted.named("ClaimNotPending")):
        rewards.finalize(sybil, claim_id)
    assert side() == start - slashed, "the Sybil's side lost the bond and was paid nothing"
    assert _balance(chain, sybil_signer.address) == sybil_balance, "not one LOYAL paid for junk"
    assert all(chain.call(sybil.c.functions.rewardedThroughSeq(f)) == 0 for f in forks), "no junk op paid"
    with pytest.raises(Reverted.named("AttestationAlreadyUsed")):  # the lie cannot be replayed after rejection
        rewards.submit_claim(sybil, lie)
