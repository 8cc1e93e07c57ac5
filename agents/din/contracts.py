"""Thin typed wrapper over the DIN contracts (DinTasks, DinRounds, DinScoring).

Only what the agents need: reads return plain Python values, writes go through `Chain.transact`
(custom errors raise `Reverted.named(...)`). Commitment formats match the contracts' NatSpec.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from agents.core.chain import Chain
from agents.core.token import Token
from agents.core.views import read, record_as

GLOBAL = 2**256 - 1  # DinRounds.GLOBAL: subgroup key of the global-model vote
SCALE = 1_000_000  # DinScoring.SCALE: a score of 1.0


class Stage(IntEnum):
    """DinTasks.Stage, plus Registration (before round 0) as -1."""
    Registration = -1
    Submit = 0
    UpdateReveal = 1
    AggregateCommit = 2
    AggregateReveal = 3
    GlobalCommit = 4
    GlobalReveal = 5
    Close = 6
    Settle = 7


ROUND_STAGES = [Stage.Submit, Stage.UpdateReveal, Stage.AggregateCommit, Stage.AggregateReveal, Stage.GlobalCommit,
                Stage.GlobalReveal]


@dataclass(frozen=True)
class TaskConfig:
    """What a Model Owner chooses (amounts in token wei, durations in seconds)."""
    reward: int
    evaluator_fee: int
    participant_bond: int
    min_evaluator_stake: int
    slash_amount: int
    rounds: int = 3
    subgroup_size: int = 10
    evaluators_per_subgroup: int = 3
    max_evaluators: int = 8
    registration_seconds: int = 3600
    submit_seconds: int = 3600
    commit_seconds: int = 1800
    reveal_seconds: int = 1800
    secure_aggregation: bool = False  # participants upload pairwise-masked updates (ml/din/secagg.py)

    @property
    def deposit(self) -> int:
        return self.reward + self.evaluator_fee * self.max_evaluators


@dataclass(frozen=True)
class Params:
    """DinTasks.TaskParams of one task (amounts in token wei, durations in seconds), plus
    `rounds_held` (DinTasks.roundsHeld: `rounds`, or fewer once the owner ended the task early),
    which the schedule's Close and Settle stages follow."""
    test_slice_root: bytes
    reward: int
    evaluator_fee: int
    participant_bond: int
    min_evaluator_stake: int
    slash_amount: int
    registration_end: int
    submit_duration: int
    commit_duration: int
    reveal_duration: int
    rounds: int
    subgroup_size: int
    evaluators_per_subgroup: int
    max_evaluators: int
    secure_aggregation: bool
    rounds_held: int

    @property
    def round_length(self) -> int:
        return self.submit_duration + 2 * self.commit_duration + 3 * self.reveal_duration

    def window(self, round_: int, stage: Stage) -> tuple[int, int]:
        """[start, end) of `stage`; mirrors DinTasks.window."""
        c, r = self.commit_duration, self.reveal_duration
        length = self.round_length
        if stage == Stage.Registration:
            return 0, self.registration_end
        if stage >= Stage.Close:
            s = self.registration_end + self.rounds_held * length
            return {Stage.Close: (s, s + c), Stage.Settle: (s + c, 2**64 - 1)}[stage]
        start = self.registration_end + round_ * length
        lengths = [self.submit_duration, r, c, r, c, r]
        start += sum(lengths[: int(stage)])
        return start, start + lengths[int(stage)]

    def stage_at(self, ts: int) -> tuple[Stage, int]:
        """(stage, round) at timestamp `ts` (round is 0 for Registration, Close and Settle)."""
        if ts < self.registration_end:
            return Stage.Registration, 0
        r = (ts - self.registration_end) // self.round_length
        if r >= self.rounds_held:
            for st in (Stage.Close, Stage.Settle):
                s, e = self.window(0, st)
                if s <= ts < e:
                    return st, 0
        for st in ROUND_STAGES:
            s, e = self.window(r, st)
            if s <= ts < e:
                return st, r
        raise AssertionError("unreachable: windows tile the schedule")


class Tally(NamedTuple):
    """DinRounds.tally of one subgroup (or GLOBAL) in one round."""
    best_hash: bytes
    best_votes: int
    finalized: bool
    accepted: bool


