"""Common base of the DIN daemons: event index, current stage, the global model of a round.

A daemon's `step()` reads the chain head once (one `eth_getBlockByNumber('latest')`), syncs its
event index up to that block and acts on the stage the head's timestamp falls in. Chain state the
contracts never change once set (registered, enrolled, a finalised tally) is read until it is set
and then kept in memory (`latched`), so an idle daemon's step costs about one request. Every action
first checks on-chain state (already registered? already committed? already claimed?), so a
daemon restarted after a SIGKILL never repeats a transaction the chain already holds.

Blobs named on-chain are fetched through `Blobs` (`agents/din/blobs.py`): an unavailable update is
an unusable update, an unavailable global model is skipped (`global_before`), the store being down
is a transient error.
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
from agents.core.store import ContentStore
from common.errors import TransientError

from .blobs import Blobs
from .contracts import GLOBAL, Din, Stage, Tally
from .index import DinIndex


class DinDaemon(ABC):
    role = "agent"

    def __init__(self, chain: Chain, store: ContentStore, signer: LocalAccount, task: int,
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
        self.blobs = Blobs(store, self.index.local.setdefault("unavailable", {}), load_genesis=self.genesis_model,
                           persist=self.index.commit_local, note=self.note)

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

    def genesis_model(self) -> bytes:
        """The task's genesis model (also fixes `self.blobs.layout`); ModelUnavailable names the fix."""
        if self.index.genesis is None:
            raise TransientError(f"task {self.task}: TaskCreated event not seen yet")
        return self.blobs.genesis(self.index.genesis, self.task)

    def global_before(self, round_: int) -> tuple[str, bytes]:
        """(CID, bytes) of the model round `round_` trains from. The rule every honest party applies:
        the accepted global model of the latest earlier round that can be fetched and is a finite
        model of the genesis layout; else genesis. The genesis model is fetched first, so a daemon
        that cannot see the task's content stops (ModelUnavailable) instead of judging anything."""
        genesis = self.genesis_model()
        for r in range(round_ - 1, -1, -1):
            tally = self.tally(r, GLOBAL)
            if tally.accepted:
                cid = self.index.cid(tally.best_hash)
                if cid is None:
                    raise TransientError(f"accepted global model of round {r} has no revealed CID in the events yet")
                blob = self.blobs.model(cid, f"accepted global model of round {r}")
                if blob is not None:
                    return cid, blob
        return self.index.genesis, genesis

    def global_cid_before(self, round_: int) -> str:
        """CID of the model round `round_` trains from (`global_before`)."""
        return self.global_before(round_)[0]

    def note(self, msg: str) -> None:
        self.log.append(msg)
