"""Reading the index: `Rows` looks events up; `Row` is one event as stored (audit.py's JSON).

Pages are built from these rows only (never from live chain reads); the one exception is the
chain head, read by the server to say how far behind the index is.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from common.units import WEI_PER_TOKEN

from . import db
from .index import subject_text


@dataclass(frozen=True)
class Row:
    id: int
    block: int
    log_index: int
    timestamp: int
    tx: str
    contract: str
    address: str
    event: str
    subject: str | None
    text: str
    data: dict

    @property
    def args(self) -> dict[str, Any]:
        return self.data["args"]

    def int(self, name: str) -> int:
        """An integer argument (JSON keeps those beyond 2^53 as decimal strings)."""
        return int(self.args[name])

    def enum(self, name: str) -> str | None:
        return self.data.get("enum", {}).get(name)

    def loyal(self, name: str) -> Decimal:
        """A LoyalToken amount argument in LOYAL (exact)."""
        return Decimal(int(_dotted(self.args, name))) / WEI_PER_TOKEN


def _dotted(args: dict, name: str) -> Any:
    v: Any = args
    for part in name.split("."):
        v = v[part]
    return v


@dataclass(frozen=True)
class Cursor:
    chain_id: int
    scanned_to: int
    tip_time: int | None


class Rows:
    """Event rows of one index database connection, in chain order."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def cursor(self) -> Cursor | None:
        r = self.conn.execute(select(db.cursor).where(db.cursor.c.id == 1)).first()
        return Cursor(r.chain_id, r.scanned_to, r.tip_time) if r else None

    def events(self, contracts: Iterable[str] | str | None = None, names: Iterable[str] | str | None = None,
               subject: Any = None, *, tx: str | None = None, block: int | None = None, limit: int | None = None,
               newest_first: bool = False) -> list[Row]:
        e = db.events.c
        q = select(db.events)
        if contracts is not None:
            q = q.where(e.contract.in_([contracts] if isinstance(contracts, str) else list(contracts)))
        if names is not None:
            q = q.where(e.event.in_([names] if isinstance(names, str) else list(names)))
        if subject is not None:
            q = q.where(e.subject == subject_text(subject))
        if tx is not None:
            q = q.where(e.tx == tx.lower())
        if block is not None:
            q = q.where(e.block == block)
        order = (e.block.desc(), e.log_index.desc()) if newest_first else (e.block, e.log_index)
        q = q.order_by(*order)
        if limit is not None:
            q = q.limit(limit)
        return [Row(**r._mapping) for r in self.conn.execute(q)]

    def mentioning(self, text: str, limit: int = 200) -> list[Row]:
        """Events whose subject is `text` or whose rendered text contains it (an address, a CID)."""
        e = db.events.c
        q = (select(db.events).where(or_(e.subject == text.lower(), e.text.ilike(f"%{_escape(text)}%", escape="\\")))
             .order_by(e.block.desc(), e.log_index.desc()).limit(limit))
        return [Row(**r._mapping) for r in self.conn.execute(q)]

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func
        e = db.events.c
        return {c: n for c, n in self.conn.execute(select(e.contract, func.count()).group_by(e.contract))}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