class Vote(NamedTuple):
    """DinRounds.voteOf: an evaluator's commitment and revealed CID hash (zero until revealed)."""
    commitment: bytes
    revealed: bytes


class Scores(NamedTuple):
    """DinScoring.scoresFor one subgroup in one round: the assigned evaluators that revealed, and
    each one's scores (one per member, registration order)."""
    evaluators: list[str]
    scores: list[list[int]]


class Members(NamedTuple):
    """DinTasks.subgroupMembers: the subgroup's participants and whether each revealed an update."""
    members: list[str]
    revealed: list[bool]


class Standing(NamedTuple):
    """DinScoring.standingOf: sum of medians over scored rounds, unscored rounds it took part in, claimed."""
    score_sum: int
    unscored_rounds: int
    reward_claimed: bool


def update_commitment(task: int, round_: int, who: str, cid: str, salt: bytes) -> bytes:
    """DinTasks.commitUpdate's commitment: keccak(abi.encode(taskId, round, participant, cid, salt))."""
    return keccak(abi_encode(["uint256", "uint256", "address", "string", "bytes32"], [task, round_, who, cid, salt]))


def vote_commitment(task: int, round_: int, group: int, who: str, cid: str, salt: bytes) -> bytes:
    return keccak(abi_encode(["uint256", "uint256", "uint256", "address", "string", "bytes32"],
                             [task, round_, group, who, cid, salt]))


def score_commitment(task: int, round_: int, group: int, who: str, scores: list[int], salt: bytes) -> bytes:
    """DinScoring.commitScores: keccak(abi.encode(taskId, round, group, evaluator, uint32[] scores, salt))."""
    return keccak(abi_encode(["uint256", "uint256", "uint256", "address", "uint32[]", "bytes32"],
                             [task, round_, group, who, scores, salt]))


def seed_commitment(task: int, who: str, seed: bytes) -> bytes:
    return keccak(abi_encode(["uint256", "address", "bytes32"], [task, who, seed]))


