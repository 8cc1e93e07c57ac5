"""Reading the suite's events: one-shot queries for auditors, and a resumable follower for daemons.

Delivery contract of `EventFollower`: events reach the handler in chain order (block, log index).
After the handler returns, the cursor (position + the daemon's own `state` dict) is written to disk
atomically (tmp file, fsync, rename). A daemon killed at any instant therefore restarts at the first
event whose handling was not committed: nothing is skipped, and an event is handled twice only if the
kill fell between the handler's external effect and the commit. Handlers whose effect lives in
`state` get exactly-once; handlers whose effect is a transaction must check chain state first (the
contracts refuse duplicates anyway), which makes that one replay harmless.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .chain import Chain, Event
from common.errors import ConfigError

MAX_RANGE = 2_000  # blocks per eth_getLogs request


def fetch_events(chain: Chain, *, from_block: int = 0, to_block: int | None = None,
                 contracts: Iterable[str] | None = None, names: Iterable[str] | None = None) -> list[Event]:
    """Decoded events of the suite's contracts (by address-book name) in a block range."""
    latest = chain.w3.eth.block_number
    to_block = latest if to_block is None else min(to_block, latest)
    if from_block < 0 or from_block > to_block + 1:
        raise ConfigError(f"bad block range {from_block}..{to_block} (chain head is {latest})")
    wanted = set(contracts) if contracts else set(chain.book.contracts)
    unknown = wanted - set(chain.book.contracts)
    if unknown:
        raise ConfigError(f"not in the address book for chain {chain.chain_id}: {', '.join(sorted(unknown))}")
    addresses = [chain.book.contracts[n]["address"] for n in sorted(wanted)]
    names = set(names) if names else None
    out: list[Event] = []
    for lo in range(from_block, to_block + 1, MAX_RANGE):
        hi = min(lo + MAX_RANGE - 1, to_block)
        for log in chain.w3.eth.get_logs({"fromBlock": lo, "toBlock": hi, "address": addresses}):
            ev = chain.decode_log(log)
            if ev is not None and (names is None or ev.name in names):
                out.append(ev)
    return out


@dataclass
class EventCursor:
    """Last processed position (+ the owner's state), persisted atomically in a JSON file.

    With `path=None` the cursor lives in memory only (a one-off follow that persists nothing).
    """
    path: Path | None
    scanned_to: int = -1  # every block <= scanned_to is fully processed
    last: tuple[int, int] | None = None  # (block, log_index) of the last processed event
    state: dict = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | Path, start_block: int = 0) -> "EventCursor":
        p = Path(path)
        if not p.exists():
            return cls(p, scanned_to=start_block - 1)
        try:
            d = json.loads(p.read_text())
            return cls(p, d["scanned_to"], tuple(d["last"]) if d["last"] else None, d.get("state", {}))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ConfigError(f"cursor file {p} is corrupt ({type(e).__name__}: {e}); move it away to rescan") from None

    def done(self, ev: Event) -> bool:
        return ev.block <= self.scanned_to or (self.last is not None and (ev.block, ev.log_index) <= self.last)

    def commit(self, *, event: Event | None = None, scanned_to: int | None = None) -> None:
        if event is not None:
            self.last = (event.block, event.log_index)
        if scanned_to is not None:
            self.scanned_to = max(self.scanned_to, scanned_to)
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump({"scanned_to": self.scanned_to, "last": list(self.last) if self.last else None,
                       "state": self.state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class EventFollower:
    """Feeds new suite events to a handler, resuming from its cursor after any restart."""

    def __init__(self, chain: Chain, cursor: EventCursor, *, contracts: Iterable[str] | None = None,
                 names: Iterable[str] | None = None, confirmations: int = 0):
        self.chain = chain
        self.cursor = cursor
        self.contracts = list(contracts) if contracts else None
        self.names = list(names) if names else None
        self.confirmations = confirmations

    def pending(self) -> Iterator[tuple[Event, int]]:
        """(event, range end) pairs not yet processed, in chain order."""
        head = self.chain.w3.eth.block_number - self.confirmations
        lo = self.cursor.scanned_to + 1
        while lo <= head:
            hi = min(lo + MAX_RANGE - 1, head)
            for ev in fetch_events(self.chain, from_block=lo, to_block=hi, contracts=self.contracts, names=self.names):
                if not self.cursor.done(ev):
                    yield ev, hi
            self.cursor.commit(scanned_to=hi)
            lo = hi + 1

    def poll(self, handle: Callable[[Event, dict], None]) -> int:
        """Handle every new event once; commit after each. Returns how many were handled."""
        n = 0
        for ev, _ in self.pending():
            handle(ev, self.cursor.state)
            self.cursor.commit(event=ev)
            n += 1
        return n

    def run(self, handle: Callable[[Event, dict], None], *, stop: threading.Event | None = None,
            interval: float = 0.25) -> None:
        stop = stop or threading.Event()
        while not stop.is_set():
            self.poll(handle)
            stop.wait(interval)
