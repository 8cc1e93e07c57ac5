"""Reading the suite's events: one-shot queries for auditors, and resumable followers for daemons.

Cost. Every reader of one `Chain` in a process shares one `LogSource`: a block range is fetched
once (one `eth_getLogs` for all suite contracts per range of at most `MAX_RANGE` blocks) and each
log is decoded once, however many followers read it. A hundred DIN daemons in one `Runner` cost
the chain what one costs; each follower only filters the shared, decoded events.

Delivery contract of `EventFollower` (each follower has its own filter and its own cursor):

* Events that pass the filter reach the handler in chain order (block, log index).
* The cursor file holds the position *and* the daemon's `state` dict, written together atomically
  (temp file, fsync, rename: `common.files.atomic_write_json`). It is written once per processed
  block range, and only if the range delivered an event, or if `IDLE_WRITE_BLOCKS` blocks were
  scanned since the last write; never once per event. `EventCursor.commit()` writes it on demand
  (a daemon that changed `state` outside a handler).
* Killed at any instant, a daemon restarts from its last written cursor with the state written
  with it; the events after that position are delivered again, into that state. Effects kept in
  `state` are therefore exactly-once. A handler whose effect is external (a transaction) sees an
  event again if the kill fell between its effect and the next write, so it must check chain
  state first (the contracts refuse duplicates anyway), which makes the replay harmless.
* A handler that raises stops the poll; the events before it stay handled (in memory; persisted
  with the next write), the failing one is delivered again on the next poll.

Reorgs: the shared source checks, at every head it reads, that the head it last built on is still
on the chain (an `evm_revert` on a dev chain counts), and drops what it holds otherwise. A cursor
does not rewind; daemons on a chain that reorganises follow with `confirmations`.
"""
from __future__ import annotations

import bisect
import json
import logging
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

from .chain import Chain, Event
from common.errors import ConfigError
from common.files import atomic_write_json

MAX_RANGE = 2_000  # blocks per eth_getLogs request
IDLE_WRITE_BLOCKS = 1_000  # a follower that handles nothing writes its cursor after this many blocks


class Head(NamedTuple):
    """The chain's latest block as one `eth_getBlockByNumber('latest')` reports it."""
    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int


