"""The loop every role daemon runs: step, sleep when idle, and tell transient errors from permanent ones.

- **Transient** (`TransientError`: node unreachable, receipt timeout): back off exponentially
  (tenacity's wait strategy, up to `MAX_BACKOFF` s), log once per streak, keep going.
- **Refused by the contract** (`Reverted`): usually a lost race (two evaluators finalizing one
  subgroup) or a stage that moved on; the next step re-reads the chain. The same refusal again
  and again backs off like a transient error and is logged once, so a daemon never spins.
- **Permanent** (every other `LoyalError`: no funds, bad key, missing deployment): raised to the
  caller, whose CLI prints it once (one line naming the fix) and exits 1.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from tenacity import wait_exponential

from common.errors import Reverted, TransientError

MAX_BACKOFF = 30.0


@dataclass
class DaemonStats:
    steps: int = 0
    sent: int = 0
    retries: int = 0  # steps that failed transiently or were refused


def run_daemon(step: Callable[[], int], *, log: logging.Logger, poll: float = 1.0,
               done: Callable[[], bool] | None = None, sleep: Callable[[float], None] = time.sleep,
               max_steps: int | None = None) -> DaemonStats:
    """Call `step()` (returns transactions sent) until `done()` holds after an idle step.

    `max_steps` bounds the loop (tests); `sleep` is injectable for the same reason.
    """
    wait = wait_exponential(multiplier=poll, min=poll, max=MAX_BACKOFF)
    stats = DaemonStats()
    streak = 0  # consecutive failed steps
    last_problem: str | None = None
    while max_steps is None or stats.steps < max_steps:
        stats.steps += 1
        try:
            sent = step()
        except TransientError as e:
            problem = f"{type(e).__name__}: {e}"
        except Reverted as e:
            problem = f"refused by the contract: {e.error_name or e}"
        else:
            if streak:
                log.info("recovered after %d failed step(s)", streak)
            streak, last_problem = 0, None
            stats.sent += sent
            if sent == 0:
                if done is not None and done():
                    return stats
                sleep(poll)
            continue
        stats.retries += 1
        streak += 1
        delay = wait(_Attempt(streak))
        if problem != last_problem:  # log a new problem once; repeats only back off
            log.warning("%s; retrying (backing off up to %.0f s)", problem, MAX_BACKOFF)
            last_problem = problem
        sleep(delay)
    return stats


class _Attempt:
    """The bit of tenacity's RetryCallState its wait strategies read."""

    def __init__(self, n: int):
        self.attempt_number = n
