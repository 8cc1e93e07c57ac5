"""The blobs a DIN task names on-chain, fetched under one rule every honest party applies.

A CID on-chain is only a claim: the bytes may never have been stored, the string may not be a CID,
the store may hand back other bytes, the blob may be gigabytes. `Blobs` tells the two kinds of
failure apart:

- **The store is down** (`StoreUnavailable`, a `TransientError`): raised as it is; the daemon backs
  off and retries the step. Nothing is judged while the store does not answer.
- **The blob is unavailable**: not found (the embedded store answers at once; an IPFS daemon
  searches for `fetch_timeout` seconds, the `fetch_timeout` setting), not a CID, corrupt, larger
  than any blob of the task's model can be (`max_blob_bytes`), or unreadable by a daemon that
  still reads the genesis model (a malformed dag-pb block: anyone can store one; if the genesis
  read fails too, the daemon is what is broken: transient). That is a *verdict about the CID*,
  not an error: an unavailable participant update is an unusable update, exactly like unparsable
  bytes (left out of its subgroup's aggregate, scored 0; the participant's fault, never the
  evaluators'). Verdicts are kept in the daemon's cursor file, so a missing blob is waited for once
  per daemon, and one evaluator's aggregate and its scores judge an update the same way.

Models:
- the task's **genesis** model must be fetchable and parse, or nothing can be trained or judged:
  `genesis()` raises `ModelUnavailable`, a permanent error naming the fix (e.g. set `ipfs_api`).
  Its verdict is never cached: once the store is fixed, the next start finds it.
- an accepted **global model** that is unavailable, or is not a finite model of the genesis layout,
  is skipped by `DinDaemon.global_before`: a round trains from the latest earlier accepted global
  model that can be fetched and used, else from genesis (see docs/din.md, "Unavailable blobs").
"""
from __future__ import annotations

from typing import Callable, Mapping

from agents.core.store import (BlobNotFound, BlobTooLarge, BlobUnreadable, ContentStore, CorruptBlob, InvalidCid,
                                KuboStore, LocalStore, StoreError, StoreUnavailable)
from common.errors import LoyalError
from ml.din import model as M
from ml.din.errors import BadUpdate

#: Failures that are a verdict about a CID (StoreUnavailable is not among them: it is transient).
UNAVAILABLE = (BlobNotFound, InvalidCid, CorruptBlob, BlobTooLarge)


class ModelUnavailable(LoyalError):
    """The task's genesis model cannot be fetched or parsed: this daemon can do nothing for the task."""


def max_blob_bytes(layout: M.Layout) -> int:
    """Upper bound on any blob of a task with this layout: a model or clear update (4 bytes per
    value) or a masked upload (8 bytes per value), plus a generous 64 KiB for headers."""
    return 8 * M.size_of(layout) + (64 << 10)


