"""Contribution scores on the owner's test set, normalised to [0, 1] so that BlockFlow's rule
(an evaluator whose score is more than 0.5 from the median gets 0) is meaningful.

Metric: the test-loss improvement of the global model plus a small step along the update. With
g = gradient of the mean test cross-entropy at the round's global model theta and u an update,
    L(theta + eps * u/|u|) = L(theta) - eps * |g| * cos(u, -g) + O(eps^2),
so a = cos(u, -g) in [-1, 1] is the loss improvement per unit step. Then
    raw   = max(0, a)
    score = raw / max(raw over the round's candidates)     (the best scores 1, as in BlockFlow;
                                                          0 for everyone if nobody improves)
Why a first-order step and not the accuracy of theta + u: on non-IID shards an honest update
applied alone over-fits to its few classes and often lowers test accuracy, so that measure mostly
ranks label mixes; the direction of the update is what FedAvg averages. Properties: a
label-flipping poisoner points against -g and scores 0; a zero update (free-rider) scores 0;
scaling an update up does not raise its score; an unusable update (unparsable, wrong names/shapes,
NaN/inf, out of the fixed-point range) scores 0 and the reason is reported. Not rewarded: how far
a participant trained (only its direction counts).

Clear mode (`score_updates`): one candidate per participant. Secure-aggregation mode
(`score_subgroups`): the evaluator only sees subgroup means, so each member gets its subgroup's
score for the round; with subgroups re-randomised every round, `mean_over_rounds` averages them
and a poisoner drags down every subgroup it is in, diluted by its honest co-members (the price of
privacy, see docs/din-ml.md).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ml.din import model as M
from ml.din.aggregate import encode
from ml.din.data import Shard
from ml.din.errors import BadUpdate


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    loss: float


@dataclass
class Scores:
    """`scores`: id -> [0, 1]; `alignment`: id -> cos(update, -test gradient) in [-1, 1];
    `rejected`: id -> reason its update was unusable (its score is 0)."""

    scores: dict[str, float] = field(default_factory=dict)
    alignment: dict[str, float] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)


def evaluate(state: Mapping[str, torch.Tensor], test: Shard) -> Evaluation:
    """Accuracy and mean cross-entropy of a model state on a labelled set."""
    m = M.load_state(state)
    m.eval()
    with torch.no_grad():
        logits = m(torch.from_numpy(test.x))
        y = torch.from_numpy(test.y)
        loss = float(torch.nn.functional.cross_entropy(logits, y))
        acc = float((logits.argmax(1) == y).sum()) / len(test)
    return Evaluation(acc, loss)


def descent_direction(state: Mapping[str, torch.Tensor], test: Shard) -> np.ndarray:
    """-gradient of the mean test cross-entropy at `state`, flattened in layout order (float64)."""
    m = M.load_state(state)
    loss = torch.nn.functional.cross_entropy(m(torch.from_numpy(test.x)), torch.from_numpy(test.y))
    loss.backward()
    params = dict(m.named_parameters())
    return -np.concatenate([params[k].grad.numpy().astype(np.float64).ravel()
                            for k, _ in M.layout_of(state)])


def _cos(u: np.ndarray, d: np.ndarray) -> float:
    nu, nd = float(np.linalg.norm(u)), float(np.linalg.norm(d))
    return float(u @ d) / (nu * nd) if nu > 0 and nd > 0 else 0.0


def _normalise(raw: Mapping[str, float]) -> dict[str, float]:
    pos = {k: max(0.0, a) for k, a in raw.items()}
    best = max(pos.values(), default=0.0)
    return {k: (r / best if best > 0 else 0.0) for k, r in pos.items()}


def score_updates(global_bytes: bytes, updates: Mapping[str, bytes], test: Shard) -> Scores:
    """Clear mode: score each participant's update (id -> update bytes) against the global model."""
    glob = M.from_bytes(global_bytes)
    layout = M.layout_of(glob)
    direction = descent_direction(glob, test)
    out = Scores()
    for who in sorted(updates):
        try:
            u = M.flatten(M.from_bytes(updates[who], layout, who), layout, who)
            encode(u, who)  # the same range check aggregation applies
        except BadUpdate as e:
            out.rejected[who] = e.reason
            continue
        out.alignment[who] = _cos(u.astype(np.float64), direction)
    out.scores = {**_normalise(out.alignment), **{w: 0.0 for w in out.rejected}}
    return out


def score_subgroups(global_bytes: bytes, aggregates: Mapping[str, bytes],
                    members: Mapping[str, Sequence[str]], test: Shard) -> Scores:
    """Secure-aggregation mode: score each subgroup aggregate (subgroup id -> bytes) and give every
    member (`members`: subgroup id -> participant ids averaged in it, i.e. the survivors) its
    subgroup's score; a subgroup without an (accepted) aggregate scores 0. `alignment` and `rejected` are keyed by subgroup id, `scores`
    by participant id."""
    per_group = score_updates(global_bytes, aggregates, test)
    out = Scores(alignment=per_group.alignment, rejected=per_group.rejected)
    for g in sorted(members):
        for who in members[g]:
            if who in out.scores:
                raise ValueError(f"{who} is in more than one subgroup")
            out.scores[who] = per_group.scores.get(g, 0.0)
    return out


def mean_over_rounds(rounds: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Average each participant's score over the rounds it took part in."""
    acc: dict[str, list[float]] = {}
    for r in rounds:
        for who, s in r.items():
            acc.setdefault(who, []).append(float(s))
    return {who: sum(v) / len(v) for who, v in sorted(acc.items())}
