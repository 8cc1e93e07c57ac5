"""`loyal oml host serve`: a licensed host as its own OS process, safe to SIGKILL.

The process loads its decrypted copy (`model_dir.py`), serves the OpenAI-compatible API (`host.py`'s
app, uvicorn in a thread) and runs the daemon loop (`agents.core.daemon.run_daemon`) in the main
thread: every step defends the claims revealed against it since the last step (`Host.defend_all`,
an `EventFollower` with a cursor file) and, when `usage_every` seconds have passed or `batch`
permits are pending, posts one usage batch.

What it knows lives in its state folder and survives a kill:

- `permits.jsonl`: every permit the platform granted, appended before the query is answered;
- `usage.json` (atomic): the digests of every posted batch by batch id, and the *intent* of the
  batch being posted (its digests and the block before sending). A restarted host with an intent
  looks for its `UsagePosted` (same host, same root) from that block on: found, the batch is
  recorded as posted; not found, it is sent again. So a batch is paid once, however the kill falls;
- `claims-cursor.json`: the claim follower's position (a defence replayed after a kill is harmless:
  `defend` re-reads the claim and answers only an open one).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from agents.core.events import fetch_events
from common.files import atomic_write_json

from .host import Host, PermissionDenied  # noqa: F401  (PermissionDenied: re-exported for callers)
from .permits import Permit, UsageTree

log = logging.getLogger("loyal.oml.host")


class DurableHost(Host):
    """A `Host` whose permits and usage batches are kept in `state_dir` (see the module docstring)."""

    def __init__(self, *a, state_dir: Path, **kw):
        state_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(*a, cursor_path=state_dir / "claims-cursor.json", **kw)
        self.state_dir = state_dir
        self._permit_log = state_dir / "permits.jsonl"
        self._usage_path = state_dir / "usage.json"
        self._log_lock = threading.Lock()
        self._usage = json.loads(self._usage_path.read_text()) if self._usage_path.exists() else \
            {"batches": {}, "intent": None}
        self._restore()

    # -- persistence -------------------------------------------------------------------------
    def _restore(self) -> None:
        permits = []
        if self._permit_log.exists():
            for line in self._permit_log.read_text().splitlines():
                if line.strip():
                    try:
                        permits.append(Permit.from_json(json.loads(line)))
                    except (ValueError, KeyError):
                        log.warning("skipping a torn line at the end of %s", self._permit_log)
        by_digest = {self.digest(p): p for p in permits}
        posted = set()
        for batch_id, digests in self._usage["batches"].items():
            ds = [bytes.fromhex(d) for d in digests]
            tree = UsageTree(ds)
            for d in ds:
                self.state.batch_of[d] = (int(batch_id), tree)
                posted.add(d)
        intent = {bytes.fromhex(d) for d in (self._usage["intent"] or {}).get("digests", [])}
        for p in permits:
            self.state.by_query[p.query_hash] = p
        self.state.pending = [p for d, p in by_digest.items() if d not in posted and d not in intent]
        self.state.served = len(permits)

    def _save_usage(self) -> None:
        atomic_write_json(self._usage_path, self._usage, indent=None)

    def request_permits(self, queries: list[str]) -> list[Permit]:
        permits = super().request_permits(queries)
        with self._log_lock, self._permit_log.open("a") as f:
            f.writelines(json.dumps(p.to_json()) + "\n" for p in permits)
            f.flush()
        return permits

    # -- usage, exactly once ---------------------------------------------------------------------
    def post_usage(self) -> dict | None:
        """Post the pending permits as one batch, or finish the batch a killed run was posting."""
        intent = self._usage["intent"]
        if intent is None:
            with self._lock:
                batch, self.state.pending = self.state.pending, []
            if not batch:
                return None
            digests = [self.digest(p) for p in batch]
            intent = {"digests": [d.hex() for d in digests], "from_block": self.chain.w3.eth.block_number}
            self._usage["intent"] = intent
            self._save_usage()
        digests = [bytes.fromhex(d) for d in intent["digests"]]
        tree = UsageTree(digests)
        ev = self._posted(tree.root, intent["from_block"])
        if ev is None:
            receipt = self.chain.transact(
                self.signer, self._ledger.functions.postUsage(self.model_id, len(digests), tree.root))
            ev = next(e for e in self.chain.decode_events(receipt) if e.name == "UsagePosted")
            gas = receipt["gasUsed"]
        else:
            log.info("usage batch %s was posted before a restart; recorded, not sent again", ev.args["batchId"])
            gas = 0
        batch_id = int(ev.args["batchId"])
        self._usage["batches"][str(batch_id)] = intent["digests"]
        self._usage["intent"] = None
        self._save_usage()
        with self._lock:
            for d in digests:
                self.state.batch_of[d] = (batch_id, tree)
        return {"batch_id": batch_id, "count": len(digests), "fee": ev.args["fee"], "gas": gas,
                "root": "0x" + tree.root.hex()}

    def _posted(self, root: bytes, from_block: int):
        for ev in fetch_events(self.chain, from_block=from_block, contracts=["UsageLedger"], names=["UsagePosted"]):
            if ev.args["host"] == self.address and bytes(ev.args["root"]) == root \
                    and int(ev.args["modelId"]) == self.model_id:
                return ev
        return None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self.state.pending) + (1 if self._usage["intent"] else 0)


class HostDaemon:
    """One step: defend new claims, post usage when due. Returns transactions sent."""

    def __init__(self, host: DurableHost, *, usage_every: float = 60.0, batch: int = 1000):
        self.host = host
        self.usage_every = usage_every
        self.batch = batch
        self._last_post = time.monotonic()

    def step(self) -> int:
        sent = 0
        for claim_id, how in self.host.defend_all().items():
            log.info("defended claim %d with a %s", claim_id, how)
            sent += 1
        due = time.monotonic() - self._last_post >= self.usage_every
        if self.host.pending and (due or self.host.pending >= self.batch or self.host._usage["intent"]):
            out = self.host.post_usage()
            self._last_post = time.monotonic()
            if out:
                log.info("usage batch %d: %d queries, fee %s wei, gas %d", out["batch_id"], out["count"],
                         out["fee"], out["gas"])
                sent += 1
        return sent
