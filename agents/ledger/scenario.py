"""Devnet step: two users fork a base model, train on their interactions, seal, sign the blocks
(ML-DSA-65), export, verify; a staked evaluator attests each fork's held-out gain, the owners claim,
and after the challenge window the claims are paid."""
from __future__ import annotations

from agents.core.devnet import ScenarioContext
from agents.core.token import Stakes
from agents.ledger import rewards
from agents.ledger.deploy import QUALITY_POLICY
from common.errors import Reverted
from agents.core.store import LocalStore
from agents.ledger.agent import UserAgent
from ml.ledger.base import load_base
from ml.ledger.blocksig import BlockSigningKey
from ml.ledger.crypto import UserKey
from ml.ledger.errors import ChainBroken
from ml.ledger.tiny import make_tiny_lm
from ml.ledger.trainer import Interaction

CHATS = {
    1: [("What is Loyal?", "Community-owned AI.", None), ("Who owns my fork?", "The DAO.", "You do."),
        ("Where is my data?", "Encrypted in the store.", None)],
    2: [("Say hello", "hello", None), ("Say goodbye", "bye", "goodbye")],
}
HELD_OUT = [Interaction("What is Loyal?", "Community-owned AI."), Interaction("Who owns my fork?", "You do."),
            Interaction("Say hello", "hello")]


def run(ctx: ScenarioContext) -> dict:
    chain, home = ctx.chain, ctx.home / "ledger"
    store = LocalStore(home / "store")
    model_dir = make_tiny_lm(home / "base-tiny-gpt2")
    admin = UserAgent(chain, ctx.admin, store, None, home / "admin")
    base_id, base_cid = admin.register_base(load_base(model_dir)[0], "tiny-gpt2 (random init)")
    out = {"base_cid": base_cid, "ops": 0}
    users = []
    for i, chats in CHATS.items():
        user = UserAgent(chain, ctx.signer(i), store, UserKey.generate(), home / f"user{i}",
                         block_key=BlockSigningKey.generate())
        user.register_block_key()
        fid = user.fork(base_id)
        user.attach(fid, *load_base(model_dir), lr=0.5)
        for prompt, response, feedback in chats:
            user.train(fid, Interaction(prompt, response, feedback))
            out["ops"] += 1
        users.append((user, fid))
    out["blocks_sealed"] = len(admin.ledger.seal_all(ctx.admin))
    signed = 0
    for user, fid in users:
        user.export(fid)
        signed += len(user.sign_blocks(fid))  # ML-DSA-65 signatures of the block roots holding the fork's ops
        report = user.verify(fid)  # raises on any mismatch, unsigned or badly signed block
        if report["sealed_ops_proven"] != report["ops"]:
            raise ChainBroken(f"fork {fid}: {report['sealed_ops_proven']} of {report['ops']} ops proven in blocks")
    out["forks_verified"] = len(users)
    out["block_signatures"] = signed
    # Rewards only for measured quality: a staked evaluator, holding each fork's key, attests the
    # held-out loss before and after the fork's ops; the owner claims; after the window it is paid.
    evaluator_signer = ctx.signer(4)
    ctx.fund(evaluator_signer.address)
    Stakes(chain).stake(evaluator_signer, QUALITY_POLICY[0])
    evaluator = UserAgent(chain, evaluator_signer, store, UserKey.generate(), home / "evaluator")
    claims, unrewarded = [], 0
    for user, fid in users:
        evaluator.add_fork_key(fid, user.share_fork_key(fid))
        att = rewards.attest(evaluator, fid, user.ledger.fork(fid).op_count, HELD_OUT, model_dir)
        try:
            claims.append((user, rewards.submit_claim(user, att)))
        except (Reverted.named("GainBelowMinimum"), Reverted.named("LossGotWorse")):
            unrewarded += 1  # no measured gain, no reward
    chain.advance_time(QUALITY_POLICY[2])
    paid = sum(rewards.finalize(user, claim_id) for user, claim_id in claims)
    out["reward_claims_paid"] = len(claims)
    out["forks_without_gain"] = unrewarded
    out["rewards_LOYAL"] = paid / 1e18
    return out
