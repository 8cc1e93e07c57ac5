"""Daemon logs: `logging` to stderr, one line per record, UTC ISO timestamps.

    2026-12-01T15:04:05.123Z INFO loyal.din.participant 0x70997970…79C8: round 0: submitted bafk…
"""
from __future__ import annotations

import logging
import sys
import time

FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once per process (idempotent); `level` is a logging level name."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        from common.errors import ConfigError

        raise ConfigError(f"bad log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    root = logging.getLogger()
    if not any(getattr(h, "_loyal", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        formatter = logging.Formatter(FORMAT, datefmt="%Y-%m-%dT%H:%M:%S")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
        handler._loyal = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(numeric)
    for noisy in ("urllib3", "httpx", "web3", "filelock", "matplotlib"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))


def short(address: str) -> str:
    """0x70997970C51812dc3A010C7d01b50e0d17dc79C8 -> 0x7099…79C8 (for log lines)."""
    return f"{address[:6]}…{address[-4:]}"
