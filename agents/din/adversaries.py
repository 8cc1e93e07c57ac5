"""Dishonest DIN actors for `loyal din demo` and the tests: each is an honest daemon with one
decision overridden, so the production classes carry no switch for misbehaving.

- `LazyEvaluator`: enrols and reveals its seed, then does nothing (slashed as a no-show).
- `ForgingEvaluator`: votes for an aggregate nobody else computed (outvoted, slashed as a dissenter).
- `GarbageScorer`: scores every member 1.0 (moves no median; earns no fee for those scores).
- `DropoutParticipant`: registers, then never commits an update.
- `WithholdingParticipant`: commits to an update and never reveals it (an unrevealed commitment
  counts as no submission).
- `NearCopyParticipant`: submits another participant's update with ~0.1% noise (a disguised copy).
- `WithholdingOwner`: never reveals the test slices of some rounds.
A label-flipping poisoner needs no class: it is an honest participant trained on a flipped shard
(`ml.din.data.flip_labels`).
"""
from __future__ import annotations

import numpy as np

from ml.din import model as M

from .contracts import SCALE, Stage
from .evaluator import EvaluatorDaemon
from .owner import OwnerDaemon
from .participant import ParticipantDaemon


class LazyEvaluator(EvaluatorDaemon):
    def work(self, stage: Stage, round_: int) -> int:
        return 0


class ForgingEvaluator(EvaluatorDaemon):
    def publish_aggregate(self, blob: bytes) -> str:
        return super().publish_aggregate(b"forged by " + self.address.encode() + blob)


class GarbageScorer(EvaluatorDaemon):
    def score_vector(self, round_: int, group: int, test) -> list[int]:
        return [SCALE] * len(super().score_vector(round_, group, test))


class DropoutParticipant(ParticipantDaemon):
    def _commit(self, round_: int) -> int:
        return 0


class WithholdingParticipant(ParticipantDaemon):
    def _reveal(self, round_: int) -> int:
        return 0


def near_copy(update: bytes) -> bytes:
    """A copier's disguise: the update with every coordinate moved by ~0.1% of the mean magnitude
    (new bytes and CID, cosine ~1 with the original)."""
    state = M.from_bytes(update)
    layout = M.layout_of(state)
    v = M.flatten(state, layout)
    noise = np.random.default_rng(7).standard_normal(v.shape).astype(np.float32)
    return M.to_bytes(M.unflatten(v + np.float32(1e-3 * float(np.abs(v).mean())) * noise, layout))


class NearCopyParticipant(ParticipantDaemon):
    """Trains on its original's data with the same seed (it holds the original's update, as a
    colluder would) and perturbs it slightly before committing."""

    def train(self, global_bytes: bytes, round_: int) -> bytes:
        return near_copy(super().train(global_bytes, round_))


class WithholdingOwner(OwnerDaemon):
    def __init__(self, *a, withhold: tuple[int, ...], **kw):
        super().__init__(*a, **kw)
        self.withhold = tuple(withhold)

    def _reveal_slice(self, round_: int) -> int:
        return 0 if round_ in self.withhold else super()._reveal_slice(round_)
