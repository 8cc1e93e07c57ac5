"""A local Anvil node on a free loopback port, started and stopped by PID."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from common.errors import ConfigError, RpcUnreachable
from .signers import ANVIL_MNEMONIC

REPO = Path(__file__).resolve().parents[2]


def anvil_binary() -> str:
    local = REPO / "node_modules" / ".bin" / "anvil"
    found = str(local) if local.exists() else shutil.which("anvil")
    if not found:
        raise ConfigError("anvil not found in node_modules/.bin or on PATH: run `make setup`")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_rpc(url: str, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> int:
    """Poll eth_chainId until the node answers; return the chain id."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RpcUnreachable(f"node at {url} exited with code {proc.returncode} before answering")
        try:
            r = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1.0)
            return int(r.json()["result"], 16)
        except (httpx.HTTPError, ValueError, KeyError) as e:
            last = str(e) or type(e).__name__
            time.sleep(0.05)
    raise RpcUnreachable(f"no JSON-RPC node answers at {url} after {timeout:.0f}s ({last})")


CACHE_PREFIX = "loyal-anvil-"


def _sweep_stale_caches() -> None:
    """Remove state caches left by nodes whose starting process died without `stop()` (SIGKILL):
    each cache directory is named after the PID of the process that started its node."""
    for d in Path(tempfile.gettempdir()).glob(f"{CACHE_PREFIX}*-*"):
        pid = d.name.removeprefix(CACHE_PREFIX).partition("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass  # alive, another user's


def _die_with_parent() -> None:
    """In the child before exec: ask the kernel for SIGTERM when the parent dies (Linux only)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux/glibc: the chain then only stops with its parent on SIGTERM/SIGINT


class Anvil:
    """`with Anvil() as node: node.rpc_url` — a throwaway dev chain funded from Anvil's mnemonic."""

    def __init__(self, *, port: int | None = None, accounts: int = 32, balance_eth: int = 10_000,
                 chain_id: int = 31337, block_time: float | None = None, die_with_parent: bool = False):
        """`die_with_parent`: the kernel stops Anvil when the thread that started it dies, even by
        SIGKILL (Linux `PR_SET_PDEATHSIG`); for `loyal devnet`, whose chain must not outlive it."""
        self.die_with_parent = die_with_parent
        self.port = port
        self.accounts = accounts
        self.balance_eth = balance_eth
        self.chain_id = chain_id
        self.block_time = block_time
        self.proc: subprocess.Popen | None = None
        self.cache_dir: Path | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> "Anvil":
        binary = anvil_binary()
        # Anvil writes a full state snapshot per old block under ~/.foundry/anvil/tmp and never
        # removes it when stopped (about 1 MB per block on our suite: gigabytes per test run).
        # Each node gets its own cache directory, removed by stop().
        _sweep_stale_caches()
        for attempt in range(3):
            self.cache_dir = Path(tempfile.mkdtemp(prefix=f"{CACHE_PREFIX}{os.getpid()}-"))
            port = self.port or _free_port()
            cmd = [binary, "--host", "127.0.0.1", "--port", str(port), "--accounts", str(self.accounts),
                   "--balance", str(self.balance_eth), "--mnemonic", ANVIL_MNEMONIC,
                   "--chain-id", str(self.chain_id), "--cache-path", str(self.cache_dir), "--silent"]
            if self.block_time:
                cmd += ["--block-time", str(self.block_time)]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         start_new_session=True,
                                         preexec_fn=_die_with_parent if self.die_with_parent else None)
            self.port = port
            try:
                wait_for_rpc(self.rpc_url, proc=self.proc)
                return self
            except RpcUnreachable:
                err = self.proc.stderr.read().decode(errors="replace").strip() if self.proc.poll() is not None else ""
                self.stop()
                if self.port is not None and attempt < 2 and "in use" in err.lower():
                    self.port = None  # lost a race for the port: pick another
                    continue
                raise RpcUnreachable(f"anvil failed to start on port {port}: {err or 'no answer'}") from None
        raise RpcUnreachable("anvil failed to start after 3 attempts")

    def stop(self) -> None:
        if self.proc is None:
            self._remove_cache()
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None
        self._remove_cache()

    def _remove_cache(self) -> None:
        if self.cache_dir is not None:
            shutil.rmtree(self.cache_dir, ignore_errors=True)
            self.cache_dir = None

    def __enter__(self) -> "Anvil":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
