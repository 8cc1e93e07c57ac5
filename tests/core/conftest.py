"""Core fixtures: one real offline IPFS daemon (js-ipfs 0.66.1) per test session."""
from __future__ import annotations

import pytest

from agents.core.ipfs_daemon import ipfs_daemon


@pytest.fixture(scope="session")
def ipfs_api():
    """Kubo RPC API URL of a js-ipfs daemon in a temp repo, stopped by PID after the session."""
    with ipfs_daemon() as url:
        yield url
