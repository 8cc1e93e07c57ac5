"""`EventIndex`: every event of every address-book contract, followed into a database.

It reads through the one resumable follower (`agents.core.events.EventFollower`, the process's
shared `LogSource`), annotates each event with `agents.core.audit.Auditor` (block time, LOYAL
amounts, enum names, decoded proposal calls) and writes rows (db.py).

Exactly once. The follower's cursor is the database's `cursor` row (`DbCursor`): the rows of a
block range and the position after it are written in one database transaction, so a process
killed at any instant (SIGKILL included) restarts at the last committed block with exactly the
rows before it; `(block, log_index)` is unique as well.

Reorgs. Each step reads the head first, then checks that the block the index stopped at (its tip)
still has the hash it had. If not (a reorg, or a dev chain reverted to a snapshot), it finds the
newest block it knows (the `blocks` table: blocks with events and earlier tips) that is still on
the chain, by bisection, deletes every row after it and re-follows from there. The tip is read
before the logs of a step, so a reorg racing a step leaves a tip that no longer matches and is
found on the next step.
"""
from __future__ import annotations

import bisect
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine

from agents.core.audit import Auditor
from agents.core.chain import Chain, Event
from agents.core.events import MAX_RANGE, EventCursor, EventFollower, Head, LogSource
from common.errors import ConfigError

from . import db

log = logging.getLogger("loyal.index")

# The id an event is about, per contract: the first of these arguments the event has (a decimal
# string for integers, a lower-case hex string for addresses and bytes). Pages look rows up by it.
SUBJECTS: dict[str, tuple[str, ...]] = {
    "LoyalToken": ("from", "owner"),
    "Staking": ("account", "module"),
    "DinTasks": ("taskId",),
    "DinRounds": ("taskId",),
    "DinScoring": ("taskId",),
    "TrainingLedger": ("userModelId", "baseModelId", "blockId"),
    "ModelRegistry": ("modelId",),
    "HostAgreements": ("modelId",),
    "UsageLedger": ("modelId",),
    "Claims": ("claimId", "prover", "verifier"),
    "PersonnelRegistry": ("account", "reportId"),
    "DaoGovernor": ("proposalId", "proposalType"),
    "DaoModelRegistry": ("modelId",),
    "HardwareRegistry": ("hardwareId",),
    "OTKIssuer": ("runId",),
    "GasCredits": ("runId", "account"),
    "DaoTreasury": ("bountyRef",),
}

# Events per database transaction the index aims at: a step that brought more halves the next
# step's block range, one that brought less than a quarter doubles it (up to `batch_blocks`). So
# memory stays bounded on dense chains (thousands of events per block) and sparse ones are read
# 2,000 blocks per request.
TARGET_EVENTS = 5_000

# Events whose transaction input the index keeps, decoded (audit.py's `decode_call`), because what
# a page shows is in the call and not in the event: who scored what in DIN's paged score reveals.
KEEP_CALL: frozenset[tuple[str, str]] = frozenset({("DinScoring", "ScoresRevealed")})


def subject_of(contract: str, args: dict[str, Any]) -> str | None:
    for name in SUBJECTS.get(contract, ()):
        if name in args:
            return subject_text(args[name])
    return None


def subject_text(v: Any) -> str:
    """How a subject value is stored: decimal for integers, lower-case 0x-hex for addresses/bytes."""
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    return str(v).lower()


def book_digest(chain: Chain) -> str:
    pairs = sorted((n, e["address"].lower()) for n, e in chain.book.contracts.items())
    return "0x" + hashlib.sha256(repr(pairs).encode()).hexdigest()


@dataclass
class DbCursor(EventCursor):
    """The follower's cursor, kept in the `cursor` row: `commit()` writes the pending rows and the
    position in one transaction."""
    index: "EventIndex | None" = field(default=None, repr=False)

    def commit(self) -> None:
        assert self.index is not None
        self.index._commit()


