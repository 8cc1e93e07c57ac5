"""Common base of the DIN daemons: event index, current stage, the global model of a round.

A daemon's `step()` syncs its event index, then acts on what the chain says now. Every action
first checks on-chain state (already registered? already committed? already claimed?), so a
daemon restarted after a SIGKILL never repeats a transaction the chain already holds.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from agents.core.chain import Chain
from agents.core.store import LocalStore

from .contracts import GLOBAL, Din, Stage
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

    def step(self) -> int:
        """Sync events, act once on the current stage; returns how many transactions were sent."""
        self.index.sync()
        stage, round_ = self.din.stage(self.task)
        return self.act(stage, round_)

    @abstractmethod
    def act(self, stage: Stage, round_: int) -> int:
        """Do what this role does in `stage` of `round_`; return the number of transactions sent."""

    def secret(self, *parts) -> bytes:
        """A per-daemon secret (salts, seeds) derived from the signer key: survives restarts."""
        types = ["bytes32"] + ["uint256"] * len(parts)
        return keccak(abi_encode(types, [keccak(bytes(self.signer.key)), *[int(p) for p in parts]]))

    def global_cid_before(self, round_: int) -> str:
        """CID of the model round `round_` trains from: the latest accepted global model, else genesis."""
        for r in range(round_ - 1, -1, -1):
            h, _, _, accepted = self.din.tally(self.task, r, GLOBAL)
            if accepted:
                cid = self.index.cid(h)
                if cid is None:
                    raise LookupError(f"accepted global model of round {r} has no revealed CID in the events")
                return cid
        if self.index.genesis is None:
            raise LookupError(f"task {self.task}: TaskCreated event not seen")
        return self.index.genesis

    def note(self, msg: str) -> None:
        self.log.append(msg)
