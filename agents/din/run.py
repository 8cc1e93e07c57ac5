"""One DIN role as its own OS process: `loyal din participant|evaluator|owner`.

Each process connects to the chain, opens the content store and its own cursor file, then loops:
`step()` (sync events, act on the current stage), sleep when idle. Killed at any point and
restarted with the same arguments, it resumes from its cursor (EventCursor) and re-checks chain
state before every transaction, so nothing is sent twice. Daemons of different processes race
for the permissionless steps (drawing a round seed, finalizing, settling); the loser's transaction
is refused by the contract (a named error), logged, and the next step re-reads the chain. With `exit_when_done` it stops once the
task is settled and it has nothing left to do (its claims are made).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from eth_account.signers.local import LocalAccount

from agents.core.chain import Chain
from common.errors import ConfigError, Reverted
from agents.core.signers import dev_signer, load_keystore

from .contracts import Din, Stage
from .daemon import DinDaemon


def load_role_signer(chain: Chain, keystore: Path | None, dev_account: int | None) -> LocalAccount:
    """A keystore signer (password from LOYAL_KEY_PASSWORD), or dev account `dev_account` on a dev chain."""
    if keystore is not None:
        password = os.environ.get("LOYAL_KEY_PASSWORD")
        if password is None:
            raise ConfigError("keystore password needed: set LOYAL_KEY_PASSWORD")
        return load_keystore(keystore, password)
    if dev_account is None:
        raise ConfigError("pass --keystore FILE (or --dev-account N on a dev chain)")
    if chain.chain_id != 31337:
        raise ConfigError(f"chain {chain.chain_id} is not a dev chain: pass --keystore (dev keys are public)")
    return dev_signer(dev_account)


def cursor_path(home: Path, task: int, role: str, address: str) -> Path:
    return home / "cursors" / f"task{task}-{role}-{address}.json"


def finished(din: Din, task: int) -> bool:
    """The task needs nothing more from anyone: Settle stage and every participant settled."""
    stage, _ = din.stage(task)
    return stage == Stage.Settle and din.totals(task)["settled"] == din.participant_count(task)


def run(daemon: DinDaemon, *, poll: float = 1.0, exit_when_done: bool = False, log=print) -> None:
    """Step `daemon` forever (or until the task is finished and a step sends nothing)."""
    seen = 0
    while True:
        try:
            sent = daemon.step()
        except Reverted as e:
            # another process got there first (e.g. two evaluators finalizing the same subgroup):
            # the next step re-reads the chain and moves on
            log(f"{daemon.role} {daemon.address}: refused by the contract ({e.error_name or e}); retrying")
            time.sleep(poll)
            continue  # never exit on a refused step: the rest of that step (e.g. a claim) still has to run
        for line in daemon.log[seen:]:
            log(f"{daemon.role} {daemon.address}: {line}")
        seen = len(daemon.log)
        if sent == 0:
            if exit_when_done and finished(daemon.din, daemon.task):
                return
            time.sleep(poll)