def lower_median(values: list[int]) -> int:
    """The median DinScoring accepts: sorted index (n - 1) // 2; 0 for no values."""
    return sorted(values)[(len(values) - 1) // 2] if values else 0


class Din:
    """The three DIN contracts of one chain's address book."""

    def __init__(self, chain: Chain):
        self.chain = chain
        self.tasks = chain.contract("DinTasks")
        self.rounds = chain.contract("DinRounds")
        self.scoring = chain.contract("DinScoring")
        self.token = chain.contract("LoyalToken")
        self.staking = chain.contract("Staking")
        self.pay = Token(chain)
        self._params: dict[int, Params] = {}

    def _tx(self, signer: LocalAccount, fn) -> dict:
        return self.chain.transact(signer, fn)

    def _call(self, fn):
        return self.chain.call(fn)

    def _read(self, fn):
        """A struct or multi-output view as a Record (by member name)."""
        return read(self.chain, fn)

    # -- time ----------------------------------------------------------------------------
    def now(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def stage(self, task: int) -> tuple[Stage, int]:
        return self.params(task).stage_at(self.now())

    # -- tasks ---------------------------------------------------------------------------
    def params(self, task: int) -> Params:
        """The task's parameters (cached: only `rounds_held` can change, see `note_rounds_held`)."""
        if task not in self._params:
            self._params[task] = record_as(Params, self._read(self.tasks.functions.params(task)),
                                           rounds_held=self.rounds_held(task))
        return self._params[task]

    def rounds_held(self, task: int) -> int:
        return self._call(self.tasks.functions.roundsHeld(task))

    def note_rounds_held(self, task: int, rounds_held: int) -> None:
        """The task was ended early (a `TaskEndedEarly` event): update the cached parameters."""
        if task in self._params and self._params[task].rounds_held != rounds_held:
            self._params[task] = dataclasses.replace(self._params[task], rounds_held=rounds_held)

    def end_after_round(self, owner: LocalAccount, task: int, round_: int) -> dict:
        receipt = self._tx(owner, self.tasks.functions.endAfterRound(task, round_))
        self.note_rounds_held(task, round_ + 1)
        return receipt

    def create_task(self, owner: LocalAccount, cfg: TaskConfig, genesis_cid: str, test_commitment: bytes) -> int:
        p = (test_commitment, cfg.reward, cfg.evaluator_fee, cfg.participant_bond, cfg.min_evaluator_stake,
             cfg.slash_amount, self.now() + cfg.registration_seconds, cfg.submit_seconds, cfg.commit_seconds,
             cfg.reveal_seconds, cfg.rounds, cfg.subgroup_size, cfg.evaluators_per_subgroup, cfg.max_evaluators,
             cfg.secure_aggregation)
        receipt = self.pay.pay_and_call(owner, self.tasks.address, cfg.deposit,
                                        self.tasks.functions.createTask(p, genesis_cid), purpose="the task deposit")
        (ev,) = [e for e in self.chain.decode_events(receipt) if e.name == "TaskCreated"]
        return int(ev.args["taskId"])

    def task_info(self, task: int) -> dict:
        """owner, deposit, paid_out, participants, genesis_hash."""
        return self._read(self.tasks.functions.taskInfo(task)).snake()

    def participant_count(self, task: int) -> int:
        return self._call(self.tasks.functions.participantCount(task))

    def participant_at(self, task: int, i: int) -> str:
        return self._call(self.tasks.functions.participantAt(task, i))

    def is_participant(self, task: int, who: str) -> bool:
        return self._call(self.tasks.functions.isParticipant(task, who))

    def subgroup_count(self, task: int) -> int:
        return self._call(self.tasks.functions.subgroupCount(task))

    def update_revealed(self, task: int, round_: int, who: str) -> bool:
        """`who` revealed its update of `round_` (the CID is in the `UpdateRevealed` event)."""
        return self._call(self.tasks.functions.updateRevealed(task, round_, who))

    def update_commitment_of(self, task: int, round_: int, who: str) -> bytes:
        """`who`'s commitment for `round_`: zero if none, DinTasks.REVEALED once revealed."""
        return bytes(self._call(self.tasks.functions.updateCommitment(task, round_, who)))

    def register(self, signer: LocalAccount, task: int) -> dict:
        return self.pay.pay_and_call(signer, self.tasks.address, self.params(task).participant_bond,
                                     self.tasks.functions.register(task), purpose="the participant bond")

    def commit_update(self, signer: LocalAccount, task: int, round_: int, cid: str, salt: bytes) -> dict:
        c = update_commitment(task, round_, signer.address, cid, salt)
        return self._tx(signer, self.tasks.functions.commitUpdate(task, round_, c))

    def reveal_update(self, signer: LocalAccount, task: int, round_: int, cid: str, salt: bytes) -> dict:
        return self._tx(signer, self.tasks.functions.revealUpdate(task, round_, cid, salt))

    def participant_index(self, task: int, who: str) -> int:
        return self._call(self.tasks.functions.participantIndex(task, who))

    # -- slash pool ------------------------------------------------------------------------
    def slash_pool(self, task: int) -> int:
        return self._call(self.rounds.functions.slashPool(task))

    def slash_share_of(self, task: int, who: str) -> int:
        return self._call(self.rounds.functions.slashShareOf(task, who))

    def claim_slash_share(self, signer: LocalAccount, task: int) -> dict:
        return self._tx(signer, self.rounds.functions.claimSlashShare(task))

    # -- cancellation ----------------------------------------------------------------------
    def cancelled(self, task: int) -> bool:
        return self._call(self.tasks.functions.cancelled(task))

    def cancel_task(self, signer: LocalAccount, task: int) -> dict:
        return self._tx(signer, self.rounds.functions.cancelTask(task))

    def reclaim_deposit(self, signer: LocalAccount, task: int) -> dict:
        return self._tx(signer, self.tasks.functions.reclaimDeposit(task))

    # -- secure aggregation ----------------------------------------------------------------
    def mask_key_of(self, task: int, who: str) -> bytes:
        return bytes(self._call(self.tasks.functions.maskKeyOf(task, who)))

    def set_mask_key(self, signer: LocalAccount, task: int, public_key: bytes) -> dict:
        return self._tx(signer, self.tasks.functions.setMaskKey(task, public_key))

    def mask_status(self, task: int, round_: int, group: int) -> dict:
        """members, submitted, recovery_posts."""
        return self._read(self.tasks.functions.maskStatus(task, round_, group)).snake()

    def aggregatable(self, task: int, round_: int, group: int) -> bool:
        return self._call(self.tasks.functions.aggregatable(task, round_, group))

    def recovery_posted(self, task: int, round_: int, who: str) -> bool:
        return self._call(self.tasks.functions.recoveryPosted(task, round_, who))

    def post_recovery_seeds(self, signer: LocalAccount, task: int, round_: int, seeds: dict[str, bytes]) -> dict:
        """Post `seeds` (dropped member -> pair seed); sent in ascending address order as the contract requires."""
        dropped = sorted(seeds, key=lambda a: int(a, 16))
        return self._tx(signer, self.tasks.functions.postRecoverySeeds(task, round_, dropped,
                                                                       [seeds[d] for d in dropped]))

    def reveal_test_slice(self, signer: LocalAccount, task: int, round_: int, cid: str, slice_hash: bytes,
                          proof: list[bytes]) -> dict:
        return self._tx(signer, self.tasks.functions.revealTestSlice(task, round_, cid, slice_hash, proof))

    def test_slice(self, task: int, round_: int) -> bytes:
        """keccak of round `round_`'s revealed test slice (zero until revealed)."""
        return bytes(self._call(self.tasks.functions.testSlice(task, round_)))

    def subgroup_members(self, task: int, round_: int, group: int) -> Members:
        return record_as(Members, self._read(self.tasks.functions.subgroupMembers(task, round_, group)))

    def bond_returned(self, task: int, who: str) -> bool:
        return self._call(self.tasks.functions.bondReturned(task, who))

    def withdraw_bond(self, signer: LocalAccount, task: int) -> dict:
        return self._tx(signer, self.tasks.functions.withdrawBond(task))

    # -- evaluators ----------------------------------------------------------------------
    def stake(self, signer: LocalAccount, amount: int) -> dict:
        return self.pay.pay_and_call(signer, self.staking.address, amount, self.staking.functions.stake(amount),
                                     purpose="the evaluator stake")

    def stake_of(self, who: str) -> int:
        return self._call(self.staking.functions.stakeOf(who))

    def enrol(self, signer: LocalAccount, task: int, seed: bytes) -> dict:
        return self._tx(signer, self.rounds.functions.enrol(task, seed_commitment(task, signer.address, seed)))

    def is_evaluator(self, task: int, who: str) -> bool:
        return self._call(self.rounds.functions.isEvaluator(task, who))

    def evaluators(self, task: int) -> list[str]:
        n = self._call(self.rounds.functions.evaluatorCount(task))
        return [self._call(self.rounds.functions.evaluatorAt(task, i)) for i in range(n)]

    def seed_revealed(self, task: int, who: str) -> bool:
        return self._call(self.rounds.functions.seedRevealed(task, who))

    def reveal_seed(self, signer: LocalAccount, task: int, seed: bytes) -> dict:
        return self._tx(signer, self.rounds.functions.revealSeed(task, seed))

    def round_seed(self, task: int, round_: int) -> bytes:
        return bytes(self._call(self.rounds.functions.roundSeed(task, round_)))

    def draw_round_seed(self, signer: LocalAccount, task: int, round_: int) -> dict:
        return self._tx(signer, self.rounds.functions.drawRoundSeed(task, round_))

    def assigned_subgroups(self, task: int, round_: int, who: str) -> list[int]:
        return list(self._call(self.rounds.functions.assignedSubgroups(task, round_, who)))

    def subgroup_evaluators(self, task: int, round_: int, group: int) -> list[str]:
        return list(self._call(self.rounds.functions.subgroupEvaluators(task, round_, group)))

    def vote_of(self, task: int, round_: int, group: int, who: str) -> Vote:
        return record_as(Vote, self._read(self.rounds.functions.voteOf(task, round_, group, who)))

    def tally(self, task: int, round_: int, group: int) -> Tally:
        return record_as(Tally, self._read(self.rounds.functions.tally(task, round_, group)))

    def commit_aggregate(self, signer, task, round_, group, cid, salt) -> dict:
        c = vote_commitment(task, round_, group, signer.address, cid, salt)
        return self._tx(signer, self.rounds.functions.commitAggregate(task, round_, group, c))

    def reveal_aggregate(self, signer, task, round_, group, cid, salt) -> dict:
        return self._tx(signer, self.rounds.functions.revealAggregate(task, round_, group, cid, salt))

    def finalize_subgroup(self, signer, task, round_, group) -> dict:
        return self._tx(signer, self.rounds.functions.finalizeSubgroup(task, round_, group))

    def commit_global(self, signer, task, round_, cid, salt) -> dict:
        c = vote_commitment(task, round_, GLOBAL, signer.address, cid, salt)
        return self._tx(signer, self.rounds.functions.commitGlobal(task, round_, c))

    def reveal_global(self, signer, task, round_, cid, salt) -> dict:
        return self._tx(signer, self.rounds.functions.revealGlobal(task, round_, cid, salt))

    def finalize_global(self, signer, task, round_) -> dict:
        return self._tx(signer, self.rounds.functions.finalizeGlobal(task, round_))

    def settle_global_votes(self, signer, task, round_, limit: int) -> dict:
        return self._tx(signer, self.rounds.functions.settleGlobalVotes(task, round_, limit))

    def global_votes_progress(self, task: int, round_: int) -> tuple[int, int]:
        """(roster positions settled, roster size) of `round_`'s global vote."""
        r = self._read(self.rounds.functions.globalVotesProgress(task, round_))
        return r["settled"], r["roster"]

    def is_eligible(self, task: int, round_: int, who: str) -> bool:
        """`who` is in `round_`'s roster (enrolled, not barred)."""
        return self._call(self.rounds.functions.isEligible(task, round_, who))

    def barred_from(self, task: int, who: str) -> int:
        """One more than the first round `who` is barred from (0 = not barred)."""
        return self._call(self.rounds.functions.barredFrom(task, who))

    def active_evaluators(self, task: int) -> int:
        """Evaluators not barred: the roster of the next round to be drawn."""
        return self._call(self.rounds.functions.activeEvaluators(task))

    def roster_size(self, task: int, round_: int) -> int:
        return self._call(self.rounds.functions.rosterSize(task, round_))

    # -- scoring -------------------------------------------------------------------------
    def score_vote_of(self, task: int, round_: int, group: int, who: str) -> dict:
        """commitment, revealed."""
        return self._read(self.scoring.functions.scoreVoteOf(task, round_, group, who)).snake()

    def commit_scores(self, signer, task: int, round_: int, group: int, scores: list[int], salt: bytes) -> dict:
        c = score_commitment(task, round_, group, signer.address, scores, salt)
        return self._tx(signer, self.scoring.functions.commitScores(task, round_, group, c))

    def reveal_scores(self, signer, task: int, round_: int, group: int, scores: list[int], salt: bytes) -> dict:
        return self._tx(signer, self.scoring.functions.revealScores(task, round_, group, scores, salt))

    def scores_for(self, task: int, round_: int, group: int) -> Scores:
        return record_as(Scores, self._read(self.scoring.functions.scoresFor(task, round_, group)))

    def subgroup_settled(self, task: int, round_: int, group: int) -> bool:
        return self._call(self.scoring.functions.subgroupSettled(task, round_, group))

    def settle_subgroup(self, signer, task: int, round_: int, group: int, medians: list[int]) -> dict:
        return self._tx(signer, self.scoring.functions.settleSubgroup(task, round_, group, medians))

    def standing_of(self, task: int, who: str) -> Standing:
        return record_as(Standing, self._read(self.scoring.functions.standingOf(task, who)))

    def account_of(self, task: int, who: str) -> dict:
        """agreed, fee_claimed."""
        return self._read(self.scoring.functions.accountOf(task, who)).snake()

    def totals(self, task: int) -> dict:
        """settled_groups, groups_to_settle, scored_rounds, sum_scores, slots, sum_agreed, owner_refunded."""
        return self._read(self.scoring.functions.totals(task)).snake()

    def all_settled(self, task: int) -> bool:
        return self._call(self.scoring.functions.allSettled(task))

    def reward_of(self, task: int, who: str) -> int:
        return self._call(self.scoring.functions.rewardOf(task, who))

    def fee_of(self, task: int, who: str) -> int:
        return self._call(self.scoring.functions.feeOf(task, who))

    def owner_refund_of(self, task: int) -> int:
        return self._call(self.scoring.functions.ownerRefundOf(task))

    def claim_reward(self, signer, task: int) -> dict:
        return self._tx(signer, self.scoring.functions.claimReward(task))

    def claim_fee(self, signer, task: int) -> dict:
        return self._tx(signer, self.scoring.functions.claimFee(task))

    def refund_owner(self, signer, task: int) -> dict:
        return self._tx(signer, self.scoring.functions.refundOwner(task))
