"""Evaluator daemon: enrols with stake, reveals its seed, aggregates the subgroups it is assigned
to (bit-reproducible fixed-point mean, so honest evaluators publish the same CID), votes on the
round's global model, scores the members of the subgroups it is assigned to on the round's test
slice (commit in GlobalCommit, reveal in GlobalReveal), settles subgroup medians, claims fees.

Scoring work per assignment is O(subgroup size): the test gradient once, one cosine per member.
Copy screening (clear tasks, `ml.din.copies`) compares the subgroup's members with every update of
the round, so it reads all the round's revealed updates (one dot product each, no model run).

Secure-aggregation tasks: the evaluator waits until the chain says a subgroup is aggregatable
(enough survivors, every survivor's recovery seeds posted), then runs `secagg.aggregate_masked`
over the masked uploads with the posted seeds: the same bytes as the clear mean of the survivors'
updates, so honest evaluators agree. If the unmasked sum is unusable (a member uploaded garbage or
a wrong seed was posted; masking hides who), every honest evaluator commits the CID of the same
fixed REJECTED blob (clear tasks do the same when every update of a subgroup is unusable), which
the global model skips and which scores 0. A subgroup with no submission at all cannot be
aggregated (the chain refuses commitments) and is closed without slashing. Scores are per subgroup
(`scoring.score_subgroups`, normalised over the round's accepted aggregates): each survivor gets its
subgroup's score for the round. Clear tasks normalise within the subgroup (its best update scores 1).

Blobs come through `self.blobs` (`agents/din/blobs.py`): an update that cannot be fetched (never
stored, not a CID, corrupt, oversized) is unusable like unparsable bytes — left out of the
aggregate, scored 0 — so honest evaluators still agree and nobody is slashed for it; in a
secure-aggregation subgroup a missing masked upload makes the sum unusable (REJECTED). An accepted
aggregate that cannot be fetched or used is left out of the global model like a REJECTED one.

Dishonest evaluators (a no-show, a forger, a garbage scorer) are subclasses in `adversaries.py`
(demo and tests); this class is the honest one.
"""
from __future__ import annotations

from common.errors import TransientError
from common.units import format_amount
from ml.din import aggregate as A
from ml.din import copies as C
from ml.din import data
from ml.din import model as M
from ml.din import scoring as S
from ml.din import secagg as SA
from ml.din.errors import BadUpdate, RecoveryImpossible

from .blobs import max_blob_bytes
from .contracts import GLOBAL, SCALE, Stage, lower_median
from .daemon import DinDaemon
from .slices import slice_from

SEED_TAG, AGG_TAG, GLOBAL_TAG, SCORE_TAG = 1, 2, 3, 4
GLOBAL_PAGE = 100  # global votes settled per transaction (DinRounds.settleGlobalVotes)
# What honest evaluators publish for a subgroup with no usable result (clear mode: every update
# unusable; secure aggregation: the unmasked sum is unusable), so they still agree on one CID.
REJECTED = b"loyal-din-secagg-v1: subgroup sum unusable"


def usable_mean(blobs: dict[str, bytes], layout: M.Layout, weights: dict[str, int] | None = None, *,
                note=lambda msg: None) -> bytes | None:
    """Fixed-point (weighted) mean of the blobs that are usable updates of `layout`, dropping each
    one `aggregate` refuses (unparsable, wrong names/shapes, NaN, out of range); None if none is."""
    blobs = dict(blobs)
    while blobs:
        try:
            return A.aggregate(blobs, layout, None if weights is None else {k: weights[k] for k in blobs})
        except BadUpdate as e:
            if e.who not in blobs:
                raise
            note(f"dropped {e.who}: {e.reason}")
            del blobs[e.who]
    return None