class LogSource:
    """The suite's decoded events of one chain, shared by every reader in the process (`of(chain)`).

    It keeps one contiguous window of blocks, fetched at most once and decoded once, from the
    lowest position of the live followers up to the highest block read; a follower's read outside
    the window extends it when adjacent, and is served uncached otherwise.
    """

    def __init__(self, chain: Chain):
        self.chain = weakref.proxy(chain)  # the registry below is keyed by the chain: do not keep it alive
        self._lock = threading.RLock()
        self._followers: weakref.WeakSet[EventFollower] = weakref.WeakSet()
        self._book: tuple[str, ...] = ()  # addresses the window was fetched for
        self._lo: int | None = None  # the window covers blocks _lo.._hi (empty if _lo > _hi)
        self._hi = -1
        self._events: list[Event] = []  # decoded, in chain order
        self._blocks: list[int] = []  # block of each event, for bisect
        self._anchor: Head | None = None  # the newest head the window is known to be consistent with
        self.fetched_ranges = 0  # eth_getLogs requests made (for benchmarks)

    @classmethod
    def of(cls, chain: Chain) -> "LogSource":
        """The process's one source for `chain`."""
        with _SOURCES_LOCK:
            src = _SOURCES.get(chain)
            if src is None:
                src = _SOURCES[chain] = cls(chain)
            return src

    def register(self, follower: "EventFollower") -> None:
        """Keep the window from `follower`'s position on while it lives."""
        with self._lock:
            self._followers.add(follower)

    # -- head ----------------------------------------------------------------------------
    def head(self) -> Head:
        """The latest block (one request); drops the window if the chain no longer contains it."""
        b = self.chain.w3.eth.get_block("latest")
        head = Head(int(b["number"]), bytes(b["hash"]), bytes(b["parentHash"]), int(b["timestamp"]))
        with self._lock:
            self._check_anchor(head)
        return head

    def _check_anchor(self, head: Head) -> None:
        a = self._anchor
        if a is None or (head.number == a.number and head.hash == a.hash) or (
                head.number == a.number + 1 and head.parent_hash == a.hash):
            self._anchor = head
            return
        if head.number < a.number or bytes(self.chain.w3.eth.get_block(a.number)["hash"]) != a.hash:
            self._drop()  # reorganised (or reverted to a snapshot): what we hold may be gone
        self._anchor = head

    def _drop(self) -> None:
        self._lo, self._hi, self._events, self._blocks = None, -1, [], []

    # -- events --------------------------------------------------------------------------
    def events(self, lo: int, hi: int) -> list[Event]:
        """Decoded events of every suite contract in blocks lo..hi (hi at most a head read before)."""
        if hi < lo:
            return []
        with self._lock:
            book = tuple(sorted(e["address"] for e in self.chain.book.contracts.values()))
            if book != self._book:
                self._book = book
                self._drop()
            if self._lo is not None and self._lo <= lo and hi <= self._hi:
                return self._slice(lo, hi)
            followed_from = min((f.cursor.scanned_to + 1 for f in list(self._followers)), default=None)
            if followed_from is None or lo < followed_from:
                return self._fetch(lo, hi)  # a one-off read below every follower: nothing to share
            if self._lo is None or (lo > self._hi + 1 and followed_from > self._hi):
                self._set(lo, hi, self._fetch(lo, hi))  # nothing held that a follower still needs
            else:  # grow the window; a gap it fills is one a follower still has to read
                if lo < self._lo:
                    self._set(lo, self._hi, self._fetch(lo, self._lo - 1) + self._events)
                if hi > self._hi:
                    self._set(self._lo, hi, self._events + self._fetch(self._hi + 1, hi))
            out = self._slice(lo, hi)
            if followed_from > self._lo:  # forget blocks every live follower has passed
                cut = bisect.bisect_left(self._blocks, followed_from)
                self._lo = min(followed_from, self._hi + 1)
                self._events, self._blocks = self._events[cut:], self._blocks[cut:]
            return out

    def _slice(self, lo: int, hi: int) -> list[Event]:
        return self._events[bisect.bisect_left(self._blocks, lo):bisect.bisect_right(self._blocks, hi)]

    def _set(self, lo: int, hi: int, events: list[Event]) -> None:
        self._lo, self._hi, self._events = lo, hi, events
        self._blocks = [e.block for e in events]

    def _fetch(self, lo: int, hi: int) -> list[Event]:
        out: list[Event] = []
        for a in range(lo, hi + 1, MAX_RANGE):
            b = min(a + MAX_RANGE - 1, hi)
            self.fetched_ranges += 1
            for log in self.chain.w3.eth.get_logs({"fromBlock": a, "toBlock": b, "address": list(self._book)}):
                ev = self.chain.decode_log(log)
                if ev is not None:
                    out.append(ev)
        return out


_SOURCES: "weakref.WeakKeyDictionary[Chain, LogSource]" = weakref.WeakKeyDictionary()
_SOURCES_LOCK = threading.Lock()


def _check_contracts(chain: Chain, contracts: Iterable[str] | None) -> set[str] | None:
    if not contracts:
        return None
    wanted = set(contracts)
    unknown = wanted - set(chain.book.contracts)
    if unknown:
        raise ConfigError(f"not in the address book for chain {chain.chain_id}: {', '.join(sorted(unknown))}")
    return wanted


def fetch_events(chain: Chain, *, from_block: int = 0, to_block: int | None = None,
                 contracts: Iterable[str] | None = None, names: Iterable[str] | None = None) -> list[Event]:
    """Decoded events of the suite's contracts (by address-book name) in a block range (one-off reads)."""
    source = LogSource.of(chain)
    latest = source.head().number
    to_block = latest if to_block is None else min(to_block, latest)
    if from_block < 0 or from_block > to_block + 1:
        raise ConfigError(f"bad block range {from_block}..{to_block} (chain head is {latest})")
    wanted = _check_contracts(chain, contracts)
    names = set(names) if names else None
    return [e for e in source.events(from_block, to_block)
            if (wanted is None or e.contract in wanted) and (names is None or e.name in names)]


