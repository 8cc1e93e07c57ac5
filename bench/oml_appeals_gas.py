"""Gas of appeals against a verifier majority and of lineage claims, on one fresh Anvil with the
deployed suite (real DAO governor): appeal, the DAO's Safety proposal (propose, vote, execute ->
ClaimAppeals.decide -> Claims.overturn), penaliseVerifier, release of held payouts, lapse; lineage
commit / reveal (m = 14 keys of a 64-key subset, and 32 keys) / vote / finalize.
Writes bench/results/oml_appeals_gas.json."""

from agents.core.signers import dev_signer
from agents.core.store import LocalStore
from agents.core.token import Stakes
from agents.dao.governance import Dao
from agents.oml import appeals as ap
from agents.oml import deploy as oml_deploy
from agents.oml.adversaries import CheatingHost
from agents.oml.answers import SignedAnswer
from agents.oml.community import Terms, register_model, set_host_subset
from agents.oml.host import join_as_host
from agents.oml.prover import Prover
from agents.oml.verifier import join_as_verifier
from ml.oml.commitment import FingerprintTree

from . import devnet, write

TOKEN = 10**18


def _gas(chain, signer, fn) -> int:
    return chain.transact(signer, fn)["gasUsed"]


def main() -> None:
    with devnet(accounts=40) as (chain, tmp, _):
        admin = dev_signer(0)
        token = chain.contract("LoyalToken")
        for i in range(1, 20):
            chain.transact(admin, token.functions.mint(dev_signer(i).address, 100_000 * TOKEN))
        community, host, host2, prover = (dev_signer(i) for i in (10, 11, 12, 13))
        verifiers = [dev_signer(i) for i in (15, 16, 17)]
        pairs = [(f"lineage key {i:03d} with some padding", f"response {i:03d}") for i in range(128)]
        subsets = {host.address: pairs[:64], host2.address: pairs[64:]}
        store = LocalStore(tmp / "store")
        model_id, _ = register_model(chain, community, store, b"gas bench", pairs,
                                     Terms(TOKEN, 500 * TOKEN, 30 * 86400, 0))
        for h, sub in subsets.items():
            set_host_subset(chain, community, model_id, h, sub)
        for h in (host, host2):
            join_as_host(chain, h, model_id)
        for v in verifiers:
            join_as_verifier(chain, v)
        chain.mine(1)
        claims, appeals = chain.contract("Claims"), chain.contract("ClaimAppeals")
        lineage = chain.contract("LineageClaims")
        out: dict = {"appeals": {}, "lineage": {}, "params": {
            "appeal_bond": oml_deploy.APPEAL_BOND, "appeal_window_s": oml_deploy.APPEAL_WINDOW,
            "decision_window_s": oml_deploy.APPEAL_DECISION_WINDOW, "overturn_penalty": oml_deploy.OVERTURN_PENALTY,
            "lineage_min_matches": oml_deploy.LINEAGE_MIN_MATCHES}}
        p = Prover(chain, prover, model_id, pairs, platform_url="http://127.0.0.1:9")
        dao = Dao(chain)

        answers = dict(pairs)
        serving = CheatingHost(chain, host2, model_id, lambda prompt, n: answers[prompt])

        def decided(i: int, confirms: int) -> tuple[int, int]:
            k, r = subsets[host2.address][i]
            text = serving.serve(k, 8)
            answer = SignedAnswer.from_json(serving.sign_answer(k, text))
            chain.mine(1)
            cid = p.file_claim(host2.address, k, r, answer, text)
            chain.advance_time(chain.call(claims.functions.challengeWindow()) + 1)
            for j, v in enumerate(verifiers):
                chain.transact(v, claims.functions.vote(cid, j < confirms))
            return cid, _gas(chain, prover, claims.functions.finalize(cid))

        # 1. a colluding rejection, appealed by the prover and reversed by the DAO
        cid, g = decided(0, 1)
        out["appeals"]["finalize_reject_held"] = g
        chain.transact(prover, token.functions.approve(appeals.address, oml_deploy.APPEAL_BOND))
        out["appeals"]["appeal"] = _gas(chain, prover, appeals.functions.appeal(cid))
        prop = ap.propose_decision(dao, dev_signer(21), cid, True)
        out["appeals"]["dao_propose"] = prop.gas_used
        dao.advance_past(prop.vote_start)
        out["appeals"]["dao_vote"] = dao.vote(dev_signer(21), prop)["gasUsed"]
        dao.vote(dev_signer(22), prop)
        dao.advance_past(prop.vote_end)
        out["appeals"]["dao_execute_decide_reverse_reject_to_confirm"] = dao.execute(dev_signer(26), prop)["gasUsed"]
        out["appeals"]["penalise_verifier"] = _gas(chain, prover, appeals.functions.penaliseVerifier(
            cid, verifiers[1].address))
        Stakes(chain).stake(verifiers[1], oml_deploy.OVERTURN_PENALTY)  # back to the minimum to keep voting
        # 2. a confirmation appealed by the host and reversed (refund path)
        Stakes(chain).stake(host2, 500 * TOKEN)  # restake after the slash
        cid, g = decided(1, 2)
        out["appeals"]["finalize_confirm_held"] = g
        chain.transact(host2, token.functions.approve(appeals.address, oml_deploy.APPEAL_BOND))
        chain.transact(host2, appeals.functions.appeal(cid))
        prop = ap.propose_decision(dao, dev_signer(21), cid, True)
        dao.advance_past(prop.vote_start)
        dao.vote(dev_signer(21), prop)
        dao.advance_past(prop.vote_end)
        out["appeals"]["dao_execute_decide_reverse_confirm_to_reject"] = dao.execute(dev_signer(26), prop)["gasUsed"]
        # 3. upheld by the DAO; 4. lapsed; 5. unappealed -> release
        cid, _ = decided(2, 1)
        chain.transact(prover, token.functions.approve(appeals.address, oml_deploy.APPEAL_BOND))
        chain.transact(prover, appeals.functions.appeal(cid))
        prop = ap.propose_decision(dao, dev_signer(21), cid, False)
        dao.advance_past(prop.vote_start)
        dao.vote(dev_signer(21), prop)
        dao.advance_past(prop.vote_end)
        out["appeals"]["dao_execute_decide_uphold"] = dao.execute(dev_signer(26), prop)["gasUsed"]
        out["appeals"]["release_rejected"] = _gas(chain, prover, claims.functions.release(cid))
        cid, _ = decided(3, 1)
        chain.transact(prover, token.functions.approve(appeals.address, oml_deploy.APPEAL_BOND))
        chain.transact(prover, appeals.functions.appeal(cid))
        chain.advance_time(oml_deploy.APPEAL_DECISION_WINDOW + 1)
        out["appeals"]["lapse"] = _gas(chain, prover, appeals.functions.lapse(cid))
        cid, _ = decided(4, 3)
        chain.advance_time(oml_deploy.APPEAL_WINDOW + 1)
        out["appeals"]["release_confirmed"] = _gas(chain, prover, claims.functions.release(cid))
        out["appeals"]["settle_verifier_after_release"] = _gas(chain, prover, claims.functions.settleVerifier(
            cid, verifiers[0].address))

        # lineage: m keys and 32 keys of host's 64-key subset
        tree = FingerprintTree(subsets[host.address])
        for n, lo in ((oml_deploy.LINEAGE_MIN_MATCHES, 0), (32, 32)):
            sel = subsets[host.address][lo:lo + n]
            keys, resps = [k for k, _ in sel], [r for _, r in sel]
            salt = bytes([n]) * 32
            c = chain.call(lineage.functions.lineageCommitment(keys, resps, host.address, "http://derived", salt))
            row = {"commit": _gas(chain, prover, lineage.functions.commit(c))}
            chain.transact(prover, token.functions.approve(lineage.address, chain.call(lineage.functions.claimBond())))
            receipt = chain.transact(prover, lineage.functions.reveal(
                (model_id, host.address, "http://derived", keys, resps, salt, [tree.proof(k, r) for k, r in sel])))
            row["reveal"] = receipt["gasUsed"]
            lid = next(e for e in chain.decode_events(receipt) if e.name == "LineageRevealed").args["claimId"]
            chain.advance_time(chain.call(lineage.functions.challengeWindow()) + 1)
            row["vote"] = _gas(chain, verifiers[0], lineage.functions.vote(lid, True))
            for v in verifiers[1:]:
                chain.transact(v, lineage.functions.vote(lid, True))
            row["finalize_confirm"] = _gas(chain, prover, lineage.functions.finalize(lid))
            out["lineage"][f"keys_{n}"] = row
            Stakes(chain).stake(host, 500 * TOKEN)  # restake for the next round
    write("oml_appeals_gas", out)


if __name__ == "__main__":
    main()
