"""The daemon loop tells transient errors from permanent ones and never spins."""
from __future__ import annotations

import logging

import pytest

from agents.core.daemon import MAX_BACKOFF, run_daemon
from common.errors import InsufficientFunds, Reverted, RpcUnreachable


class Script:
    """A step that replays outcomes in order: an int (transactions sent) or an exception."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)

    def __call__(self) -> int:
        o = self.outcomes.pop(0)
        if isinstance(o, Exception):
            raise o
        return o


def test_transient_errors_back_off_exponentially_and_log_once(caplog):
    sleeps: list[float] = []
    down = RpcUnreachable("no JSON-RPC node answers at http://x")
    step = Script(down, down, down, down, down, down, down, 1, 0)
    with caplog.at_level(logging.INFO):
        stats = run_daemon(step, log=logging.getLogger("t"), poll=0.5, sleep=sleeps.append, done=lambda: True)
    assert sleeps[:7] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, MAX_BACKOFF]  # capped, never a busy loop
    assert stats.retries == 7 and stats.sent == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no JSON-RPC node" in warnings[0].getMessage()
    assert any("recovered after 7" in r.getMessage() for r in caplog.records)


def test_a_refusal_repeated_backs_off_instead_of_spinning(caplog):
    sleeps: list[float] = []
    refused = Reverted.named("RegistrationClosed")("reverted: RegistrationClosed(...)")
    step = Script(*[refused] * 10)
    with caplog.at_level(logging.WARNING):
        stats = run_daemon(step, log=logging.getLogger("t"), poll=1.0, sleep=sleeps.append, max_steps=10)
    assert stats.retries == 10 and sum(sleeps) > 10 * 1.0 and max(sleeps) == MAX_BACKOFF
    assert len(caplog.records) == 1 and "RegistrationClosed" in caplog.records[0].getMessage()


def test_a_lost_race_is_retried_at_once_then_work_goes_on():
    sleeps: list[float] = []
    lost = Reverted.named("AlreadyFinalized")("reverted: AlreadyFinalized()")
    stats = run_daemon(Script(lost, 2, 0), log=logging.getLogger("t"), poll=0.25, sleep=sleeps.append,
                       done=lambda: True)
    assert stats.sent == 2 and sleeps == [0.25]  # one poll interval after the refusal, none after work


def test_permanent_errors_stop_the_daemon_with_the_fix():
    broke = InsufficientFunds("account 0xabc has 0 LOYAL, the participant bond needs 1 LOYAL: `loyal token transfer ...`")
    sleeps: list[float] = []
    with pytest.raises(InsufficientFunds, match="loyal token transfer"):
        run_daemon(Script(0, broke), log=logging.getLogger("t"), poll=1.0, sleep=sleeps.append)
    assert sleeps == [1.0]  # it slept once when idle, then stopped at the permanent error
