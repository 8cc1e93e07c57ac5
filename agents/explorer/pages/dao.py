"""DAO pages from the index: proposals (decoded calls, state, dates, tallies by tier, turnout),
models and hardware with their status history, OTK runs with their budget use.

A proposal's state is the governor's rule applied to the indexed events at the time of the index's
tip block (`now`): Pending before the snapshot, Active until the deadline, then Defeated or
Succeeded by the quorum (For + Abstain of the voters eligible at the snapshot, rounded up) and the
threshold of its type's rules as they were at creation, Expired after the execution window;
Executed and Canceled from their events.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..rows import Row, Rows

SUPPORT = ("Against", "For", "Abstain")
TRACKS = ("None", "Policy", "Safety", "Software", "Hardware")  # PersonnelRegistry.Track
BPS = 10_000


@dataclass
class Vote:
    row: Row
    voter: str
    support: str
    tier: int
    track: str


@dataclass
class Proposal:
    id: str  # a uint256: kept as its decimal string
    created: Row
    type: str
    rules: dict | None
    votes: list[Vote] = field(default_factory=list)
    executed: Row | None = None
    canceled: Row | None = None
    eligible: int = 0
    state: str = ""

    @property
    def args(self) -> dict:
        return self.created.args

    @property
    def calls(self) -> list[dict]:
        return self.created.data.get("calls", [])

    @property
    def short_id(self) -> str:
        return f"{self.id[:6]}…{self.id[-4:]}" if len(self.id) > 12 else self.id

    @property
    def title(self) -> str:
        return self.args["description"].splitlines()[0][:120] if self.args["description"] else "(no description)"

    @property
    def tally(self) -> dict[str, int]:
        c = Counter(v.support for v in self.votes)
        return {s: c.get(s, 0) for s in SUPPORT}

    @property
    def by_tier(self) -> list[tuple[int, dict[str, int]]]:
        tiers: dict[int, Counter] = defaultdict(Counter)
        for v in self.votes:
            tiers[v.tier][v.support] += 1
        return [(tier, {s: tiers[tier].get(s, 0) for s in SUPPORT}) for tier in sorted(tiers)]

    @property
    def quorum(self) -> int:
        if not self.rules:
            return 1
        return max(1, math.ceil(self.eligible * int(self.rules["quorumBps"]) / BPS))

    @property
    def turnout(self) -> float | None:
        return len(self.votes) / self.eligible if self.eligible else None


class Personnel:
    """Each account's (track, tier) over time, from PersonnelRegistry events (checkpoints by time)."""

    def __init__(self, rows: Rows):
        self.history: dict[str, list[tuple[int, str, int]]] = defaultdict(list)  # account -> [(time, track, tier)]
        for r in rows.events("PersonnelRegistry", ("PersonnelAdmitted", "RoleChanged", "PersonnelRemoved")):
            a = r.args
            if r.event == "PersonnelAdmitted":
                self.history[a["account"]].append((r.timestamp, r.enum("track") or TRACKS[a["track"]], int(a["tier"])))
            elif r.event == "RoleChanged":
                self.history[a["account"]].append((r.timestamp, r.enum("newTrack") or TRACKS[a["newTrack"]],
                                                   int(a["newTier"])))
            else:
                self.history[a["account"]].append((r.timestamp, "None", 0))

    def role_at(self, account: str, t: int) -> tuple[str, int]:
        """The latest role at or before time t (the registry's upperLookup)."""
        role = ("None", 0)
        for when, track, tier in self.history.get(account, ()):
            if when <= t:
                role = (track, tier)
        return role

    def eligible(self, tier_mask: int, track_mask: int, t: int) -> int:
        n = 0
        for account in self.history:
            track, tier = self.role_at(account, t)
            if tier and tier_mask & (1 << tier) and track_mask & (1 << TRACKS.index(track)):
                n += 1
        return n


def proposals(rows: Rows, now: int | None) -> list[Proposal]:
    gov = rows.events("DaoGovernor")
    people = Personnel(rows)
    return [_build(p, gov, people, now) for p in (r for r in gov if r.event == "ProposalCreated")][::-1]


def proposal(rows: Rows, proposal_id: str, now: int | None) -> Proposal | None:
    gov = rows.events("DaoGovernor")
    created = next((r for r in gov if r.event == "ProposalCreated" and r.subject == proposal_id), None)
    if created is None:
        return None
    return _build(created, gov, Personnel(rows), now)


