"""DIN pages from the index: tasks, rounds (updates, subgroup aggregates and votes, global model,
test slices), scores (each round, the evaluators assigned to a subgroup score its members; who
scored what, the medians, who agreed), payouts and slashes against the deposit."""
from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..rows import Row, Rows

DIN = ("DinTasks", "DinRounds", "DinScoring")
SCALE = 1_000_000  # DinScoring.SCALE: a score of 1.0
HALF = 500_000  # DinScoring.HALF: an evaluator agrees with a median within this distance
GLOBAL = 2**256 - 1  # DinRounds.GLOBAL: the "group" of the global-model vote


@dataclass
class Subgroup:
    group: int
    aggregates: list[Row] = field(default_factory=list)  # AggregateRevealed
    votes: list[Row] = field(default_factory=list)  # VoteCommitted
    finalized: Row | None = None  # SubgroupFinalized


@dataclass
class Round:
    number: int
    seed: Row | None = None
    updates: list[Row] = field(default_factory=list)
    subgroups: dict[int, Subgroup] = field(default_factory=dict)
    globals: list[Row] = field(default_factory=list)  # GlobalRevealed
    global_votes: list[Row] = field(default_factory=list)  # VoteCommitted for the global model
    finalized: Row | None = None  # GlobalFinalized
    slashes: list[Row] = field(default_factory=list)

    @property
    def accepted_subgroups(self) -> int:
        return sum(1 for s in self.subgroups.values() if s.finalized and s.finalized.args["accepted"])


@dataclass
class Participant:
    index: int
    address: str
    subgroup: int
    updates: dict[int, str] = field(default_factory=dict)  # round -> revealed CID
    medians: dict[int, int] = field(default_factory=dict)  # scored round -> settled median
    agreeing: int | None = None  # (round, evaluator) scores within HALF of the round's median
    reward: int = 0
    bond_returned: int = 0

    @property
    def median(self) -> int | None:
        """The mean of its settled medians over the rounds its subgroup was scored (None before)."""
        return sum(self.medians.values()) // len(self.medians) if self.medians else None