class EventIndex:
    """Follow the suite's events of `chain` into the database behind `engine` (db.connect_db)."""

    def __init__(self, chain: Chain, engine: Engine, *, batch_blocks: int = MAX_RANGE):
        if not 1 <= batch_blocks <= MAX_RANGE:
            raise ConfigError(f"batch_blocks must be in 1..{MAX_RANGE}")
        self.chain, self.engine, self.batch_blocks = chain, engine, batch_blocks
        self._span = 1  # blocks in the next step: adapts to the chain's density (TARGET_EVENTS)
        self.auditor = Auditor(chain)
        self.source = LogSource.of(chain)
        self._rows: list[dict] = []
        self._blocks: dict[int, tuple[str, int]] = {}  # number -> (hash, time) of blocks with pending rows
        self._tip: Head | None = None  # the head of the block range being indexed (read before its logs)
        self.indexed = 0  # events written by this process
        self.reorgs = 0
        scanned_to, last, tip_hash = self._open()
        self.cursor = DbCursor(None, scanned_to, last, index=self)
        self.cursor.written_to = scanned_to
        self._tip_hash = tip_hash
        self.follower = EventFollower(chain, self.cursor)

    # -- the cursor row ----------------------------------------------------------------------
    def _open(self) -> tuple[int, tuple[int, int] | None, str | None]:
        digest = book_digest(self.chain)
        with self.engine.begin() as conn:
            row = conn.execute(select(db.cursor).where(db.cursor.c.id == 1)).first()
            if row is not None and row.chain_id != self.chain.chain_id:
                raise ConfigError(f"the index database holds chain {row.chain_id}, not chain {self.chain.chain_id}: "
                                  "pass another --db (or index_db setting)")
            if row is not None and row.book_digest != digest:
                log.warning("the address book changed since this index was built: indexing again from block 0")
                conn.execute(delete(db.events))
                conn.execute(delete(db.blocks))
                conn.execute(delete(db.cursor))
                row = None
            if row is None:
                conn.execute(insert(db.cursor).values(id=1, chain_id=self.chain.chain_id, book_digest=digest,
                                                      scanned_to=-1))
                return -1, None, None
            last = (row.last_block, row.last_log) if row.last_block is not None else None
            return row.scanned_to, last, row.tip_hash

    def _commit(self) -> None:
        """Write the pending rows and the position covering them, in one transaction."""
        c = self.cursor
        tip = self._tip if self._tip is not None and self._tip.number == c.scanned_to else None
        if not self._rows and c.scanned_to == c.written_to and tip is None:
            return
        with self.engine.begin() as conn:
            known = {n for (n,) in conn.execute(select(db.blocks.c.number).where(
                db.blocks.c.number.in_(list(self._blocks) + ([tip.number] if tip else []))))}
            new_blocks = [{"number": n, "hash": h, "timestamp": t} for n, (h, t) in self._blocks.items() if n not in known]
            if tip is not None and tip.number not in known and tip.number not in self._blocks:
                new_blocks.append({"number": tip.number, "hash": "0x" + tip.hash.hex(), "timestamp": tip.timestamp})
            if new_blocks:
                conn.execute(insert(db.blocks), new_blocks)
            if self._rows:
                conn.execute(insert(db.events), self._rows)
            values: dict[str, Any] = {"scanned_to": c.scanned_to, "last_block": c.last[0] if c.last else None,
                                      "last_log": c.last[1] if c.last else None}
            if tip is not None:
                values.update(tip_hash="0x" + tip.hash.hex(), tip_time=tip.timestamp)
            conn.execute(update(db.cursor).where(db.cursor.c.id == 1).values(**values))
        self.indexed += len(self._rows)
        if tip is not None:
            self._tip_hash = "0x" + tip.hash.hex()
        self._rows, self._blocks = [], {}
        self.auditor.forget_times()
        c.written_to = c.scanned_to

    # -- rows ------------------------------------------------------------------------------
    def _take(self, ev: Event, _state: dict) -> None:
        audited = self.auditor.audit(ev)
        if audited is None:  # not the suite's (a log decoded against another contract's ABI)
            return
        data = audited.to_json()
        for k in ("block", "time", "timestamp", "log_index", "tx", "contract", "address", "event"):
            data.pop(k)
        if (ev.contract, ev.name) in KEEP_CALL:
            data["call"] = self._call_of(ev)
        self._rows.append({"block": ev.block, "log_index": ev.log_index, "timestamp": audited.timestamp, "tx": ev.tx,
                           "contract": ev.contract, "address": ev.address, "event": ev.name,
                           "subject": subject_of(ev.contract, ev.args), "text": audited.decoded.text(), "data": data})
        self._blocks[ev.block] = (ev.block_hash, audited.timestamp)

    def _call_of(self, ev: Event) -> dict | None:
        """The decoded call of the event's transaction if it went straight to the event's contract."""
        tx = self.chain.w3.eth.get_transaction(ev.tx)
        if tx["to"] is None or tx["to"].lower() != ev.address.lower():
            return None  # sent through another contract: the page says the call is not readable
        return self.auditor.decode_call(tx["to"], bytes(tx["input"])).to_json()

    # -- following ---------------------------------------------------------------------------
    def step(self) -> int:
        """Index the next block range (at most `batch_blocks`, fewer on a dense chain); returns blocks
        indexed, 0 when at the head. Checks for a reorg first."""
        head = self.source.head()
        self._check_tip(head)
        c = self.cursor
        if c.scanned_to >= head.number:
            return 0
        to = min(c.scanned_to + self._span, head.number)
        self._tip = head if to == head.number else self._header(to)
        before = c.scanned_to
        n = self.follower.poll(self._take, head=to)
        self._commit()
        if n > TARGET_EVENTS:
            self._span = max(1, self._span // 2)
        elif n < TARGET_EVENTS // 4:
            self._span = min(self.batch_blocks, self._span * 2)
        return to - before

    def catch_up(self) -> int:
        """Step until the index holds every block up to the head read at the start; events indexed."""
        n0 = self.indexed
        while self.step():
            pass
        return self.indexed - n0

    def _header(self, number: int) -> Head:
        b = self.chain.w3.eth.get_block(number)
        return Head(int(b["number"]), bytes(b["hash"]), bytes(b["parentHash"]), int(b["timestamp"]))

    def _hash_at(self, number: int, head: Head) -> str | None:
        if number == head.number:
            return "0x" + head.hash.hex()
        if number > head.number:
            return None
        return "0x" + bytes(self.chain.w3.eth.get_block(number)["hash"]).hex()

    def _check_tip(self, head: Head) -> None:
        c = self.cursor
        if c.scanned_to < 0 or self._tip_hash is None:
            return
        if c.scanned_to == head.number - 1 and "0x" + head.parent_hash.hex() == self._tip_hash:
            return
        if self._hash_at(c.scanned_to, head) == self._tip_hash:
            return
        self._rewind(head)

    def _rewind(self, head: Head) -> None:
        """Drop every row after the newest known block still on the chain; follow again from there."""
        with self.engine.connect() as conn:
            known = conn.execute(select(db.blocks.c.number, db.blocks.c.hash).order_by(db.blocks.c.number)).all()
        numbers = [n for n, _ in known]
        lo, hi = 0, len(known)  # known[:lo] are on the chain, known[hi:] are not
        while lo < hi:
            mid = (lo + hi) // 2
            if self._hash_at(known[mid][0], head) == known[mid][1]:
                lo = mid + 1
            else:
                hi = mid
        fork = known[lo - 1] if lo else None
        keep = fork[0] if fork else -1
        with self.engine.begin() as conn:
            dropped = conn.execute(delete(db.events).where(db.events.c.block > keep)).rowcount
            conn.execute(delete(db.blocks).where(db.blocks.c.number > keep))
            tip_time = conn.execute(select(db.blocks.c.timestamp).where(db.blocks.c.number == keep)).scalar()
            conn.execute(update(db.cursor).where(db.cursor.c.id == 1).values(
                scanned_to=keep, last_block=None, last_log=None, tip_hash=fork[1] if fork else None, tip_time=tip_time))
        self.cursor.scanned_to = self.cursor.written_to = keep
        self.cursor.last = None
        self._tip_hash = fork[1] if fork else None
        self.reorgs += 1
        log.warning("chain reorganised: dropped %d event(s) after block %d (%d known blocks were off the chain); "
                    "following again from block %d", dropped, keep, len(numbers) - bisect.bisect_right(numbers, keep),
                    keep + 1)

    # -- status ------------------------------------------------------------------------------
    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(db.events)).scalar_one()