@dataclass
class EventCursor:
    """A follower's position (+ its owner's state), persisted atomically in a JSON file.

    Every block <= `scanned_to` is processed, and so is every event at or before `last` (a
    position inside a range, kept when a handler raised). With `path=None` the cursor lives in
    memory only (a follow that persists nothing).
    """
    path: Path | None
    scanned_to: int = -1
    last: tuple[int, int] | None = None  # (block, log_index) of the last processed event
    state: dict = field(default_factory=dict)
    written_to: int = field(default=-1, repr=False)  # scanned_to in the file

    @classmethod
    def open(cls, path: str | Path, start_block: int = 0) -> "EventCursor":
        p = Path(path)
        if not p.exists():
            return cls(p, scanned_to=start_block - 1, written_to=start_block - 1)
        try:
            d = json.loads(p.read_text())
            return cls(p, d["scanned_to"], tuple(d["last"]) if d["last"] else None, d.get("state", {}),
                       written_to=d["scanned_to"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ConfigError(f"cursor file {p} is corrupt ({type(e).__name__}: {e}); move it away to rescan") from None

    def done(self, ev: Event) -> bool:
        return ev.block <= self.scanned_to or (self.last is not None and (ev.block, ev.log_index) <= self.last)

    def commit(self) -> None:
        """Write position and state now, atomically (no-op for an in-memory cursor)."""
        if self.path is None:
            return
        atomic_write_json(self.path, {"scanned_to": self.scanned_to, "last": list(self.last) if self.last else None,
                                      "state": self.state}, indent=None)
        self.written_to = self.scanned_to


class EventFollower:
    """Feeds new suite events that pass its filter to a handler, resuming from its cursor after any
    restart. Events come from the process's shared `LogSource` for the chain."""

    def __init__(self, chain: Chain, cursor: EventCursor, *, contracts: Iterable[str] | None = None,
                 names: Iterable[str] | None = None, where: Callable[[Event], bool] | None = None,
                 confirmations: int = 0):
        self.chain = chain
        self.cursor = cursor
        self.contracts = _check_contracts(chain, contracts)
        self.names = set(names) if names else None
        self.where = where
        self.confirmations = confirmations
        self.source = LogSource.of(chain)
        self.source.register(self)

    def wants(self, ev: Event) -> bool:
        return ((self.contracts is None or ev.contract in self.contracts)
                and (self.names is None or ev.name in self.names)
                and (self.where is None or self.where(ev)))

    def poll(self, handle: Callable[[Event, dict], None], *, head: int | None = None) -> int:
        """Handle every new event once, up to block `head` (a number from `LogSource.head()`,
        default: read the head now) less `confirmations`; write the cursor per range as the module
        docstring says. Returns how many events were handled."""
        cursor = self.cursor
        to = (self.source.head().number if head is None else head) - self.confirmations
        n = 0
        lo = cursor.scanned_to + 1
        while lo <= to:
            hi = min(lo + MAX_RANGE - 1, to)
            handled = 0
            for ev in self.source.events(lo, hi):
                if self.wants(ev) and not cursor.done(ev):
                    handle(ev, cursor.state)
                    cursor.last = (ev.block, ev.log_index)
                    handled += 1
            cursor.scanned_to = hi
            if handled or hi - cursor.written_to >= IDLE_WRITE_BLOCKS:
                cursor.commit()
            n += handled
            lo = hi + 1
        return n

    def run(self, handle: Callable[[Event, dict], None], *, stop: threading.Event | None = None,
            interval: float = 0.25) -> None:
        """Poll until `stop` is set; a node that goes away is waited for with back-off (the
        daemon loop's rules), never a crash or a busy loop."""
        from .daemon import run_daemon

        stop = stop or threading.Event()
        run_daemon(lambda: self.poll(handle), log=logging.getLogger("loyal.events"), poll=interval,
                   done=stop.is_set, sleep=stop.wait)