@dataclass
class Evaluator:
    address: str
    index: int
    round_scores: dict[tuple[int, int], int] = field(default_factory=dict)  # (round, participant index) -> score
    scores_readable: bool = True  # scores travel in ScoresRevealed: always readable
    complete: bool = False  # revealed at least one subgroup's scores

    @property
    def scores(self) -> dict[int, int]:
        """participant index -> the mean of the scores it revealed for it (over the rounds it scored it)."""
        per: dict[int, list[int]] = defaultdict(list)
        for (_, i), s in self.round_scores.items():
            per[i].append(s)
        return {i: sum(v) // len(v) for i, v in per.items()}
    slashed: int = 0
    fee: int = 0
    slash_share: int = 0


@dataclass
class Money:
    """The deposit and where it went, from the events (wei)."""
    deposit: int
    rewards: int = 0  # RewardClaimed
    fees: int = 0  # FeeClaimed
    owner_refund: int = 0  # OwnerRefunded
    reclaimed: int = 0  # DepositReclaimed (cancelled task)
    paid: int = 0  # sum of DinTasks.Paid
    paid_out: int = 0  # the last Paid's running total
    bonds_returned: int = 0
    slashed: int = 0  # EvaluatorSlashed (stake, not deposit)
    slash_shares: int = 0  # SlashShareClaimed

    @property
    def held(self) -> int:
        return self.deposit - self.paid - self.reclaimed

    @property
    def reconciled(self) -> bool:
        """Every payout is accounted for by a claim, the running total agrees, nothing beyond the deposit."""
        return (self.rewards + self.fees + self.owner_refund == self.paid and self.paid_out == self.paid
                and self.paid + self.reclaimed <= self.deposit)


@dataclass
class Task:
    id: int
    created: Row
    params: dict
    test_set: Row | None = None  # the latest TestSliceRevealed
    slices: list[Row] = field(default_factory=list)  # TestSliceRevealed, one per round revealed
    rounds_held: int | None = None  # TaskEndedEarly: the owner ended the task after fewer rounds
    cancelled: Row | None = None
    participants: dict[int, Participant] = field(default_factory=dict)
    evaluators: dict[str, Evaluator] = field(default_factory=dict)
    rounds: dict[int, Round] = field(default_factory=dict)
    settled: list[Row] = field(default_factory=list)
    payouts: list[Row] = field(default_factory=list)
    slashes: list[Row] = field(default_factory=list)
    money: Money | None = None
    accuracy: list[tuple[str, float | None]] | None = None  # the owner's off-chain evaluation, if given
    accuracy_source: str | None = None

    @property
    def owner(self) -> str:
        return self.created.args["owner"]

    @property
    def stage(self) -> str:
        if self.cancelled:
            return "cancelled"
        groups = -(-len(self.participants) // max(1, int(self.params["subgroupSize"])))
        if self.money and self.money.fees + self.money.rewards + self.money.owner_refund and self.settled and \
                len(self.settled) == groups * self.held:
            return "settled, paying out"
        if self.settled:
            return "scoring"
        done = [r for r in self.rounds.values() if r.finalized]
        if done:
            return f"round {max(r.number for r in done)} of {self.params['rounds']} finalized"
        return "registration" if not self.rounds else "round 0"

    @property
    def held(self) -> int:
        """Rounds the task holds (fewer than planned once the owner ended it early)."""
        return self.rounds_held if self.rounds_held is not None else int(self.params["rounds"])

    def round(self, n: int) -> Round:
        return self.rounds.setdefault(n, Round(n))

    def score_rows(self) -> list[dict]:
        """One row per participant: each evaluator's (mean) score for it, its mean median, and
        whether the evaluator agreed (within HALF) with the median in every settled round it scored."""
        evs = sorted(self.evaluators.values(), key=lambda e: e.index)
        out = []
        for p in sorted(self.participants.values(), key=lambda p: p.index):
            cells = []
            for e in evs:
                s = e.scores.get(p.index)
                judged = [abs(v - p.medians[r]) <= HALF for (r, i), v in e.round_scores.items()
                          if i == p.index and r in p.medians]
                cells.append((s, all(judged) if judged else None))
            out.append({"participant": p, "cells": cells})
        return out


def tasks(rows: Rows) -> list[dict]:
    created = rows.events("DinTasks", "TaskCreated")
    by_task = defaultdict(list)
    for r in rows.events(DIN, ("ParticipantRegistered", "GlobalFinalized", "TaskCancelled", "SubgroupSettled")):
        by_task[r.subject].append(r)
    out = []
    for c in created:
        evs = by_task[c.subject]
        out.append({"row": c, "id": c.int("taskId"), "owner": c.args["owner"], "deposit": c.int("deposit"),
                    "rounds": c.args["params"]["rounds"],
                    "participants": sum(1 for r in evs if r.event == "ParticipantRegistered"),
                    "rounds_done": sum(1 for r in evs if r.event == "GlobalFinalized"),
                    "settled": sum(1 for r in evs if r.event == "SubgroupSettled"),
                    "cancelled": any(r.event == "TaskCancelled" for r in evs)})
    return out


def task(rows: Rows, task_id: int, reports: Path | None = None) -> Task | None:
    evs = rows.events(DIN, subject=task_id)
    created = next((r for r in evs if r.event == "TaskCreated"), None)
    if created is None:
        return None
    t = Task(task_id, created, created.args["params"])
    m = t.money = Money(created.int("deposit"))
    for r in evs:
        a, name = r.args, r.event
        if name == "ParticipantRegistered":
            t.participants[int(a["index"])] = Participant(int(a["index"]), a["participant"], int(a["subgroup"]))
        elif name == "UpdateRevealed":
            rd = t.round(int(a["round"]))
            rd.updates.append(r)
            for p in t.participants.values():
                if p.address == a["participant"]:
                    p.updates[rd.number] = a["cid"]
        elif name == "EvaluatorEnrolled":
            t.evaluators[a["evaluator"]] = Evaluator(a["evaluator"], int(a["index"]))
        elif name == "RoundSeedDrawn":
            t.round(int(a["round"])).seed = r
        elif name == "VoteCommitted" and int(a["group"]) == GLOBAL:
            t.round(int(a["round"])).global_votes.append(r)
        elif name == "VoteCommitted":
            _subgroup(t, a).votes.append(r)
        elif name == "AggregateRevealed":
            _subgroup(t, a).aggregates.append(r)
        elif name == "SubgroupFinalized":
            _subgroup(t, a).finalized = r
        elif name == "GlobalRevealed":
            t.round(int(a["round"])).globals.append(r)
        elif name == "GlobalFinalized":
            t.round(int(a["round"])).finalized = r
        elif name == "EvaluatorSlashed":
            t.round(int(a["round"])).slashes.append(r)
            t.slashes.append(r)
            m.slashed += int(a["amount"])
            _evaluator(t, a["evaluator"]).slashed += int(a["amount"])
        elif name == "SlashShareClaimed":
            m.slash_shares += int(a["amount"])
            if a["account"] in t.evaluators:
                t.evaluators[a["account"]].slash_share += int(a["amount"])
        elif name == "ScoresRevealed":
            e = _evaluator(t, a["evaluator"])
            first = int(a["group"]) * int(t.params["subgroupSize"])
            for i, s in enumerate(a["scores"]):
                e.round_scores[(int(a["round"]), first + i)] = int(s)
            e.complete = True
        elif name == "SubgroupSettled":
            t.settled.append(r)
            first = int(a["group"]) * int(t.params["subgroupSize"])
            for i, med in enumerate(a["medians"]):  # empty for an unscored subgroup
                p = t.participants.get(first + i)
                if p is not None:
                    p.medians[int(a["round"])] = int(med)
        elif name == "Paid":
            t.payouts.append(r)
            m.paid += int(a["amount"])
            m.paid_out = int(a["paidOut"])
        elif name == "RewardClaimed":
            m.rewards += int(a["amount"])
            for p in t.participants.values():
                if p.address == a["participant"]:
                    p.reward += int(a["amount"])
        elif name == "FeeClaimed":
            m.fees += int(a["amount"])
            _evaluator(t, a["evaluator"]).fee += int(a["amount"])
        elif name == "OwnerRefunded":
            m.owner_refund += int(a["amount"])
        elif name == "DepositReclaimed":
            m.reclaimed += int(a["amount"])
        elif name == "BondReturned":
            m.bonds_returned += int(a["amount"])
            for p in t.participants.values():
                if p.address == a["participant"]:
                    p.bond_returned += int(a["amount"])
        elif name == "TestSliceRevealed":
            t.slices.append(r)
            t.test_set = r
        elif name == "TaskEndedEarly":
            t.rounds_held = int(a["roundsHeld"])
        elif name == "TaskCancelled":
            t.cancelled = r
    for p in t.participants.values():
        p.agreeing = sum(1 for e in t.evaluators.values() for (rd, i), v in e.round_scores.items()
                         if i == p.index and rd in p.medians and abs(v - p.medians[rd]) <= HALF) if p.medians else None
    if reports is not None:
        t.accuracy, t.accuracy_source = owner_accuracy(reports, task_id)
    return t


def _subgroup(t: Task, a: dict) -> Subgroup:
    rd = t.round(int(a["round"]))
    g = int(a["group"])
    return rd.subgroups.setdefault(g, Subgroup(g))


def _evaluator(t: Task, address: str) -> Evaluator:
    if address not in t.evaluators:
        t.evaluators[address] = Evaluator(address, len(t.evaluators))
    return t.evaluators[address]


def owner_accuracy(reports: Path, task_id: int) -> tuple[list[tuple[str, float | None]] | None, str | None]:
    """The owner's off-chain test accuracy per round (`loyal din owner` writes
    `<reports>/task<N>/accuracy.csv`); (None, None) when there is no such file."""
    path = Path(reports) / f"task{task_id}" / "accuracy.csv"
    if not path.is_file():
        return None, None
    out: list[tuple[str, float | None]] = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            v = row.get("test_accuracy") or ""
            try:
                out.append((row["round"], float(v) if v else None))
            except (KeyError, ValueError):
                return None, None
    return out, str(path)
