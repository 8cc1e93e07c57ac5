"""Every id, address and CID on a page is a link: where each kind of value points, declared once.

`Linker.args(row)` renders an event's arguments as HTML: ids linked to their page, addresses to
their account (or contract) page, CIDs to the CID page, LoyalToken amounts in LOYAL and enum
values by name (both from audit.py's annotations stored in the row), times as dates.
"""
from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup, escape

from agents.core.audit import iso_utc
from common.units import format_amount

OML = ("ModelRegistry", "HostAgreements", "UsageLedger", "Claims")
DAO_MODELS = ("DaoModelRegistry", "OTKIssuer")

# (argument name, contracts it has this meaning in, or None for all) -> page URL pattern
ID_PAGES: tuple[tuple[str, tuple[str, ...] | None, str], ...] = (
    ("taskId", None, "/din/task/{}"),
    ("proposalId", None, "/dao/proposal/{}"),
    ("claimId", None, "/oml/claim/{}"),
    ("modelId", OML, "/oml/model/{}"),
    ("modelId", DAO_MODELS, "/dao/model/{}"),
    ("hardwareId", None, "/dao/hardware/{}"),
    ("runId", None, "/dao/run/{}"),
    ("userModelId", None, "/ledger/fork/{}"),
    ("baseModelId", None, "/ledger/base/{}"),
    ("blockId", ("TrainingLedger",), "/events?contract=TrainingLedger&event=BlockSealed&arg=blockId&value={}"),
    ("batchId", OML, "/events?contract=UsageLedger&event=UsagePosted&arg=batchId&value={}"),
)
# Arguments that are times (seconds since the epoch), shown as dates.
TIME_ARGS = frozenset({"registrationEnd", "unlockAt", "challengeEnds", "startsAt", "endsAt", "expiresAt",
                       "certifiedUntil", "observedAt", "voteStart", "voteEnd"})

CID_RE = re.compile(r"^(bafy|bafk|baga|Qm)[1-9A-Za-z]{20,}$")
ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


def date(ts: int | None) -> str:
    """Seconds since the epoch -> ISO 8601 UTC date and time (audit.py's format)."""
    return "-" if ts is None else iso_utc(int(ts))


def loyal(wei: int | str | None) -> str:
    """Wei -> "12.5 LOYAL" (exact: common.units)."""
    return "-" if wei is None else format_amount(int(wei))


def id_page(contract: str, arg: str, value: Any) -> str | None:
    for name, contracts, pattern in ID_PAGES:
        if name == arg and (contracts is None or contract in contracts):
            return pattern.format(value)
    return None


class Linker:
    """Link builder for one address book (contract addresses link to the contract's page)."""

    def __init__(self, book: dict[str, str]):
        self.names = {a.lower(): n for n, a in book.items()}

    def address(self, a: str | None) -> Markup:
        if not a:
            return Markup("-")
        name = self.names.get(a.lower())
        if name:
            return Markup(f'<a class="contract" href="/contract/{escape(name)}" title="{escape(a)}">{escape(name)}</a>')
        return Markup(f'<a class="addr" href="/account/{escape(a)}" title="{escape(a)}">{escape(a[:8])}…{escape(a[-6:])}</a>')

    def cid(self, c: str | None) -> Markup:
        if not c:
            return Markup("-")
        short = c if len(c) <= 20 else f"{c[:10]}…{c[-6:]}"
        return Markup(f'<a class="cid" href="/cid/{escape(c)}" title="{escape(c)}">{escape(short)}</a>')

    def tx(self, h: str) -> Markup:
        return Markup(f'<a class="tx" href="/tx/{escape(h)}" title="{escape(h)}">{escape(h[:10])}…</a>')

    def block(self, n: int) -> Markup:
        return Markup(f'<a class="block" href="/block/{int(n)}">{int(n)}</a>')

    def id(self, contract: str, arg: str, value: Any) -> Markup:
        url = id_page(contract, arg, value)
        return Markup(f'<a class="id" href="{escape(url)}">{escape(value)}</a>') if url else escape(value)

    def value(self, contract: str, path: str, v: Any, row_data: dict) -> Markup:
        """One argument value (dotted `path` into structs) as HTML."""
        leaf = path.rsplit(".", 1)[-1]
        if path in row_data.get("LOYAL", {}):
            return escape(loyal(v))
        if path in row_data.get("enum", {}):
            return escape(row_data["enum"][path])
        if isinstance(v, dict):
            return Markup("(") + Markup(", ").join(
                Markup(f"{escape(k)}=") + self.value(contract, f"{path}.{k}", x, row_data) for k, x in v.items()) + Markup(")")
        if isinstance(v, list):
            return Markup("[") + Markup(", ").join(self.value(contract, path, x, row_data) for x in v) + Markup("]")
        if isinstance(v, str) and ADDRESS_RE.match(v):
            return self.address(v)
        if isinstance(v, str) and CID_RE.match(v):
            return self.cid(v)
        if leaf in TIME_ARGS and str(v).isdigit():
            return escape(date(int(v)))
        if isinstance(v, (int, str)) and id_page(contract, leaf, v):
            return self.id(contract, leaf, v)
        if isinstance(v, str) and v.startswith("0x") and len(v) > 20:
            return Markup(f'<span class="hex" title="{escape(v)}">{escape(v[:10])}…</span>')
        return escape(v)

    def call(self, c: dict) -> Markup:
        """One decoded proposal action (audit.py's `Call` JSON) with its arguments linked."""
        if not c.get("function"):
            return escape(c["text"])
        shown = Markup(", ").join(Markup(f"{escape(k)}=") + self.value(c["contract"], k, v, c)
                                  for k, v in c["args"].items())
        return Markup(f"{escape(c['contract'])}.{escape(c['function'])}(") + shown + Markup(")")

    def args(self, row) -> Markup:
        """`name=value, ...` of an event row; a proposal's calls decoded (audit.py)."""
        parts = []
        for k, v in row.args.items():
            if row.event == "ProposalCreated" and k == "calldatas" and row.data.get("calls"):
                shown = Markup(", ").join(self.call(c) for c in row.data["calls"])
                parts.append(Markup(f"calls=[{shown}]"))
            elif k in ("signatures", "values") and row.event == "ProposalCreated":
                continue
            else:
                parts.append(Markup(f"{escape(k)}=") + self.value(row.contract, k, v, row.data))
        return Markup(", ").join(parts)
