"""Shared fixtures: one real Anvil per test session with the whole suite deployed from source.

Each test runs against a snapshot that is reverted afterwards, so tests see a fresh suite without
paying for a redeploy.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

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

REPO = Path(__file__).resolve().parents[1]
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


@pytest.fixture(scope="session")
def ipfs_api():
    """Kubo RPC API URL of a real offline IPFS daemon (js-ipfs 0.66.1) in a temp repo, stopped by
    PID after the session (content store tests, DIN participants on separate machines)."""
    from agents.core.ipfs_daemon import ipfs_daemon

    with ipfs_daemon() as url:
        yield url


@pytest.fixture
def store(tmp_path):
    from agents.core.store import LocalStore

    return LocalStore(tmp_path / "store")


class ApeRunner:
    """Runs `tools/ape/ape run SCRIPT ...` (Ape lives in its own env `.venv-ape`: it pins web3<8)
    against the session's Anvil and an address book."""

    APE = Path(__file__).resolve().parents[1] / "tools" / "ape" / "ape"

    def __init__(self, rpc_url: str, deployments: Path):
        self.rpc_url, self.deployments = rpc_url, deployments

    def run(self, args: list[str], deployments: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        env.update(APE_FOUNDRY_HOST=self.rpc_url, LOYAL_DEPLOYMENTS=str(deployments or self.deployments))
        return subprocess.run([str(self.APE), "run", *args], env=env, capture_output=True, text=True, timeout=300)

    def json(self, args: list[str]) -> dict:
        """Run a script with `--json` among its args; fail the test with its output if it fails."""
        res = self.run(args)
        assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
        return json.loads(res.stdout[res.stdout.index("{"):])


@pytest.fixture
def ape(chain, anvil):
    """Ape console scripts against the deployed suite; skips when `.venv-ape` is absent."""
    if not (REPO / ".venv-ape" / "bin" / "ape").exists():
        pytest.skip(".venv-ape is absent: run `make ape-setup` (Ape pins web3<8, so it lives in its own env)")
    return ApeRunner(anvil.rpc_url, chain.book.path.parent)
