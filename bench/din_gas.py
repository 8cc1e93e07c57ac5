"""DIN gas: every protocol transaction on a real Anvil, for N = 10, 50, 100 participants.

    .venv/bin/python -m bench.din_gas [--label after]

Contracts only (CIDs are realistic 59-character strings, no ML): registration, update commit and
reveal per participant per round, the owner's test-slice reveal, evaluator commit/reveal per
subgroup, finalisation, per-subgroup score commit/reveal by the subgroup's assigned evaluators
(gas per score), per-subgroup median settlement (gas per participant), claims.
Results go under `--label` in bench/results/din_gas.json (other labels are kept, so the file holds
the before/after comparison of a protocol change).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

from agents.core.chain import Chain
from agents.core.signers import dev_signer
from bench import devnet
from agents.din.contracts import Din, Stage, TaskConfig, lower_median
from common.merkle import StandardMerkleTree

OUT = Path(__file__).resolve().parent / "results" / "din_gas.json"
TOKEN = 10**18
SUBGROUP = 10


def tag_cid(tag: str) -> str:
    from agents.core.store import cid_of

    return cid_of(tag.encode())  # a real CIDv1 of some bytes: same length as a model's


def funded_task(chain: Chain, din: Din, n: int, evaluators: int, k: int, first: int, **extra):
    """A fresh task: owner, `n` participants and `evaluators` evaluators (dev accounts from `first`),
    everyone minted what they need, evaluators staked. Returns (owner, ps, es, cfg, task)."""
    admin = dev_signer(0)
    owner = dev_signer(first)
    ps = [dev_signer(first + 1 + i) for i in range(n)]
    es = [dev_signer(first + 1 + n + i) for i in range(evaluators)]
    cfg = TaskConfig(reward=1000 * TOKEN, evaluator_fee=TOKEN, participant_bond=TOKEN, min_evaluator_stake=10 * TOKEN,
                     slash_amount=TOKEN, rounds=1, subgroup_size=SUBGROUP, evaluators_per_subgroup=k,
                     max_evaluators=max(evaluators, extra.pop("max_evaluators", 0)), **extra)
    for a, amt in [(owner, cfg.deposit)] + [(p, TOKEN) for p in ps] + [(e, 10 * TOKEN) for e in es]:
        chain.transact(admin, din.token.functions.mint(a.address, amt))
    for e in es:
        din.stake(e, 10 * TOKEN)
    return owner, ps, es, cfg, din.create_task(owner, cfg, tag_cid("genesis"), SLICES.root)


SLICE_HASH = b"\x11" * 32
SLICES = StandardMerkleTree.of([(0, SLICE_HASH)], ("uint256", "bytes32"))  # one round, one slice


def run_task(chain: Chain, din: Din, n: int, evaluators: int, k: int, first: int) -> dict:
    owner, ps, es, cfg, task = funded_task(chain, din, n, evaluators, k, first)
    gas: dict[str, list[int]] = {}

    def rec(name, receipt):
        gas.setdefault(name, []).append(receipt["gasUsed"])

    for p in ps:
        din.pay.approve(p, din.tasks.address, TOKEN)
        rec("register", din._tx(p, din.tasks.functions.register(task)))
    for i, e in enumerate(es):
        rec("enrol", din.enrol(e, task, bytes([i + 1]) * 32))
    p_ = din.params(task)
    warp = lambda st, r=0: chain.advance_time(max(0, p_.window(r, st)[0] - din.now()))  # noqa: E731
    warp(Stage.Submit)
    for i, e in enumerate(es):
        rec("revealSeed", din.reveal_seed(e, task, bytes([i + 1]) * 32))
    usalt = b"\x33" * 32
    for i, p in enumerate(ps):
        rec("commitUpdate", din.commit_update(p, task, 0, tag_cid(f"update {n} {i}"), usalt))
    warp(Stage.UpdateReveal)
    for i, p in enumerate(ps):
        rec("revealUpdate", din.reveal_update(p, task, 0, tag_cid(f"update {n} {i}"), usalt))
    warp(Stage.AggregateCommit)
    rec("drawRoundSeed", din.draw_round_seed(es[0], task, 0))
    rec("revealTestSlice", din.reveal_test_slice(owner, task, 0, tag_cid("slice 0"), SLICE_HASH,
                                                 SLICES.proof(0)))
    groups = din.subgroup_count(task)
    assigned = {e.address: din.assigned_subgroups(task, 0, e.address) for e in es}
    salt = b"\x22" * 32
    for e in es:
        for g in assigned[e.address]:
            rec("commitAggregate", din.commit_aggregate(e, task, 0, g, tag_cid(f"agg {g}"), salt))
    warp(Stage.AggregateReveal)
    for e in es:
        for g in assigned[e.address]:
            rec("revealAggregate", din.reveal_aggregate(e, task, 0, g, tag_cid(f"agg {g}"), salt))
    members = {g: din.subgroup_members(task, 0, g).members for g in range(groups)}
    vectors = {(e.address, g): [(i * 7919 + j * 104729) % 1_000_001 for i in range(len(members[g]))]
               for j, e in enumerate(es) for g in assigned[e.address]}
    warp(Stage.GlobalCommit)
    for g in range(groups):
        rec("finalizeSubgroup", din.finalize_subgroup(es[0], task, 0, g))
    for e in es:
        rec("commitGlobal", din.commit_global(e, task, 0, tag_cid("global"), salt))
        for g in assigned[e.address]:
            rec("commitScores", din.commit_scores(e, task, 0, g, vectors[e.address, g], salt))
    warp(Stage.GlobalReveal)
    per_score = []
    for e in es:
        rec("revealGlobal", din.reveal_global(e, task, 0, tag_cid("global"), salt))
        for g in assigned[e.address]:
            r = din.reveal_scores(e, task, 0, g, vectors[e.address, g], salt)
            rec("revealScores", r)
            per_score.append(r["gasUsed"] / len(members[g]))
    warp(Stage.Close)
    rec("finalizeGlobal", din.finalize_global(es[0], task, 0))
    r = din.settle_global_votes(es[0], task, 0, len(es))
    rec("settleGlobalVotes", r)
    gas.setdefault("settleGlobalVotes(per evaluator)", []).append(r["gasUsed"] // len(es))
    per_member = []
    for g in range(groups):
        vs = din.scores_for(task, 0, g).scores
        meds = [lower_median([v[i] for v in vs]) for i in range(len(members[g]))]
        r = din.settle_subgroup(es[0], task, 0, g, meds)
        rec("settleSubgroup", r)
        per_member.append(r["gasUsed"] / len(members[g]))
    warp(Stage.Settle)
    for p in ps:
        if din.reward_of(task, p.address) > 0:
            rec("claimReward", din.claim_reward(p, task))
    for e in es:
        if din.fee_of(task, e.address) > 0:
            rec("claimFee", din.claim_fee(e, task))
    out = {k: {"count": len(v), "median": int(statistics.median(v)), "max": max(v)} for k, v in gas.items()}
    out["revealScores(per score)"] = {"median": round(statistics.median(per_score))}
    out["settleSubgroup(per participant)"] = {"median": round(statistics.median(per_member))}
    out["per_participant_per_round"] = out["commitUpdate"]["median"] + out["revealUpdate"]["median"]
    # score gas per participant per round: its k evaluators' commit + reveal shares, plus its settlement share
    out["scoring_per_participant_per_round"] = round(
        k * (out["commitScores"]["median"] + out["revealScores"]["median"]) / SUBGROUP
        + out["settleSubgroup(per participant)"]["median"])
    out["evaluator_calls_per_round"] = {
        "aggregate": round(statistics.mean(len(v) for v in assigned.values()), 2),
        "subgroups": groups, "evaluators": evaluators, "per_subgroup": k}
    return out


def run_secagg(chain: Chain, din: Din, n: int, evaluators: int, k: int, first: int, dropped_per_group: int) -> dict:
    """Secure-aggregation extras: mask keys, masked submissions, recovery posts (the first
    `dropped_per_group` members of every subgroup drop out), the aggregatable-gated commit."""
    owner, ps, es, cfg, task = funded_task(chain, din, n, evaluators, k, first, secure_aggregation=True)
    gas: dict[str, list[int]] = {}

    def rec(name, receipt):
        gas.setdefault(name, []).append(receipt["gasUsed"])

    for i, p in enumerate(ps):
        din.register(p, task)
        rec("setMaskKey", din.set_mask_key(p, task, bytes([i % 255 + 1]) * 32))
    for i, e in enumerate(es):
        din.enrol(e, task, bytes([i + 1]) * 32)
    p_ = din.params(task)
    warp = lambda st, r=0: chain.advance_time(max(0, p_.window(r, st)[0] - din.now()))  # noqa: E731
    warp(Stage.Submit)
    for i, e in enumerate(es):
        din.reveal_seed(e, task, bytes([i + 1]) * 32)
    groups = [ps[g:g + 10] for g in range(0, n, 10)]
    dropped = {p.address for grp in groups for p in grp[:dropped_per_group]}
    usalt = b"\x33" * 32
    live = [(i, p) for i, p in enumerate(ps) if p.address not in dropped]
    for i, p in live:
        rec("commitUpdate (secagg)", din.commit_update(p, task, 0, tag_cid(f"masked {n} {i}"), usalt))
    warp(Stage.UpdateReveal)
    for i, p in live:
        rec("revealUpdate (secagg)", din.reveal_update(p, task, 0, tag_cid(f"masked {n} {i}"), usalt))
    warp(Stage.AggregateCommit)
    for grp in groups:
        gone = [p.address for p in grp if p.address in dropped]
        for p in grp:
            if p.address not in dropped and gone:
                rec(f"postRecoverySeeds ({len(gone)} dropped)",
                    din.post_recovery_seeds(p, task, 0, {d: bytes(32) for d in gone}))
    din.draw_round_seed(es[0], task, 0)
    salt = b"\x22" * 32
    for e in es:
        for g in din.assigned_subgroups(task, 0, e.address):
            rec("commitAggregate (secagg)", din.commit_aggregate(e, task, 0, g, tag_cid(f"agg {g}"), salt))
    return {k_: {"count": len(v), "median": int(statistics.median(v)), "max": max(v)} for k_, v in gas.items()}


def run_cancel(chain: Chain, din: Din, first: int) -> dict:
    """A stale task (participants, too few evaluators): cancel, reclaim the deposit, bonds back."""
    owner, ps, _, cfg, task = funded_task(chain, din, 3, 0, 3, first, max_evaluators=8)
    for p in ps:
        din.register(p, task)
    chain.advance_time(cfg.registration_seconds)
    out = {"cancelTask": din.cancel_task(ps[0], task)["gasUsed"],
           "reclaimDeposit": din.reclaim_deposit(owner, task)["gasUsed"],
           "withdrawBond (cancelled)": int(statistics.median(din.withdraw_bond(p, task)["gasUsed"] for p in ps))}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench.din_gas")
    ap.add_argument("--label", default="current", help="key the results are stored under (e.g. before, after)")
    args = ap.parse_args(argv)
    sizes = [10, 50, 100]
    evaluators, k = 8, 3
    results = {}
    secagg_n = 50
    with devnet(accounts=1 + sum(n + evaluators + 1 for n in sizes) + 2 * (secagg_n + evaluators + 1) + 8) as (chain, _, _):
        din = Din(chain)
        first = 1
        for n in sizes:
            results[str(n)] = run_task(chain, din, n, evaluators, k, first)
            first += n + evaluators + 1
            print(n, {k_: v for k_, v in results[str(n)].items()
                      if k_ in ("per_participant_per_round", "scoring_per_participant_per_round",
                                "settleSubgroup(per participant)", "revealScores(per score)")}, flush=True)
        secagg = {}
        for drop in (1, 3):
            secagg[f"{drop} dropped per subgroup"] = run_secagg(chain, din, secagg_n, evaluators, k, first, drop)
            first += secagg_n + evaluators + 1
        print("secagg", secagg, flush=True)
        cancel = run_cancel(chain, din, first)
        print("cancel", cancel, flush=True)
    run = {"machine": platform.platform(), "participants": results,
           "secure_aggregation": {"participants": secagg_n, "runs": secagg}, "cancellation": cancel}
    doc = json.loads(OUT.read_text()) if OUT.exists() else {}
    runs = doc.get("runs", {})
    if "participants" in doc and "runs" not in doc:  # the file's earlier layout: one unlabelled run
        runs["earlier"] = {k: doc[k] for k in ("machine", "participants", "secure_aggregation", "cancellation")
                           if k in doc}
    runs[args.label] = run
    doc = {"what": "gas per DIN transaction on Anvil (1 round, subgroup size 10, 8 evaluators, 3 per subgroup)",
           "runs": runs}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {OUT} ({args.label})")


if __name__ == "__main__":
    main()
