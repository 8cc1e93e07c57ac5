"""Shared fixtures: one real Anvil per test session with the whole suite deployed from source.

Each test runs against a snapshot that is reverted afterwards, so tests see a fresh suite without
paying for a redeploy.
"""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1")

from agents.core.anvil import Anvil  # noqa: E402
from agents.core.chain import Chain  # noqa: E402
from agents.core.deploy import deploy_suite  # noqa: E402
from agents.core.signers import dev_signer  # noqa: E402

N_SIGNERS = 24
TOKENS_EACH = 1_000_000 * 10**18


@pytest.fixture(scope="session")
def anvil():
    with Anvil(accounts=N_SIGNERS + 8) as node:
        yield node


@pytest.fixture(scope="session")
def _suite(anvil, tmp_path_factory):
    chain = Chain.connect(anvil.rpc_url, book_path=tmp_path_factory.mktemp("deployments") / "31337.json")
    admin = dev_signer(0)
    deploy_suite(chain, admin)
    token = chain.contract("LoyalToken")
    for i in range(1, N_SIGNERS):
        chain.transact(admin, token.functions.mint(dev_signer(i).address, TOKENS_EACH))
    return chain


@pytest.fixture
def chain(_suite):
    """The deployed suite; every change a test makes is reverted after it."""
    snap = _suite.snapshot()
    yield _suite
    _suite.revert_to(snap)


@pytest.fixture(scope="session")
def signers():
    """Funded dev accounts: [0] is the deployer/admin, [1:] hold TOKENS_EACH LoyalToken each."""
    return [dev_signer(i) for i in range(N_SIGNERS)]


@pytest.fixture
def store(tmp_path):
    from agents.core.store import LocalStore

    return LocalStore(tmp_path / "store")