class EvaluatorDaemon(DinDaemon):
    role = "evaluator"

    def enrolled(self) -> bool:
        return self.latched("enrolled", lambda: self.din.is_evaluator(self.task, self.address))

    def seed_revealed(self) -> bool:
        return self.latched("seed revealed", lambda: self.din.seed_revealed(self.task, self.address))

    # -- dispatch --------------------------------------------------------------------------
    def act(self, stage: Stage, round_: int) -> int:
        sent = self.join(stage, round_)
        if stage == Stage.Registration or not self.enrolled():
            return sent
        return sent + self.work(stage, round_)

    def join(self, stage: Stage, round_: int) -> int:
        """Enrol during registration; reveal the enrolment seed in round 0."""
        din, task = self.din, self.task
        if stage == Stage.Registration:
            if not self.enrolled():
                self.genesis_model()  # an evaluator that cannot see the task's content would only be slashed
                din.enrol(self.signer, task, self.secret(task, SEED_TAG))
                self.note("enrolled")
                return 1
            return 0
        if self.enrolled() and stage == Stage.Submit and round_ == 0 and not self.seed_revealed():
            din.reveal_seed(self.signer, task, self.secret(task, SEED_TAG))
            return 1
        return 0

    def work(self, stage: Stage, round_: int) -> int:
        """The evaluator's duties in `stage`: aggregate, vote, score, settle, claim."""
        din, task = self.din, self.task
        sent = 0
        p = din.params(task)
        if stage == Stage.Submit and round_ > 0:
            sent += self._finalize_global(round_ - 1) + self._settle_round(round_ - 1, mine=True)
        elif stage == Stage.AggregateCommit:
            sent += self._commit_aggregates(round_)
        elif stage == Stage.AggregateReveal:
            sent += self._reveal_aggregates(round_)
        elif stage == Stage.GlobalCommit:
            sent += self._finalize_subgroups(round_) + self._commit_global(round_) + self._commit_scores(round_)
        elif stage == Stage.GlobalReveal:
            sent += self._reveal_global(round_) + self._reveal_scores(round_)
        elif stage == Stage.Close:
            sent += self._finalize_global(p.rounds_held - 1) + self._settle_round(p.rounds_held - 1, mine=True)
        elif stage == Stage.Settle:
            sent += (sum(self._settle_round(r) for r in range(p.rounds_held)) + self._claim_fee()
                     + self._claim_slash_share())
        return sent

    # -- aggregates ------------------------------------------------------------------------
    def aggregate_cid(self, round_: int, group: int) -> str | None:
        """Aggregate the subgroup's submitted updates (dropping unusable ones); None if none usable."""
        if self.din.params(self.task).secure_aggregation:
            return self.masked_aggregate_cid(round_, group)
        submitted = self.index.updates(round_, group)
        if not submitted:
            return None  # nothing submitted: the chain does not let anyone aggregate it
        self.genesis_model()  # the task's layout; a daemon that cannot see the task's content stops here
        updates, _ = self.blobs.updates(submitted, f"round {round_} group {group}")
        blob = usable_mean(updates, self.blobs.layout, note=lambda m: self.note(f"round {round_} group {group}: {m}"))
        if blob is None:
            self.note(f"round {round_} group {group}: every update unusable")
            blob = REJECTED
        return self.publish_aggregate(blob)

    def masked_aggregate_cid(self, round_: int, group: int) -> str | None:
        """Secure aggregation: unmask the subgroup's sum with the posted recovery seeds. None while
        the chain says the subgroup is not aggregatable (too few survivors or seeds pending)."""
        if not self.din.aggregatable(self.task, round_, group):
            return None
        self.genesis_model()
        layout = self.blobs.layout
        masked, unavailable = self.blobs.updates(self.index.updates(round_, group), f"round {round_} group {group}")
        try:
            if unavailable:  # its masks cannot be cancelled without it: the sum is unusable
                raise BadUpdate(f"masked upload unavailable: {unavailable[min(unavailable)]}", min(unavailable))
            blob = SA.aggregate_masked(masked, self.index.mask_keys(group), layout,
                                       self.index.recovery(round_, group))
        except RecoveryImpossible as e:
            self.note(f"round {round_} group {group}: {e}")
            return None
        except BadUpdate as e:
            self.note(f"round {round_} group {group}: unusable sum ({e.reason})")
            blob = REJECTED
        return self.publish_aggregate(blob)

    def publish_aggregate(self, blob: bytes) -> str:
        """Store the aggregate this evaluator will vote for; its CID."""
        return self.store.put(blob)

    def _commit_aggregates(self, round_: int) -> int:
        din, task = self.din, self.task
        sent = 0
        if din.round_seed(task, round_) == b"\x00" * 32:
            k = din.params(task).evaluators_per_subgroup
            if din.active_evaluators(task) < k:
                self.note(f"round {round_}: fewer than {k} evaluators left unbarred: the round cannot be drawn")
                return 0
            din.draw_round_seed(self.signer, task, round_)
            sent += 1
        for g in din.assigned_subgroups(task, round_, self.address):
            if din.vote_of(task, round_, g, self.address).commitment != b"\x00" * 32:
                continue
            cid = self.aggregate_cid(round_, g)
            if cid is None:
                continue
            self.index.local[f"agg/{round_}/{g}"] = cid
            self.index.commit_local()
            din.commit_aggregate(self.signer, task, round_, g, cid, self.secret(task, AGG_TAG, round_, g))
            self.note(f"round {round_} group {g}: committed aggregate")
            sent += 1
        return sent

    def _reveal_aggregates(self, round_: int) -> int:
        din, task = self.din, self.task
        sent = 0
        for g in din.assigned_subgroups(task, round_, self.address):
            vote = din.vote_of(task, round_, g, self.address)
            if vote.commitment == b"\x00" * 32 or vote.revealed != b"\x00" * 32:
                continue
            cid = self.index.local.get(f"agg/{round_}/{g}") or self.aggregate_cid(round_, g)
            din.reveal_aggregate(self.signer, task, round_, g, cid, self.secret(task, AGG_TAG, round_, g))
            sent += 1
        return sent

    def _finalize_subgroups(self, round_: int) -> int:
        sent = 0
        for g in range(self.din.subgroup_count(self.task)):
            if not self.tally(round_, g).finalized:
                self.din.finalize_subgroup(self.signer, self.task, round_, g)
                sent += 1
        return sent

    # -- global model ----------------------------------------------------------------------
    def global_cid(self, round_: int) -> str:
        """The round's global model: previous global + combination of the accepted aggregates,
        each weighted by its subgroup's number of submitted updates. Anyone can recompute it.
        Accepted aggregates that are REJECTED, unavailable or unusable are left out."""
        prev_cid, prev = self.global_before(round_)
        aggs = self.accepted_aggregates(round_)
        counts = {g: len(self.index.updates(round_, int(g))) for g in aggs}
        combined = usable_mean(aggs, self.blobs.layout, counts,
                               note=lambda m: self.note(f"round {round_} accepted aggregate: {m}"))
        if combined is None:
            return prev_cid
        return self.store.put(A.next_global(prev, combined))

    def _commit_global(self, round_: int) -> int:
        if self.din.vote_of(self.task, round_, GLOBAL, self.address).commitment != b"\x00" * 32:
            return 0
        if not self.din.is_eligible(self.task, round_, self.address):
            return 0  # barred (found at fault in an earlier round): not in this round's roster
        cid = self.global_cid(round_)
        self.index.local[f"global/{round_}"] = cid
        self.index.commit_local()
        self.din.commit_global(self.signer, self.task, round_, cid, self.secret(self.task, GLOBAL_TAG, round_))
        return 1

    def _reveal_global(self, round_: int) -> int:
        vote = self.din.vote_of(self.task, round_, GLOBAL, self.address)
        if vote.commitment == b"\x00" * 32 or vote.revealed != b"\x00" * 32:
            return 0
        cid = self.index.local.get(f"global/{round_}") or self.global_cid(round_)
        self.din.reveal_global(self.signer, self.task, round_, cid, self.secret(self.task, GLOBAL_TAG, round_))
        return 1

    def _finalize_global(self, round_: int) -> int:
        """Close `round_`'s global vote, then settle its voters (slash and bar no-shows and
        dissenters) in pages of GLOBAL_PAGE."""
        sent = 0
        if not self.tally(round_, GLOBAL).finalized:
            self.din.finalize_global(self.signer, self.task, round_)
            sent += 1
        if self.latched(f"global settled/{round_}", lambda: self._global_votes_settled(round_)):
            return sent
        settled, roster = self.din.global_votes_progress(self.task, round_)
        for _ in range(settled, roster, GLOBAL_PAGE):
            self.din.settle_global_votes(self.signer, self.task, round_, GLOBAL_PAGE)
            sent += 1
        return sent

    def _global_votes_settled(self, round_: int) -> bool:
        settled, roster = self.din.global_votes_progress(self.task, round_)
        return settled >= roster

    # -- scores ----------------------------------------------------------------------------
    def test_slice(self, round_: int) -> data.Shard | None:
        """Round `round_`'s test slice, checked against the hash revealed on-chain (None until
        revealed, or when its bytes cannot be fetched: then this evaluator cannot score the round)."""
        cid = self.index.slice_cid(round_)
        if cid is None:
            return None
        blob = self.blobs.fetch(cid, f"test slice of round {round_}")
        if blob is None:
            return None
        return slice_from(blob, self.din.test_slice(self.task, round_), round_)

    def accepted_aggregates(self, round_: int) -> dict[str, bytes]:
        """Subgroup id -> accepted aggregate bytes of `round_` (REJECTED and unavailable ones left out)."""
        self.genesis_model()
        limit = max_blob_bytes(self.blobs.layout)
        out = {}
        for g in range(self.din.subgroup_count(self.task)):
            tally = self.tally(round_, g)
            if tally.accepted:
                cid = self.index.cid(tally.best_hash)
                if cid is None:
                    raise TransientError(f"accepted aggregate of round {round_} group {g} has no revealed CID yet")
                blob = self.blobs.fetch(cid, f"accepted aggregate of round {round_} group {g}", limit)
                if blob is not None and blob != REJECTED:
                    out[str(g)] = blob
        return out

    def score_vector(self, round_: int, group: int, test: data.Shard) -> list[int]:
        """Scores of subgroup `group`'s members for `round_` on the round's slice, registration
        order, scaled to SCALE; 0 for a member without a revealed update. Clear mode: per update,
        copies 0. Secure aggregation: the subgroup's accepted aggregate's score for each survivor."""
        members, revealed = self.din.subgroup_members(self.task, round_, group)
        live = [m for m, ok in zip(members, revealed) if ok]
        _, glob = self.global_before(round_)
        if self.din.params(self.task).secure_aggregation:
            scores = S.score_subgroups(glob, self.accepted_aggregates(round_), {str(group): live}, test).scores
        else:
            # unavailable updates are unusable: 0, and nothing to compare a copy with
            everyone, _ = self.blobs.updates(self.index.all_updates(round_), f"round {round_}")
            scores = self.score_clear(glob, everyone, self.index.commit_orders(round_), test,
                                      among=[m for m in live if m in everyone])
        return [max(0, min(SCALE, round(scores.get(m, 0.0) * SCALE))) if ok else 0
                for m, ok in zip(members, revealed)]

    def score_clear(self, glob: bytes, updates: dict[str, bytes], orders: dict[str, int],
                    test: data.Shard, *, among: list[str]) -> dict[str, float]:
        """Clear mode: the scores of `among` (one subgroup's members), normalised within them; copies
        (ml.din.copies: identical to or within COPY_COSINE of any update of the round committed
        earlier) score 0 and are left out of the normalisation."""
        copies = C.find_copies(updates, orders, M.layout_of(M.from_bytes(glob)), among=among)
        for who, original in copies.items():
            self.note(f"{who}'s update copies {original}'s (committed earlier): scored 0")
        mine = {w: updates[w] for w in among if w not in copies}
        return {**S.score_updates(glob, mine, test).scores, **{w: 0.0 for w in copies}}

    def _commit_scores(self, round_: int) -> int:
        din, task = self.din, self.task
        test = None
        sent = 0
        for g in din.assigned_subgroups(task, round_, self.address):
            if din.score_vote_of(task, round_, g, self.address)["commitment"] != b"\x00" * 32:
                continue
            test = test or self.test_slice(round_)
            if test is None:
                return sent  # the owner has not revealed the slice (the chain refuses scores without it)
            scores = self.score_vector(round_, g, test)
            self.index.local[f"scores/{round_}/{g}"] = scores
            self.index.commit_local()
            din.commit_scores(self.signer, task, round_, g, scores, self.secret(task, SCORE_TAG, round_, g))
            sent += 1
        return sent

    def _reveal_scores(self, round_: int) -> int:
        din, task = self.din, self.task
        sent = 0
        for g in din.assigned_subgroups(task, round_, self.address):
            vote = din.score_vote_of(task, round_, g, self.address)
            if vote["commitment"] == b"\x00" * 32 or vote["revealed"]:
                continue
            scores = self.index.local.get(f"scores/{round_}/{g}")
            if scores is None:
                test = self.test_slice(round_)
                scores = self.score_vector(round_, g, test)
            din.reveal_scores(self.signer, task, round_, g, scores, self.secret(task, SCORE_TAG, round_, g))
            sent += 1
        return sent

    def medians(self, round_: int, group: int) -> list[int]:
        """What `settleSubgroup` expects: each member's lower median over the revealed vectors (0
        without a revealed update); nothing for an unscored subgroup (the round's slice withheld, or
        no more than half of its assigned evaluators revealed scores)."""
        if self.din.test_slice(self.task, round_) == b"\x00" * 32 or self.din.round_seed(self.task, round_) == b"\x00" * 32:
            return []
        k = len(self.din.subgroup_evaluators(self.task, round_, group))
        vectors = self.din.scores_for(self.task, round_, group).scores
        if len(vectors) * 2 <= k:
            return []
        _, revealed = self.din.subgroup_members(self.task, round_, group)
        return [lower_median([v[i] for v in vectors]) if ok else 0 for i, ok in enumerate(revealed)]

    def _settle_round(self, round_: int, *, mine: bool = False) -> int:
        """Settle the subgroups of `round_` (only those this evaluator is assigned to with `mine`)."""
        din, task = self.din, self.task
        if mine:
            if din.round_seed(task, round_) == b"\x00" * 32:
                return 0
            groups = din.assigned_subgroups(task, round_, self.address)
        else:
            groups = range(din.subgroup_count(task))
        sent = 0
        for g in groups:
            if self.latched(f"settled/{round_}/{g}", lambda: din.subgroup_settled(task, round_, g)):
                continue
            din.settle_subgroup(self.signer, task, round_, g, self.medians(round_, g))
            self._latched[f"settled/{round_}/{g}"] = True
            sent += 1
        return sent

    def _claim_slash_share(self) -> int:
        """Settle stage: this evaluator's share of the stake slashed from the task's offenders."""
        share = self.din.slash_share_of(self.task, self.address)
        if share == 0:
            return 0  # nothing slashed, at fault itself, or already claimed
        self.din.claim_slash_share(self.signer, self.task)
        self.note(f"claimed slash-pool share of {format_amount(share)}")
        return 1

    def _claim_fee(self) -> int:
        fee = self.din.fee_of(self.task, self.address)  # 0 until everything is settled, and once claimed
        if fee == 0:
            return 0
        self.din.claim_fee(self.signer, self.task)
        self.note(f"claimed fee of {format_amount(fee)}")
        return 1
