"""What DIN agents learn only from events, kept in a resumable cursor (`EventFollower`).

The contracts store hashes; CID strings live in events. Every daemon follows its task's events
(only the kinds listed in `INDEXED`) into its own cursor file, so after a SIGKILL it resumes where
it stopped and still knows every update CID, revealed aggregate/global CID, genesis and test-slice
CID. The daemons of one process share one `LogSource`: a block range is fetched and decoded once
for all of them; each index only filters. The cursor file (position + this state) is written once
per synced block range that brought an indexed event of the task (and by `commit_local`).
"""
from __future__ import annotations

from pathlib import Path

from eth_utils import keccak

from agents.core.chain import Chain, Event
from agents.core.events import EventCursor, EventFollower

DIN_CONTRACTS = ["DinTasks", "DinRounds", "DinScoring"]
INDEXED = ["TaskCreated", "UpdateCommitted", "UpdateRevealed", "AggregateRevealed", "GlobalRevealed", "TestSliceRevealed",
           "MaskKeySet", "RecoverySeedsPosted", "TaskEndedEarly"]  # the events `DinIndex` keeps something of


def cid_hash(cid: str) -> str:
    return "0x" + keccak(text=cid).hex()


def _hex(b) -> str:
    return "0x" + bytes(b).hex()


class DinIndex:
    """Event-sourced view of one task. `state` is persisted with the cursor (JSON)."""

    def __init__(self, chain: Chain, task: int, cursor_path: Path | str | None, start_block: int = 0):
        cursor = EventCursor.open(cursor_path, start_block) if cursor_path else EventCursor(None, start_block - 1)
        self.task = task
        self.follower = EventFollower(chain, cursor, contracts=DIN_CONTRACTS, names=INDEXED,
                                      where=lambda ev: int(ev.args["taskId"]) == task)
        self.state = cursor.state
        for k in ("updates", "orders", "cids", "local", "mask_keys", "recovery", "slices"):
            self.state.setdefault(k, {})

    def sync(self, head: int | None = None) -> int:
        """Index the task's new events up to block `head` (default: the chain head now)."""
        return self.follower.poll(self._handle, head=head)

    def commit_local(self) -> None:
        """Persist `state["local"]` (the daemon's own secrets/results) now."""
        self.follower.cursor.commit()

    def _handle(self, ev: Event, state: dict) -> None:
        a = ev.args
        if ev.name == "TaskCreated":
            state["genesis"] = a["genesisCid"]
        elif ev.name == "UpdateCommitted":
            # commitments are ordered by their events' position in the chain (the copy rule's "earlier")
            state["orders"].setdefault(str(a["round"]), {})[a["participant"]] = ev.block * 2**32 + ev.log_index
        elif ev.name == "UpdateRevealed":
            key = f"{a['round']}/{a['subgroup']}"
            state["updates"].setdefault(key, {})[a["participant"]] = a["cid"]
        elif ev.name in ("AggregateRevealed", "GlobalRevealed"):
            state["cids"][cid_hash(a["cid"])] = a["cid"]
        elif ev.name == "TaskEndedEarly":
            state["rounds_held"] = int(a["roundsHeld"])
        elif ev.name == "TestSliceRevealed":
            state["slices"][str(a["round"])] = a["cid"]
        elif ev.name == "MaskKeySet":
            state["mask_keys"].setdefault(str(a["subgroup"]), {})[a["participant"]] = _hex(a["publicKey"])
        elif ev.name == "RecoverySeedsPosted":
            key = f"{a['round']}/{a['subgroup']}"
            state["recovery"].setdefault(key, {})[a["survivor"]] = {
                d: _hex(s) for d, s in zip(a["dropped"], a["seeds"])}

    # -- reads ---------------------------------------------------------------------------
    @property
    def local(self) -> dict:
        return self.state["local"]

    def commit_orders(self, round_: int) -> dict[str, int]:
        """participant -> position of its `UpdateCommitted` event in the chain (block * 2^32 + log
        index): smaller = committed earlier."""
        return dict(self.state["orders"].get(str(round_), {}))

    def updates(self, round_: int, group: int) -> dict[str, str]:
        """participant -> update CID revealed in `round_` by the members of subgroup `group`."""
        return dict(self.state["updates"].get(f"{round_}/{group}", {}))

    def all_updates(self, round_: int) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, ups in self.state["updates"].items():
            if int(key.split("/")[0]) == round_:
                out.update(ups)
        return out

    def mask_keys(self, group: int) -> dict[str, bytes]:
        """Secure aggregation: the subgroup's members (participants with a mask key) -> public key."""
        return {who: bytes.fromhex(k[2:]) for who, k in self.state["mask_keys"].get(str(group), {}).items()}

    def recovery(self, round_: int, group: int) -> dict[str, dict[str, bytes]]:
        """Secure aggregation: survivor -> {dropped member: pair seed} posted for `round_`."""
        posted = self.state["recovery"].get(f"{round_}/{group}", {})
        return {s: {d: bytes.fromhex(v[2:]) for d, v in seeds.items()} for s, seeds in posted.items()}

    def cid(self, h: bytes) -> str | None:
        return self.state["cids"].get("0x" + h.hex())

    @property
    def genesis(self) -> str | None:
        return self.state.get("genesis")

    @property
    def rounds_held(self) -> int | None:
        """The rounds held once the owner ended the task early (None: not ended early)."""
        return self.state.get("rounds_held")

    def slice_cid(self, round_: int) -> str | None:
        """CID of round `round_`'s test slice once the owner revealed it."""
        return self.state["slices"].get(str(round_))