class Blobs:
    """Fetches the blobs of one task for one daemon and remembers which CIDs are unavailable.

    `verdicts` (CID -> reason) is persisted by `persist()` (the daemon's cursor); `note(msg)` logs
    each new verdict once; `load_genesis()` is called (it calls `genesis`) when the layout is needed
    before anyone fetched the genesis model."""

    def __init__(self, store: ContentStore, verdicts: dict[str, str], *, load_genesis: Callable[[], bytes],
                 persist: Callable[[], None] = lambda: None, note: Callable[[str], None] = lambda m: None):
        self.store = store
        self.verdicts = verdicts
        self.load_genesis = load_genesis
        self.persist = persist
        self.note = note
        self._models: dict[str, bytes] = {}  # content-addressed, so cached bytes never go stale
        self._genesis_layout: M.Layout | None = None
        self._genesis_cid: str | None = None

    def fetch(self, cid: str, what: str, max_bytes: int | None = None) -> bytes | None:
        """The bytes of `cid`, or None if it is unavailable (reason in `verdicts[cid]`)."""
        if cid in self.verdicts:
            return None
        try:
            return self.store.get(cid, max_bytes=max_bytes)
        except UNAVAILABLE as e:
            self._judge(cid, str(e), what)
            return None
        except BlobUnreadable as e:
            self._store_reads_genesis(e)
            self._judge(cid, str(e), what)
            return None

    def _store_reads_genesis(self, failure: StoreError) -> None:
        """Blame a blob the daemon fails on only while it still reads the genesis model."""
        if self._genesis_cid is None:
            self.load_genesis()
        try:
            self.store.get(self._genesis_cid)  # type: ignore[arg-type]
        except StoreError as e:
            raise StoreUnavailable(self.store.location, f"{failure}; and the genesis model fails too: {e}") from None

    def _judge(self, cid: str, reason: str, what: str) -> None:
        self.verdicts[cid] = reason
        self.persist()
        self.note(f"{what} {cid!r} is unusable: {reason}")

    def updates(self, submitted: Mapping[str, str], what: str) -> tuple[dict[str, bytes], dict[str, str]]:
        """Participant -> update bytes for the fetchable ones, and participant -> reason for the
        unavailable ones (`submitted`: participant -> CID on-chain)."""
        limit = max_blob_bytes(self.layout)
        got: dict[str, bytes] = {}
        unavailable: dict[str, str] = {}
        for who, cid in sorted(submitted.items()):
            blob = self.fetch(cid, f"{what}: update of {who}", limit)
            if blob is None:
                unavailable[who] = self.verdicts[cid]
            else:
                got[who] = blob
        return got, unavailable

    def model(self, cid: str, what: str) -> bytes | None:
        """A model's bytes if `cid` is fetchable and is a finite model of the genesis layout, else None."""
        if cid in self._models:
            return self._models[cid]
        layout = self.layout
        blob = self.fetch(cid, what, max_blob_bytes(layout))
        if blob is None:
            return None
        try:
            M.from_bytes(blob, layout, what)
        except BadUpdate as e:
            self._judge(cid, f"not a model of the task's layout: {e.reason}", what)
            return None
        self._models[cid] = blob
        return blob

    def genesis(self, cid: str, task: int) -> bytes:
        """The genesis model's bytes (fixes `layout`); ModelUnavailable naming the fix otherwise."""
        if cid in self._models:
            return self._models[cid]
        try:
            blob = self.store.get(cid)
            state = M.from_bytes(blob, who="the genesis model")
            M.check(state, M.layout_of(state), "the genesis model")
        except BlobNotFound as e:
            raise ModelUnavailable(f"task {task}: genesis model {cid} not found {self._where()}: "
                                   f"{self._fix()}") from e
        except BlobUnreadable as e:
            raise ModelUnavailable(f"task {task}: {e} (the genesis model); check that daemon") from e
        except (InvalidCid, CorruptBlob, BadUpdate) as e:
            raise ModelUnavailable(f"task {task}: the genesis model is unusable ({e}); "
                                   "nobody can train this task") from e
        self._genesis_layout = M.layout_of(state)
        self._genesis_cid = cid
        self._models[cid] = blob
        return blob

    @property
    def layout(self) -> M.Layout:
        """The task's model layout (the genesis model's; fetched on first use)."""
        if self._genesis_layout is None:
            self.load_genesis()
        assert self._genesis_layout is not None
        return self._genesis_layout

    def _where(self) -> str:
        if isinstance(self.store, LocalStore):
            return f"in the embedded store {self.store.location}"
        return f"by the IPFS daemon at {self.store.location}"

    def _fix(self) -> str:
        if isinstance(self.store, KuboStore):
            return (f"within fetch_timeout ({self.store.fetch_timeout:g} s); connect that daemon to the "
                    "owner's IPFS network or raise fetch_timeout (env LOYAL_FETCH_TIMEOUT)")
        return ("this machine does not share the task's content; set ipfs_api (env IPFS_API) to the Kubo RPC "
                "API of the IPFS daemon the task's owner, participants and evaluators share")
