"""One DIN role as its own OS process: `loyal din participant|evaluator|owner`.

Each process connects to the chain, opens the content store and its own cursor file, then runs
`agents.core.daemon.run_daemon`: `step()` (sync events, act on the current stage), sleep when idle.
Killed at any point and restarted with the same arguments, it resumes from its cursor
(EventCursor) and re-checks chain state before every transaction, so nothing is sent twice.
Daemons of different processes race for the permissionless steps (drawing a round seed,
finalizing, settling); the loser's transaction is refused by the contract (a named error), logged,
and the next step re-reads the chain. With `exit_when_done` it stops once the task is settled and
it has nothing left to do (its claims are made).

Exit rule: "finished" is read *before* a step, and the daemon exits only when a step that began
with the task already finished sent nothing. A step that began earlier may have skipped a claim
because the task was not finished yet (a participant reads "not all settled", an evaluator steps
in the last round's GlobalReveal or in Close), and the last settlement may land between that step and the check: reading
"finished" after the step would exit without the claim.
"""
from __future__ import annotations

import logging
from pathlib import Path

from agents.core.daemon import run_daemon
from agents.core.logs import short

from .contracts import Din, Stage
from .daemon import DinDaemon


def cursor_path(home: Path, task: int, role: str, address: str) -> Path:
    return home / "cursors" / f"task{task}-{role}-{address}.json"


def finished(din: Din, task: int) -> bool:
    """The task needs nothing more from anyone: Settle stage and every participant settled."""
    stage, _ = din.stage(task)
    return stage == Stage.Settle and din.all_settled(task)


def run(daemon: DinDaemon, *, poll: float = 1.0, exit_when_done: bool = False,
        max_steps: int | None = None) -> None:
    """Step `daemon` until a step that began with the task finished sends nothing (or forever)."""
    log = logging.getLogger(f"loyal.din.{daemon.role}")
    prefix = f"task {daemon.task} {short(daemon.address)}"
    seen = 0
    finished_before_step = False

    def step() -> int:
        nonlocal seen, finished_before_step
        if exit_when_done and not finished_before_step:  # once finished, a task stays finished
            finished_before_step = finished(daemon.din, daemon.task)
        try:
            return daemon.step()
        finally:  # actions of a step that later failed were still done: log them
            for line in daemon.log[seen:]:
                log.info("%s: %s", prefix, line)
            seen = len(daemon.log)

    log.info("%s: started", prefix)
    run_daemon(step, log=log, poll=poll, max_steps=max_steps,
               done=(lambda: finished_before_step) if exit_when_done else None)
    log.info("%s: task finished, nothing left to do", prefix)
