"""Common base of the DIN daemons: event index, current stage, the global model of a round.

A daemon's `step()` reads the chain head once (one `eth_getBlockByNumber('latest')`), syncs its
event index up to that block and acts on the stage the head's timestamp falls in. Chain state the
contracts never change once set (registered, enrolled, a finalised tally) is read until it is set
and then kept in memory (`latched`), so an idle daemon's step costs about one request. Every action
first checks on-chain state (already registered? already committed? already claimed?), so a
daemon restarted after a SIGKILL never repeats a transaction the chain already holds.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from agents.core.chain import Chain
from agents.core.events import Head
from agents.core.store import LocalStore

from .contracts import GLOBAL, Din, Stage, Tally
from .index import DinIndex


class DinDaemon(ABC):
    role = "agent"

    def __init__(self, chain: Chain, store: LocalStore, signer: LocalAccount, task: int,
                 cursor_path: Path | str | None, *, start_block: int = 0):
        self.chain = chain
        self.din = Din(chain)
        self.store = store
        self.signer = signer
        self.address = signer.address
        self.task = task
        self.index = DinIndex(chain, task, cursor_path, start_block)
        self.log: list[str] = []  # human-readable actions, newest last
        self._latched: dict[str, Any] = {}

    def step(self, head: Head | None = None) -> int:
        """Sync events up to `head` (default: read the chain head now), act once on the stage of the
        head's timestamp; returns how many transactions were sent. A driver stepping many daemons may
        pass the head it read for the previous one as long as nobody sent a transaction since."""
        head = head or self.index.follower.source.head()
        self.index.sync(head.number)
        if self.index.rounds_held is not None:  # the owner ended the task early: the schedule moved
            self.din.note_rounds_held(self.task, self.index.rounds_held)
        stage, round_ = self.din.params(self.task).stage_at(head.timestamp)
        return self.act(stage, round_)

    @abstractmethod
    def act(self, stage: Stage, round_: int) -> int:
        """Do what this role does in `stage` of `round_`; return the number of transactions sent."""

    def latched(self, key: str, read: Callable[[], Any], final: Callable[[Any], bool] = bool) -> Any:
        """`read()` until `final(value)`, then that value without asking the chain again. Only for
        state the contracts never change once set (memory only: a restarted daemon reads again)."""
        if key in self._latched:
            return self._latched[key]
        value = read()
        if final(value):
            self._latched[key] = value
        return value

    def tally(self, round_: int, group: int) -> Tally:
        """`Din.tally`, kept once finalised: it never changes again."""
        return self.latched(f"tally/{round_}/{group}", lambda: self.din.tally(self.task, round_, group),
                            final=lambda t: t.finalized)

    def secret(self, *parts) -> bytes:
        """A per-daemon secret (salts, seeds) derived from the signer key: survives restarts."""
        types = ["bytes32"] + ["uint256"] * len(parts)
        return keccak(abi_encode(types, [keccak(bytes(self.signer.key)), *[int(p) for p in parts]]))

    def global_cid_before(self, round_: int) -> str:
        """CID of the model round `round_` trains from: the latest accepted global model, else genesis."""
        for r in range(round_ - 1, -1, -1):
            tally = self.tally(r, GLOBAL)
            if tally.accepted:
                cid = self.index.cid(tally.best_hash)
                if cid is None:
                    raise LookupError(f"accepted global model of round {r} has no revealed CID in the events")
                return cid
        if self.index.genesis is None:
            raise LookupError(f"task {self.task}: TaskCreated event not seen")
        return self.index.genesis

    def note(self, msg: str) -> None:
        self.log.append(msg)
