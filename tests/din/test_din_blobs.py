"""`Blobs`: a blob a task names is either bytes, a verdict about its CID (kept, judged once), or a
transient store failure (raised, nothing judged). No chain needed."""
from __future__ import annotations

import pytest

from agents.core.store import BlobUnreadable, KuboStore, LocalStore, StoreUnavailable, cid_of
from agents.din.blobs import Blobs, ModelUnavailable, max_blob_bytes
from common.errors import TransientError
from ml.din import model as M

GENESIS = M.to_bytes(M.state_of(M.build(seed=0)))
LAYOUT = M.layout_of(M.from_bytes(GENESIS))


class CountingStore(LocalStore):
    """A LocalStore that counts reads and can be told to fail like a daemon would."""

    def __init__(self, root):
        super().__init__(root)
        self.reads: list[str] = []
        self.unreadable: set[str] = set()
        self.down = False

    def get(self, cid, max_bytes=None):
        self.reads.append(cid)
        if self.down:
            raise StoreUnavailable("http://ipfs.test", "connection refused")
        if cid in self.unreadable:
            raise BlobUnreadable(cid, "http://ipfs.test", "protobuf: invalid wireType")
        return super().get(cid, max_bytes)


@pytest.fixture
def setup(tmp_path):
    store = CountingStore(tmp_path / "store")
    genesis = store.put(GENESIS)
    verdicts: dict[str, str] = {}
    saved, notes = [], []
    blobs = Blobs(store, verdicts, load_genesis=lambda: blobs.genesis(genesis, 0),
                  persist=lambda: saved.append(dict(verdicts)), note=notes.append)
    return store, blobs, verdicts, saved, notes


def test_an_unavailable_update_is_judged_once_and_remembered(setup):
    store, blobs, verdicts, saved, notes = setup
    good = store.put(M.to_bytes(M.sub(M.from_bytes(GENESIS), M.from_bytes(GENESIS))))
    never = cid_of(b"never stored")
    oversized = store.put(b"x" * (max_blob_bytes(LAYOUT) + 1))
    submitted = {"0xA": good, "0xB": never, "0xC": "not-a-cid", "0xD": oversized}
    got, unavailable = blobs.updates(submitted, "round 0 group 0")
    assert set(got) == {"0xA"} and set(unavailable) == {"0xB", "0xC", "0xD"}
    assert "not found" in verdicts[never] and "invalid CID" in verdicts["not-a-cid"]
    assert "larger than" in verdicts[oversized]
    assert saved[-1] == verdicts and len(notes) == 3 and all("is unusable" in n for n in notes)
    reads = len(store.reads)
    again, _ = blobs.updates(submitted, "round 0 group 0")  # judged once: no second wait
    assert set(again) == {"0xA"} and len(store.reads) == reads + 1 and len(notes) == 3


def test_a_store_that_is_down_judges_nothing(setup):
    store, blobs, verdicts, _, _ = setup
    blobs.genesis(store.put(GENESIS), 0)
    store.down = True
    with pytest.raises(StoreUnavailable) as e:
        blobs.updates({"0xA": cid_of(b"anything")}, "round 0")
    assert isinstance(e.value, TransientError) and verdicts == {}


def test_an_unreadable_blob_is_its_own_fault_only_while_the_daemon_reads_genesis(setup):
    store, blobs, verdicts, _, _ = setup
    bad = cid_of(b"malformed dag-pb")
    store.unreadable.add(bad)
    assert blobs.fetch(bad, "update of 0xA", 1000) is None and "cannot be read" in verdicts[bad]
    worse = cid_of(b"another")
    store.unreadable.update({worse, cid_of(GENESIS)})  # the daemon now fails on everything
    with pytest.raises(TransientError):
        blobs.fetch(worse, "update of 0xB", 1000)
    assert worse not in verdicts


def test_a_global_model_must_be_a_finite_model_of_the_genesis_layout(setup):
    store, blobs, verdicts, _, _ = setup
    small = store.put(M.to_bytes(M.state_of(M.build(seed=1, hidden=8))))
    nan_state = M.from_bytes(GENESIS)
    nan_state["fc2.bias"][0] = float("nan")
    nan = store.put(M.to_bytes(nan_state))
    fine = store.put(M.to_bytes(M.state_of(M.build(seed=2))))
    assert blobs.model(small, "global of round 0") is None and "not a model of the task's layout" in verdicts[small]
    assert blobs.model(nan, "global of round 1") is None and "NaN" in verdicts[nan]
    assert blobs.model(fine, "global of round 2") == store.get(fine)


def test_genesis_missing_names_the_fix(tmp_path):
    blobs = Blobs(LocalStore(tmp_path / "empty"), {}, load_genesis=lambda: b"")
    cid = cid_of(GENESIS)
    for _ in range(2):  # never cached: a later start after fixing the setting finds it
        with pytest.raises(ModelUnavailable) as e:
            blobs.genesis(cid, 3)
        assert cid in str(e.value) and "IPFS_API" in str(e.value) and "task 3" in str(e.value)
    with pytest.raises(ModelUnavailable, match="nobody can train this task"):
        store = LocalStore(tmp_path / "s")
        blobs = Blobs(store, {}, load_genesis=lambda: b"")
        blobs.genesis(store.put(b"not a model"), 3)


def test_genesis_behind_a_daemon_that_is_down_is_transient():
    blobs = Blobs(KuboStore("http://127.0.0.1:1", connect_timeout=1.0), {}, load_genesis=lambda: b"")
    with pytest.raises(TransientError):
        blobs.genesis(cid_of(GENESIS), 0)