def _build(created: Row, gov: list[Row], people: Personnel, now: int | None) -> Proposal:
    pid = created.subject
    typed = next((r for r in gov if r.event == "ProposalTyped" and r.subject == pid), None)
    ptype = typed.enum("proposalType") if typed else "System"
    rules = None
    for r in gov:  # the type's rules as they were when the proposal was created
        if r.event == "TypeConfigSet" and r.enum("proposalType") == ptype and (r.block, r.log_index) < (
                created.block, created.log_index):
            rules = r.args["config"]
    p = Proposal(pid, created, ptype, rules)
    start, end = int(created.args["voteStart"]), int(created.args["voteEnd"])
    for r in gov:
        if r.subject != pid:
            continue
        if r.event in ("VoteCast", "VoteCastWithParams"):
            track, tier = people.role_at(r.args["voter"], start)
            p.votes.append(Vote(r, r.args["voter"], r.enum("support") or SUPPORT[int(r.args["support"])], tier, track))
        elif r.event == "ProposalExecuted":
            p.executed = r
        elif r.event == "ProposalCanceled":
            p.canceled = r
    if rules:
        p.eligible = people.eligible(int(rules["tierMask"]), int(rules["trackMask"]), start)
    p.state = _state(p, start, end, now)
    return p


def _state(p: Proposal, start: int, end: int, now: int | None) -> str:
    if p.executed:
        return "Executed"
    if p.canceled:
        return "Canceled"
    if now is None:
        return "Pending"
    if start >= now:
        return "Pending"
    if end >= now:
        return "Active"
    t = p.tally
    succeeded = (t["For"] + t["Abstain"] >= p.quorum and p.rules is not None
                 and t["For"] * BPS > int(p.rules["thresholdBps"]) * (t["For"] + t["Against"]))
    if not succeeded:
        return "Defeated"
    if p.rules and now > end + int(p.rules["executionWindow"]):
        return "Expired"
    return "Succeeded"


# -- registries and runs ----------------------------------------------------------------------
@dataclass
class Thing:
    """A model, hardware or run: its first event and its history (each event a status change)."""
    id: int
    first: Row
    history: list[Row]
    status: str


MODEL_STATUS = {"ModelSubmitted": "Pending", "ModelApproved": "Approved", "ModelRejected": "Rejected",
                "ModelRetryRequested": "Pending (retry)", "CertificationRenewed": "Approved",
                "ModelTermsChanged": "Approved", "ModelRevoked": "Revoked (emergency vote)",
                "ModelBudgetFrozen": "Approved, budget frozen", "ModelBudgetUnfrozen": "Approved"}
HARDWARE_STATUS = {"HardwareRegistered": "Pending", "HardwareApproved": "Approved", "HardwareRevoked": "Revoked",
                   "HardwareRevokedByVote": "Revoked (emergency vote)",
                   "HardwareBudgetFrozen": "Approved, budget frozen", "HardwareBudgetUnfrozen": "Approved"}
RUN_STATUS = {"RunOpened": "Open", "RunHalted": "Halted", "RunClosed": "Closed"}


def _things(rows: Rows, contract: str, first: str, statuses: dict[str, str]) -> list[Thing]:
    by = defaultdict(list)
    for r in rows.events(contract):
        if r.subject is not None and r.subject.isdigit():
            by[int(r.subject)].append(r)
    out = []
    for i, evs in sorted(by.items()):
        head = next((r for r in evs if r.event == first), None)
        if head is None:
            continue
        status = "?"
        for r in evs:
            status = statuses.get(r.event, status)
        out.append(Thing(i, head, evs, status))
    return out


def models(rows: Rows) -> list[Thing]:
    return _things(rows, "DaoModelRegistry", "ModelSubmitted", MODEL_STATUS)


def hardware(rows: Rows) -> list[Thing]:
    return _things(rows, "HardwareRegistry", "HardwareRegistered", HARDWARE_STATUS)


@dataclass
class Run:
    thing: Thing
    issued: int  # OTK units issued
    consumed: int
    reclaimed: int
    credits: list[Row]

    @property
    def budget(self) -> int:
        return int(self.thing.first.args["budget"])

    @property
    def used_share(self) -> float:
        return (self.issued - self.reclaimed) / self.budget if self.budget else 0.0


def runs(rows: Rows) -> list[Run]:
    credits = defaultdict(list)
    for r in rows.events("GasCredits", "CreditsCharged"):
        credits[r.subject].append(r)
    out = []
    for t in _things(rows, "OTKIssuer", "RunOpened", RUN_STATUS):
        amount = lambda name: sum(int(r.args["amount"]) for r in t.history if r.event == name)  # noqa: E731
        if t.status == "Halted":
            halted = next(r for r in t.history if r.event == "RunHalted")
            t.status = f"Halted ({halted.enum('reason') or halted.args['reason']})"
        out.append(Run(t, amount("OTKIssued"), amount("OTKConsumed"), amount("OTKReclaimed"), credits[str(t.id)]))
    return out
