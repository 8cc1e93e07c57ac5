"""Scoring on the owner's test set: a label-flipping poisoner scores ~0 in clear mode and drags
down every subgroup it joins in secure-aggregation mode; garbage updates are rejected with 0."""
import numpy as np
import pytest
import torch

from ml.din import aggregate as A
from ml.din import client as C
from ml.din import data
from ml.din import model as M
from ml.din import scoring as S

POISONER = "p07"
ROUNDS = 3


@pytest.fixture(scope="module")
def rounds():
    """3 real FedAvg rounds over 20 shards, p07 training on flipped labels; for each round also
    p07's counterfactual honest update (same shard, true labels)."""
    split = data.split(20, seed=0)
    shards = {f"p{i:02d}": s for i, s in enumerate(split.shards)}
    honest_shard = shards[POISONER]
    shards[POISONER] = data.flip_labels(honest_shard)
    g = M.to_bytes(M.state_of(M.build(seed=0)))
    layout = M.layout_of(M.from_bytes(g))
    out = []
    for r in range(ROUNDS):
        ups = {k: C.train_update(g, s, {"seed": r}) for k, s in shards.items()}
        honest = C.train_update(g, honest_shard, {"seed": r})
        out.append((g, ups, honest))
        g = A.next_global(g, A.aggregate(ups, layout))
    return split.test, layout, out


def test_clear_mode_poisoner_scores_about_zero(rounds):
    test, _, per_round = rounds
    for g, ups, _ in per_round:
        sc = S.score_updates(g, ups, test)
        assert set(sc.scores) == set(ups) and all(0.0 <= v <= 1.0 for v in sc.scores.values())
        assert max(sc.scores.values()) == 1.0
        honest = [v for k, v in sc.scores.items() if k != POISONER]
        assert sc.scores[POISONER] <= 0.05 and sc.alignment[POISONER] < 0, sc.alignment[POISONER]
        assert float(np.median(honest)) >= 0.5
        # the 0.5-from-median rule separates it from the honest median
        assert float(np.median(honest)) - sc.scores[POISONER] > 0.45


def test_secagg_mode_poisoner_drags_down_every_subgroup_it_joins(rounds):
    test, layout, per_round = rounds
    rng = np.random.default_rng(42)
    poisoned_rounds, honest_rounds = [], []
    for g, ups, honest in per_round:
        ids = [str(i) for i in rng.permutation(sorted(ups))]  # subgroups re-randomised every round
        groups = {f"s{j}": ids[5 * j:5 * j + 5] for j in range(4)}
        mine = next(k for k, m in groups.items() if POISONER in m)

        def subgroup_scores(updates):
            aggs = {k: A.aggregate({p: updates[p] for p in m}, layout) for k, m in groups.items()}
            return S.score_subgroups(g, aggs, groups, test)

        bad = subgroup_scores(ups)
        good = subgroup_scores({**ups, POISONER: honest})
        assert bad.alignment[mine] < good.alignment[mine]
        assert all(bad.scores[p] == bad.scores[POISONER] for p in groups[mine])  # members share it
        poisoned_rounds.append(bad.scores)
        honest_rounds.append(good.scores)
    assert S.mean_over_rounds(poisoned_rounds)[POISONER] < S.mean_over_rounds(honest_rounds)[POISONER]


def test_garbage_updates_are_rejected_with_score_zero(rounds):
    test, layout, per_round = rounds
    g, ups, _ = per_round[1]
    good = M.from_bytes(ups["p00"])
    nan = {k: v.clone() for k, v in good.items()}
    nan["fc1.weight"][0, 0] = float("nan")
    garbage = {
        "nan": M.to_bytes(nan),
        "shape": M.to_bytes({**good, "fc1.weight": torch.zeros(64, 63)}),
        "bytes": b"\x07" * 100,
        "huge": M.to_bytes({k: torch.full_like(v, 1e9) for k, v in good.items()}),
        "zero": M.to_bytes({k: torch.zeros_like(v) for k, v in good.items()}),
        "boosted": M.to_bytes({k: 10 * v for k, v in good.items()}),
        "random": M.to_bytes({k: torch.randn(v.shape, generator=torch.Generator().manual_seed(1)) * 0.05
                              for k, v in good.items()}),
    }
    sc = S.score_updates(g, {**ups, **garbage}, test)
    assert set(sc.rejected) == {"nan", "shape", "bytes", "huge"}
    assert "NaN" in sc.rejected["nan"] and "shape" in sc.rejected["shape"]
    assert all(sc.scores[k] == 0.0 for k in ("nan", "shape", "bytes", "huge", "zero"))
    assert sc.scores["boosted"] == pytest.approx(sc.scores["p00"], abs=1e-6)  # scaling buys nothing
    assert sc.scores["p00"] > 0
    assert sc.scores["random"] < 0.2  # a random direction barely aligns with the test gradient


def test_fedavg_of_the_poisoned_rounds_still_learns(rounds):
    test, layout, per_round = rounds
    first = S.evaluate(M.from_bytes(per_round[0][0]), test).accuracy
    last = S.evaluate(M.from_bytes(per_round[-1][0]), test).accuracy
    assert last > first + 0.3
