"""OML pages from the index: models, hosts and licences, usage batches, claims as a timeline."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..rows import Row, Rows

OML = ("ModelRegistry", "HostAgreements", "UsageLedger")
# a claim's steps, in protocol order: the page draws them as a timeline
CLAIM_STEPS = {"ClaimCommitted": "commit", "ClaimRevealed": "reveal", "ClaimEvidence": "evidence",
               "LeakEvidence": "evidence", "ClaimDefended": "defence", "Voted": "vote",
               "ClaimConfirmed": "outcome: confirmed", "ClaimRejected": "outcome: rejected",
               "VerifierSettled": "settlement"}


@dataclass
class Model:
    id: int
    registered: Row
    hosts: dict[str, dict] = field(default_factory=dict)  # host -> {"subset": Row, "licences": [Row], "released": [Row]}
    batches: list[Row] = field(default_factory=list)  # UsagePosted
    permissions: int = 0  # PermissionRedeemed count
    claims: list[int] = field(default_factory=list)

    @property
    def fees(self) -> int:
        return sum(int(b.args["fee"]) for b in self.batches)


def models(rows: Rows) -> list[Model]:
    by: dict[int, Model] = {}
    for r in rows.events(OML):
        if r.event == "ModelRegistered":
            by[r.int("modelId")] = Model(r.int("modelId"), r)
            continue
        m = by.get(int(r.subject)) if r.subject and r.subject.isdigit() else None
        if m is None:
            continue
        if r.event in ("HostSubsetRootSet", "AgreementSigned", "StakeReleased"):
            h = m.hosts.setdefault(r.args["host"], {"subset": None, "licences": [], "released": []})
            if r.event == "HostSubsetRootSet":
                h["subset"] = r
            elif r.event == "AgreementSigned":
                h["licences"].append(r)
            else:
                h["released"].append(r)
        elif r.event == "UsagePosted":
            m.batches.append(r)
        elif r.event == "PermissionRedeemed":
            m.permissions += 1
    for r in rows.events("Claims", "ClaimRevealed"):
        if r.int("modelId") in by:
            by[r.int("modelId")].claims.append(r.int("claimId"))
    return [by[i] for i in sorted(by)]


def model(rows: Rows, model_id: int) -> Model | None:
    return next((m for m in models(rows) if m.id == model_id), None)


@dataclass
class Claim:
    id: int
    revealed: Row
    steps: list[tuple[str, Row]]
    status: str


def claims(rows: Rows) -> list[Claim]:
    by = defaultdict(list)
    commits = {}
    for r in rows.events("Claims"):
        if r.event == "ClaimCommitted":
            commits[r.args["commitment"]] = r
        elif r.subject and r.subject.isdigit() and r.event in CLAIM_STEPS:
            by[int(r.subject)].append(r)
    out = []
    for cid, evs in sorted(by.items()):
        revealed = next((r for r in evs if r.event == "ClaimRevealed"), None)
        if revealed is None:
            continue
        steps = [(CLAIM_STEPS[r.event], r) for r in evs]
        commit = commits.get(revealed.args["commitment"])  # joined on the commitment (docs/audit.md)
        if commit is not None:
            steps.insert(0, ("commit", commit))
        status = "open"
        for name, _ in steps:
            if name.startswith("outcome: "):
                status = name.removeprefix("outcome: ")
        out.append(Claim(cid, revealed, steps, status))
    return out


def claim(rows: Rows, claim_id: int) -> Claim | None:
    return next((c for c in claims(rows) if c.id == claim_id), None)
