"""A real, offline IPFS daemon (js-ipfs 0.66.1 from `tools/ipfs`) for tests and benchmarks.

    with ipfs_daemon() as api_url:
        store = KuboStore(api_url)

The daemon gets a fresh repo in a temp dir (`init --profile test`; API and gateway on free loopback
ports; no swarm listeners, bootstrap peers or discovery), runs `daemon --offline`, and is stopped by
its PID (process group) on exit. Install it with `make ipfs` (npm install against the lockfile).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

from common.errors import LoyalError

REPO_ROOT = Path(__file__).resolve().parents[2]
IPFS_DIR = REPO_ROOT / "tools" / "ipfs"


class IpfsDaemonError(LoyalError):
    """js-ipfs is not installed, or its daemon did not come up."""


def _jsipfs_cmd(ipfs_dir: Path) -> list[str]:
    cli = ipfs_dir / "node_modules" / "ipfs" / "src" / "cli.js"
    if not cli.is_file():
        raise IpfsDaemonError(f"js-ipfs is not installed ({cli} missing): run `make ipfs`")
    node = shutil.which("node")
    if node is None:
        raise IpfsDaemonError("`node` is not on PATH: js-ipfs needs Node.js")
    # Node 20 lacks Promise.withResolvers, which js-ipfs' libp2p calls: preload a polyfill.
    return [node, "--require", str(ipfs_dir / "polyfill.cjs"), str(cli)]


def _configure(repo: Path) -> None:
    path = repo / "config"
    config = json.loads(path.read_text())
    config["Addresses"].update(
        Swarm=[],
        API="/ip4/127.0.0.1/tcp/0",
        Gateway="/ip4/127.0.0.1/tcp/0",
        RPC="/ip4/127.0.0.1/tcp/0",
        Delegates=[],
    )
    config["Bootstrap"] = []
    discovery = config.setdefault("Discovery", {})
    discovery["MDNS"] = {"Enabled": False}
    discovery["webRTCStar"] = {"Enabled": False}
    path.write_text(json.dumps(config, indent=2))


def _api_url(repo: Path) -> str | None:
    try:
        multiaddr = (repo / "api").read_text().strip()
    except FileNotFoundError:
        return None
    parts = multiaddr.split("/")  # ['', 'ip4', host, 'tcp', port, 'http']
    if len(parts) < 5 or parts[3] != "tcp":
        return None
    return f"http://{parts[2]}:{parts[4]}"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # our own process group, created by start_new_session
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def ipfs_daemon(*, startup_timeout: float = 180.0, ipfs_dir: Path = IPFS_DIR) -> Iterator[str]:
    """Start an offline js-ipfs daemon in a temp repo; yield its Kubo RPC API URL; stop it by PID."""
    cmd = _jsipfs_cmd(ipfs_dir)
    with tempfile.TemporaryDirectory(prefix="loyal-ipfs-") as tmp:
        repo = Path(tmp) / "repo"
        env = {**os.environ, "IPFS_PATH": str(repo), "IPFS_MONITORING": "0"}
        init = subprocess.run(
            cmd + ["init", "--profile", "test"], env=env, capture_output=True, text=True, timeout=startup_timeout
        )
        if init.returncode != 0:
            tail = (init.stderr or init.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise IpfsDaemonError(f"`jsipfs init` failed (exit {init.returncode}): {tail[0]}")
        _configure(repo)
        log_path = Path(tmp) / "daemon.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd + ["daemon", "--offline"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            url = _wait_ready(proc, repo, log_path, startup_timeout)
            yield url
        finally:
            _stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], repo: Path, log_path: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise IpfsDaemonError(f"js-ipfs daemon exited with {proc.returncode}: {' | '.join(tail)}")
        url = _api_url(repo)
        if url is not None:
            try:
                if httpx.post(url + "/api/v0/id", timeout=2.0).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
        time.sleep(0.25)
    raise IpfsDaemonError(f"js-ipfs daemon did not answer on its API within {timeout:.0f} s")
