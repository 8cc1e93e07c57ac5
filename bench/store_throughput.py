"""Content store throughput: put/get MB/s, embedded LocalStore vs a real offline IPFS daemon (js-ipfs).

put = hash to CIDv1 + store (LocalStore: fsync'd file; daemon: HTTP /add with pin);
get = fetch + re-hash check. Fresh random bytes for every put (no dedup shortcut).
Run: `.venv/bin/python -m bench.store_throughput` (needs `make ipfs`).
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from agents.core.ipfs_daemon import ipfs_daemon
from agents.core.store import ContentStore, KuboStore, LocalStore, cid_of

from . import write

MIB = 1 << 20
CASES = [(1 * MIB, 8), (32 * MIB, 3)]  # (blob size, repetitions)


def _mbps(size: int, seconds: list[float]) -> float:
    return round(size / MIB / statistics.median(seconds), 1)


def measure(store: ContentStore, size: int, reps: int) -> dict:
    put_s, get_s = [], []
    for _ in range(reps):
        data = os.urandom(size)
        t0 = time.perf_counter()
        cid = store.put(data)
        t1 = time.perf_counter()
        back = store.get(cid)
        t2 = time.perf_counter()
        assert back == data
        put_s.append(t1 - t0)
        get_s.append(t2 - t1)
    return {"put_MBps": _mbps(size, put_s), "get_MBps": _mbps(size, get_s), "reps": reps}


def hash_only(size: int, reps: int) -> float:
    data = os.urandom(size)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        cid_of(data)
        times.append(time.perf_counter() - t0)
    return _mbps(size, times)


def main() -> None:
    results: dict = {"sizes_MiB": [s // MIB for s, _ in CASES], "hash_only_MBps": {}, "embedded": {}, "daemon": {}}
    for size, reps in CASES:
        results["hash_only_MBps"][f"{size // MIB}MiB"] = hash_only(size, reps)
    with tempfile.TemporaryDirectory(prefix="loyal-bench-store-") as tmp:
        local = LocalStore(Path(tmp) / "store")
        for size, reps in CASES:
            results["embedded"][f"{size // MIB}MiB"] = measure(local, size, reps)
    t0 = time.perf_counter()
    with ipfs_daemon() as url:
        results["daemon_start_s"] = round(time.perf_counter() - t0, 1)
        results["daemon"]["impl"] = "js-ipfs 0.66.1 (Kubo RPC API), offline, Node " + os.popen("node --version").read().strip()
        with KuboStore(url) as kubo:
            for size, reps in CASES:
                results["daemon"][f"{size // MIB}MiB"] = measure(kubo, size, reps)
    write("store_throughput", results)


if __name__ == "__main__":
    main()
