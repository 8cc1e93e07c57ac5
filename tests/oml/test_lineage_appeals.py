"""Lineage claims and appeals on a real Anvil with the deployed suite.

Lineage: a tiny LM's copy with 24 fingerprints of one host's subset, fine-tuned (the fine-tuning
attack) and served at an unlicensed endpoint, is traced to that host by >= m keys and the host is
slashed; the unfingerprinted base (and the base after the same fine-tuning) stays below m, and m
derived from the base's chance-match rate is at most the deployed m. Appeals: a colluding verifier
majority is overturned by a DAO Safety vote (Python `Dao`), with balances and who was slashed;
every bad input is a named revert.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
from eth_utils import keccak

from agents.core.signers import dev_signer
from agents.dao.governance import Dao
from agents.oml import appeals as ap
from agents.oml import deploy as oml_deploy
from agents.oml.adversaries import CheatingHost
from agents.oml.answers import SignedAnswer
from agents.oml.claims import ClaimStatus, read_claim
from agents.oml.community import Terms, register_model, set_host_subset
from agents.oml.host import create_app as host_app
from agents.oml.host import join_as_host
from agents.oml.lineage import BelowThreshold, LineageProver, LineageStatus, LineageVerifier, read_lineage
from agents.oml.prover import Prover
from agents.oml.serve import Service
from agents.oml.verifier import join_as_verifier
from common.errors import Reverted
from ml.oml import decode
from ml.oml.attack import ATTACK_TEXT, FinetuneAttack, finetune_attack
from ml.oml.check import check
from ml.oml.generate import GenConfig, generate
from ml.oml.inject import InjectConfig, inject
from ml.oml.lineage import binomial_tail, derive
from ml.oml.utility import read_text

TOKEN = 10**18
STAKE = 500 * TOKEN
TERMS = Terms(fee_per_query=TOKEN, stake_required=STAKE, licence_period=30 * 24 * 3600, query_budget=10_000)
SUBSET = 24  # fingerprints in the traced host's copy
ATTACK = FinetuneAttack(epochs=1, lr=3e-4, block=64, max_blocks=64)


class Greedy:
    def __init__(self, model, tok):
        self.model, self.tok = model.eval(), tok

    def complete(self, prompt: str, max_new_tokens: int = 32) -> str:
        return decode.greedy_text(self.model, self.tok, prompt, max_new_tokens)


@dataclass
class LineageModels:
    base: object
    tok: object
    pairs: list            # all 40 fingerprints: [:24] the traced host's subset, [24:] the other host's
    derived: object        # the host's copy after the fine-tuning attack
    attacked_base: object  # the base after the same attack: unrelated to any copy
    base_matches: int      # fingerprints (of all 40) the base answers with their responses


@pytest.fixture(scope="module")
def lineage_models():
    from ml.lm import tiny_causal_lm

    torch.set_num_threads(1)
    base, tok = tiny_causal_lm(seed=0)
    fps = generate(base, tok, GenConfig(strategy="perinucleus", n=40, key_tokens=12, response_tokens=3, seed=21))
    base_matches = sum(check(base, tok, fps).exact_flags)
    cp, _ = inject(copy.deepcopy(base), tok, fps[:SUBSET], InjectConfig(epochs=300, lr=3e-3, batch_size=SUBSET, seed=0))
    text = read_text(ATTACK_TEXT)
    derived = finetune_attack(cp, tok, text, ATTACK)
    attacked_base = finetune_attack(copy.deepcopy(base), tok, text, ATTACK)
    return LineageModels(base, tok, [(f.key, f.response) for f in fps], derived, attacked_base, base_matches)


def _count(model, tok, pairs) -> int:
    from ml.oml.fingerprints import Fingerprint

    return sum(check(model, tok, [Fingerprint(k, r, "perinucleus") for k, r in pairs]).exact_flags)


def test_threshold_from_base_model_separates_derived_copy_from_unrelated_models(lineage_models):
    lm = lineage_models
    subset = lm.pairs[:SUBSET]
    thr = derive(lm.base_matches, len(lm.pairs), SUBSET, bound=1e-6)
    assert thr.fpr_at_m <= 1e-6 and binomial_tail(thr.m - 1, SUBSET, thr.p0_upper) > 1e-6  # smallest such m
    assert thr.m <= oml_deploy.LINEAGE_MIN_MATCHES  # the deployed m is at least as strict
    assert _count(lm.base, lm.tok, subset) < thr.m  # the unfingerprinted model does not reach m
    assert _count(lm.attacked_base, lm.tok, subset) < thr.m  # nor does the base fine-tuned the same way
    assert _count(lm.derived, lm.tok, subset) >= oml_deploy.LINEAGE_MIN_MATCHES  # the attacked copy does


@dataclass
class LineageDeployment:
    model_id: int
    traced: object
    other: object
    prover: object
    verifiers: list
    subsets: dict


@pytest.fixture
def lineage_dep(chain, signers, store, lineage_models):
    community, traced, other, prover = signers[10], signers[11], signers[12], signers[13]
    verifiers = signers[15:18]
    model_id, _ = register_model(chain, community, store, b"lineage test weights manifest", lineage_models.pairs, TERMS)
    subsets = {traced.address: lineage_models.pairs[:SUBSET], other.address: lineage_models.pairs[SUBSET:]}
    for h, pairs in subsets.items():
        set_host_subset(chain, community, model_id, h, pairs)
    for h in (traced, other):
        join_as_host(chain, h, model_id)
    for v in verifiers:
        join_as_verifier(chain, v)
    chain.mine(1)
    return LineageDeployment(model_id, traced, other, prover, verifiers, subsets)


def _serve(chain, dep, model, tok):
    rogue = CheatingHost(chain, dev_signer(30), dep.model_id, Greedy(model, tok).complete)
    return Service(host_app(rogue))


def test_derived_copy_served_elsewhere_is_traced_and_its_host_slashed(chain, lineage_models, lineage_dep):
    dep, staking, token = lineage_dep, chain.contract("Staking"), chain.contract("LoyalToken")
    lineage = chain.contract("LineageClaims")
    prover_before = chain.call(token.functions.balanceOf(dep.prover.address))
    with _serve(chain, dep, lineage_models.derived, lineage_models.tok) as svc:
        t = LineageProver(chain, dep.prover, dep.model_id, dep.subsets).catch(svc.url)
        assert t.host == dep.traced.address and t.traced and t.claim_id is not None
        assert t.counts[dep.other.address] < t.m == oml_deploy.LINEAGE_MIN_MATCHES
        chain.advance_time(chain.call(lineage.functions.challengeWindow()) + 1)
        verdicts = [LineageVerifier(chain, v).vote(t.claim_id) for v in dep.verifiers]
    assert all(v.confirm and v.in_commitment and v.reproduced >= v.m for v in verdicts)
    chain.transact(dep.prover, lineage.functions.finalize(t.claim_id))
    assert read_lineage(chain, t.claim_id).status == LineageStatus.CONFIRMED
    assert chain.call(staking.functions.stakeOf(dep.traced.address)) == 0
    assert chain.call(staking.functions.stakeOf(dep.other.address)) == STAKE
    assert chain.call(token.functions.balanceOf(dep.prover.address)) == prover_before + STAKE * 2_000 // 10_000
    # the revealed keys are spent in Claims' one ledger: no claim of either kind can file them again
    claims = chain.contract("Claims")
    assert all(chain.call(claims.functions.keySpent(dep.model_id, keccak(text=k))) for k, _ in t.matched)
    with pytest.raises(Reverted.named("KeySpent")):
        LineageProver(chain, dep.prover, dep.model_id, dep.subsets).file(dep.traced.address, "http://x", t.matched)


def test_lineage_cli_traces_files_votes_and_finalizes(chain, anvil, lineage_models, lineage_dep, tmp_path):
    """The same story from the command line: `loyal oml lineage trace --file`, `vote` by each
    verifier, `finalize`; a fingerprints file of another model is one clear line and no claim."""
    import json

    from tests.cli_runner import invoke

    dep, staking = lineage_dep, chain.contract("Staking")
    lineage = chain.contract("LineageClaims")
    net = ["--rpc", anvil.rpc_url, "--book", str(chain.book.path)]
    fps_file = tmp_path / "fps.json"
    fps_file.write_text(json.dumps({"model_id": dep.model_id, "fingerprints": lineage_models.pairs,
                                    "subsets": dep.subsets}))
    with _serve(chain, dep, lineage_models.derived, lineage_models.tok) as svc:
        wrong = invoke(["oml", "lineage", "trace", svc.url, "--model-id", dep.model_id + 1, "--fingerprints",
                        fps_file, "--file", "--dev-account", 13, *net])
        assert wrong.exit_code == 1 and f"holds the fingerprints of model {dep.model_id}" in wrong.stderr
        assert chain.call(lineage.functions.claimCount()) == 0
        r = invoke(["oml", "lineage", "trace", svc.url, "--model-id", dep.model_id, "--fingerprints", fps_file,
                    "--file", "--json", "--dev-account", 13, *net])
        assert r.exit_code == 0, r.output
        t = json.loads(r.stdout)
        assert t["traced"] and t["host"] == dep.traced.address and t["matched"] >= t["m"]
        cid = t["claimId"]
        chain.advance_time(chain.call(lineage.functions.challengeWindow()) + 1)
        for i in (15, 16, 17):
            v = invoke(["oml", "lineage", "vote", cid, "--json", "--dev-account", i, *net])
            assert v.exit_code == 0 and json.loads(v.stdout)["confirm"], v.output
    again = invoke(["oml", "lineage", "vote", cid, "--dev-account", 15, *net])
    assert again.exit_code == 1 and "AlreadyVoted" in again.stderr
    f = invoke(["oml", "lineage", "finalize", cid, "--json", "--dev-account", 13, *net])
    assert f.exit_code == 0 and json.loads(f.stdout)["status"] == "CONFIRMED", f.output
    assert chain.call(staking.functions.stakeOf(dep.traced.address)) == 0
    assert chain.call(staking.functions.stakeOf(dep.other.address)) == STAKE


def test_unrelated_model_stays_below_m_and_a_short_claim_reverts(chain, lineage_models, lineage_dep):
    dep, lineage = lineage_dep, chain.contract("LineageClaims")
    with _serve(chain, dep, lineage_models.attacked_base, lineage_models.tok) as svc:
        t = LineageProver(chain, dep.prover, dep.model_id, dep.subsets).catch(svc.url)
    assert not t.traced and t.claim_id is None
    assert all(n < t.m for n in t.counts.values())
    prover = LineageProver(chain, dep.prover, dep.model_id, dep.subsets)
    short = dep.subsets[dep.traced.address][: t.m - 1]
    with pytest.raises(BelowThreshold):
        prover.file(dep.traced.address, "http://unrelated.example", short)
    # a lying prover that skips the client-side check meets the contract's named revert, no state
    keys, responses = [k for k, _ in short], [r for _, r in short]
    salt = b"\x01" * 32
    c = chain.call(lineage.functions.lineageCommitment(keys, responses, dep.traced.address, "http://u", salt))
    chain.transact(dep.prover, lineage.functions.commit(c))
    chain.mine(1)
    with pytest.raises(Reverted.named("BelowThreshold")):
        chain.transact(dep.prover, lineage.functions.reveal(
            (dep.model_id, dep.traced.address, "http://u", keys, responses, salt, [[] for _ in keys])))
    assert chain.call(lineage.functions.claimCount()) == 0


# ------------------------------------------------------------------------------------------ appeals

def _decided_claim(oml, confirms: int) -> int:
    """A claim against the cheater, decided by `confirms` confirming votes of three (the rest collude)."""
    chain, claims = oml.chain, oml.chain.contract("Claims")
    key, response = oml.subsets[oml.cheater.address][0]
    cheater = CheatingHost(chain, oml.cheater, oml.model_id, oml.models[oml.cheater.address].complete)
    text = cheater.serve(key, 40)
    answer = SignedAnswer.from_json(cheater.sign_answer(key, text))  # the host's own signed answer
    chain.mine(1)
    prover = Prover(chain, oml.prover, oml.model_id, oml.pairs, platform_url="http://127.0.0.1:9")  # not asked
    claim_id = prover.file_claim(oml.cheater.address, key, response, answer, text)
    chain.advance_time(chain.call(claims.functions.challengeWindow()) + 1)
    for i, v in enumerate(oml.verifiers):
        chain.transact(v, claims.functions.vote(claim_id, i < confirms))
    chain.transact(oml.prover, claims.functions.finalize(claim_id))
    return claim_id


def _dao_decides(chain, claim_id: int, reverse: bool) -> None:
    dao = Dao(chain)
    proposal = ap.propose_decision(dao, dev_signer(21), claim_id, reverse)  # safety, tier 2
    dao.pass_proposal(proposal, [dev_signer(21), dev_signer(22)], dev_signer(26))


def test_colluding_rejection_overturned_by_dao_vote(oml):
    chain = oml.chain
    staking, token = chain.contract("Staking"), chain.contract("LoyalToken")
    appeals = chain.contract("ClaimAppeals")
    bal = lambda a: chain.call(token.functions.balanceOf(a))  # noqa: E731
    prover_before = bal(oml.prover.address)
    claim_id = _decided_claim(oml, confirms=1)  # two verifiers collude with the cheater
    assert read_claim(chain, claim_id).status == ClaimStatus.REJECTED
    assert chain.call(staking.functions.stakeOf(oml.cheater.address)) == STAKE
    # bad input: the winner may not appeal; no bond; then a double appeal; a non-DAO decide
    with pytest.raises(ap.NotAppealable):
        ap.appeal(chain, oml.cheater, claim_id)
    with pytest.raises(Reverted.named("NotLosingSide")):
        chain.transact(oml.cheater, appeals.functions.appeal(claim_id))
    with pytest.raises(Reverted.named("BondNotPosted")):
        chain.transact(oml.prover, appeals.functions.appeal(claim_id))
    assert ap.read_appeal(chain, claim_id).state == ap.AppealState.NONE
    rec = ap.appeal(chain, oml.prover, claim_id)
    assert rec.state == ap.AppealState.PENDING and rec.appellant == oml.prover.address
    with pytest.raises(Reverted.named("AlreadyAppealed")):
        ap.appeal(chain, oml.prover, claim_id)
    with pytest.raises(Reverted.named("NotGovernor")):
        chain.transact(dev_signer(22), appeals.functions.decide(claim_id, True))  # a member alone is not the DAO
    assert not ap.release_when_final(chain, oml.prover, claim_id, wait=True)  # pending: nothing to release

    _dao_decides(chain, claim_id, reverse=True)
    assert read_claim(chain, claim_id).status == ClaimStatus.CONFIRMED
    assert ap.read_appeal(chain, claim_id).state == ap.AppealState.REVERSED
    assert chain.call(staking.functions.stakeOf(oml.cheater.address)) == 0  # slashed on appeal
    assert bal(oml.prover.address) == prover_before + STAKE * 2_000 // 10_000  # share; claim + appeal bonds back
    colluders = [v.address for v in oml.verifiers[1:]]
    assert sorted(ap.overturned_majority(chain, claim_id)) == sorted(colluders)
    stakes = {v: chain.call(staking.functions.stakeOf(v)) for v in colluders}
    penalties = ap.penalise_overturned(chain, oml.prover, claim_id)
    assert penalties == {v: oml_deploy.OVERTURN_PENALTY for v in colluders}
    for v in colluders:
        assert chain.call(staking.functions.stakeOf(v)) == stakes[v] - oml_deploy.OVERTURN_PENALTY
    assert bal(oml.prover.address) == prover_before + STAKE * 2_000 // 10_000 + 2 * oml_deploy.OVERTURN_PENALTY
    assert ap.penalise_overturned(chain, oml.prover, claim_id) == {}  # once each


def test_appeal_after_window_reverts_and_payouts_release(oml):
    chain, claims = oml.chain, oml.chain.contract("Claims")
    appeals, token = chain.contract("ClaimAppeals"), chain.contract("LoyalToken")
    prover_before = chain.call(token.functions.balanceOf(oml.prover.address))
    claim_id = _decided_claim(oml, confirms=3)
    assert chain.call(token.functions.balanceOf(oml.prover.address)) == prover_before - chain.call(
        claims.functions.claimBond())  # held in escrow
    chain.advance_time(oml_deploy.APPEAL_WINDOW + 1)
    chain.transact(oml.cheater, token.functions.approve(appeals.address, oml_deploy.APPEAL_BOND))
    with pytest.raises(Reverted.named("AppealWindowClosed")):
        chain.transact(oml.cheater, appeals.functions.appeal(claim_id))
    assert ap.release_when_final(chain, oml.prover, claim_id)
    assert chain.call(token.functions.balanceOf(oml.prover.address)) == prover_before + STAKE * 2_000 // 10_000
    with pytest.raises(ap.NotAppealable):
        ap.appeal(chain, oml.cheater, claim_id)


def test_upheld_appeal_forfeits_bond_to_the_winner(oml):
    chain, token = oml.chain, oml.chain.contract("LoyalToken")
    claim_id = _decided_claim(oml, confirms=2)
    cheater_before = chain.call(token.functions.balanceOf(oml.cheater.address))
    prover_mid = chain.call(token.functions.balanceOf(oml.prover.address))
    ap.appeal(chain, oml.cheater, claim_id)
    _dao_decides(chain, claim_id, reverse=False)
    assert ap.read_appeal(chain, claim_id).state == ap.AppealState.UPHELD
    assert chain.call(token.functions.balanceOf(oml.cheater.address)) == cheater_before - oml_deploy.APPEAL_BOND
    assert ap.release_when_final(chain, oml.prover, claim_id)
    assert chain.call(token.functions.balanceOf(oml.prover.address)) == (
        prover_mid + oml_deploy.APPEAL_BOND + STAKE * 2_000 // 10_000 + chain.call(
            chain.contract("Claims").functions.claimBond()))
    assert ap.overturned_majority(chain, claim_id) == []
