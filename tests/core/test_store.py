"""Content store: kubo-compatible CIDs, hash-checked reads, both backends against real storage."""
from __future__ import annotations

import json
import random
import time

import pytest

from agents.core.store import (
    BlobNotFound,
    BlobTooLarge,
    BlobUnreadable,
    ContentStore,
    CorruptBlob,
    InvalidCid,
    KuboStore,
    LocalStore,
    NotKuboApi,
    StoreUnavailable,
    api_url_from,
    cid_of,
    open_store,
)
from common.errors import LoyalError, TransientError

HELLO_CID = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
DEADBEEF_128MIB_CID = "bafybeiawhayvhrtunmsazigmne75kqyyb2z7oqlvky3abpk4tbkqyzv6iu"
# Valid CIDv1 raw leaf of bytes no test stores.
ABSENT_CID = cid_of(b"never stored by any test in this module")
KIB = 1024
SIZES = [0, 1, 256 * KIB - 1, 256 * KIB, 256 * KIB + 1, 3 * KIB * KIB + 12345]


def blob(n: int, seed: int = 0) -> bytes:
    return random.Random(seed * 1_000_003 + n).randbytes(n)


@pytest.fixture
def local(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def kubo(ipfs_api):
    with KuboStore(ipfs_api, fetch_timeout=1.0, has_timeout=0.5) as s:
        yield s


# --- kubo vectors -------------------------------------------------------------------------------


def test_kubo_vector_hello():
    assert cid_of(b"hello\n") == HELLO_CID


def test_kubo_vector_128mib_streamed():
    chunk = b"deadbeef" * (128 * KIB)  # 1 MiB; 128 of them, never the whole 128 MiB in memory
    assert cid_of(chunk for _ in range(128)) == DEADBEEF_128MIB_CID


def test_local_put_returns_kubo_vector(local):
    assert local.put(b"hello\n") == HELLO_CID
    assert local.get(HELLO_CID) == b"hello\n"


# --- LocalStore ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_local_round_trip(local, size):
    data = blob(size)
    cid = local.put(data)
    assert local.has(cid)
    assert local.get(cid) == data


def test_local_put_is_idempotent_and_leaves_no_temp_files(local):
    a = local.put(b"same bytes")
    b = local.put(b"same bytes")
    assert a == b
    files = [p for p in local.root.rglob("*") if p.is_file()]
    assert [p.name for p in files] == [a]


def test_local_corrupt_blob_is_refused(local):
    cid = local.put(blob(300 * KIB))
    path = local.path_of(cid)
    raw = bytearray(path.read_bytes())
    raw[1000] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptBlob) as e:
        local.get(cid)
    assert e.value.cid == cid and e.value.actual == cid_of(bytes(raw))
    assert cid in str(e.value) and "\n" not in str(e.value)


def test_local_truncated_blob_is_refused(local):
    cid = local.put(b"hello\n")
    local.path_of(cid).write_bytes(b"hell")
    with pytest.raises(CorruptBlob):
        local.get(cid)


@pytest.mark.parametrize("damaged", [b"hell", b"jello\n"])
def test_local_put_repairs_a_damaged_blob(local, damaged):
    cid = local.put(b"hello\n")
    local.path_of(cid).write_bytes(damaged)
    assert local.put(b"hello\n") == cid
    assert local.get(cid) == b"hello\n"


def test_local_unknown_cid(local):
    assert not local.has(ABSENT_CID)
    with pytest.raises(BlobNotFound) as e:
        local.get(ABSENT_CID)
    assert ABSENT_CID in str(e.value)


def test_local_size_limit_is_checked_before_reading(local):
    cid = local.put(blob(1000))
    assert local.get(cid, max_bytes=1000) == blob(1000)
    with pytest.raises(BlobTooLarge) as e:
        local.get(cid, max_bytes=999)
    assert cid in str(e.value) and "999" in str(e.value) and not isinstance(e.value, TransientError)


@pytest.mark.parametrize(
    "text",
    ["", "notacid", HELLO_CID[:-1], HELLO_CID + "x", "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN", "../../etc/passwd"],
)
def test_invalid_cid_text(local, text):
    with pytest.raises(InvalidCid) as e:
        local.get(text)
    assert isinstance(e.value, LoyalError) and "\n" not in str(e.value)
    with pytest.raises(InvalidCid):
        local.has(text)


# --- open_store ----------------------------------------------------------------------------------


def test_open_store_defaults_to_local_under_loyal_home(tmp_path, monkeypatch):
    monkeypatch.delenv("IPFS_API", raising=False)
    monkeypatch.setenv("LOYAL_HOME", str(tmp_path / "home"))
    store = open_store()
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "home" / "store"
    assert store.get(store.put(b"x")) == b"x"


def test_open_store_picks_kubo_from_env(monkeypatch):
    monkeypatch.setenv("IPFS_API", "/ip4/127.0.0.1/tcp/5001")
    monkeypatch.delenv("LOYAL_FETCH_TIMEOUT", raising=False)
    store = open_store()
    assert isinstance(store, KuboStore) and store.api_url == "http://127.0.0.1:5001"
    assert store.fetch_timeout == 30.0  # the setting's default


def test_open_store_takes_the_fetch_timeout_setting(monkeypatch):
    monkeypatch.setenv("IPFS_API", "/ip4/127.0.0.1/tcp/5001")
    monkeypatch.setenv("LOYAL_FETCH_TIMEOUT", "2.5")
    assert open_store().fetch_timeout == 2.5
    assert open_store(fetch_timeout=7.0).fetch_timeout == 7.0  # an explicit argument wins
    monkeypatch.setenv("LOYAL_FETCH_TIMEOUT", "0")
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="fetch_timeout"):
        open_store()


@pytest.mark.parametrize(
    "text,url",
    [
        ("/ip4/127.0.0.1/tcp/5001", "http://127.0.0.1:5001"),
        ("/ip4/127.0.0.1/tcp/5001/http", "http://127.0.0.1:5001"),
        ("/dns4/ipfs.local/tcp/443/https", "https://ipfs.local:443"),
        ("127.0.0.1:5001", "http://127.0.0.1:5001"),
        ("http://127.0.0.1:5001/api/v0/", "http://127.0.0.1:5001"),
    ],
)
def test_api_url_forms(text, url):
    assert api_url_from(text) == url


def test_unreachable_api_is_store_unavailable():
    # Port 1 on loopback: nothing listens there.
    store = KuboStore("http://127.0.0.1:1", connect_timeout=2.0)
    for call in (lambda: store.put(b"x"), lambda: store.get(HELLO_CID), lambda: store.has(HELLO_CID)):
        with pytest.raises(StoreUnavailable) as e:
            call()
        assert "127.0.0.1:1" in str(e.value) and "\n" not in str(e.value)
        assert isinstance(e.value, TransientError)  # a daemon backs off and retries, it does not stop


# --- KuboStore against a real daemon ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_daemon_cid_equals_local_cid_and_round_trips(kubo, local, size):
    data = blob(size, seed=1)
    cid = kubo.put(data)
    assert cid == local.put(data) == cid_of(data)
    assert kubo.has(cid)
    assert kubo.get(cid) == data


@pytest.mark.slow
def test_daemon_kubo_vector(kubo):
    assert kubo.put(b"hello\n") == HELLO_CID
    assert kubo.get(HELLO_CID) == b"hello\n"


@pytest.mark.slow
def test_daemon_unknown_cid(kubo):
    assert not kubo.has(ABSENT_CID)
    t0 = time.monotonic()
    with pytest.raises(BlobNotFound) as e:
        kubo.get(ABSENT_CID)
    assert time.monotonic() - t0 < kubo.fetch_timeout + 5  # the daemon's search is bounded
    assert ABSENT_CID in str(e.value) and not isinstance(e.value, TransientError)
    with pytest.raises(BlobNotFound):
        kubo.pin(ABSENT_CID)


@pytest.mark.slow
def test_daemon_size_limit(kubo):
    data = blob(300 * KIB, seed=2)
    cid = kubo.put(data)
    assert kubo.get(cid, max_bytes=len(data)) == data
    with pytest.raises(BlobTooLarge):
        kubo.get(cid, max_bytes=len(data) - 1)
    with pytest.raises(BlobTooLarge):
        kubo.get(cid, max_bytes=1000)


@pytest.mark.slow
def test_daemon_fails_on_a_malformed_block_names_the_blob(kubo, ipfs_api):
    # anyone can store a block under a dag-pb CID that is not protobuf: the daemon answers 500 for it
    import httpx

    r = httpx.post(ipfs_api + "/api/v0/block/put", params={"format": "dag-pb", "mhtype": "sha2-256", "version": "1"},
                   files={"file": ("b", b"\xff\xfe not protobuf", "application/octet-stream")})
    cid = json.loads(r.text)["Key"]
    assert cid.startswith("bafybei")
    with pytest.raises(BlobUnreadable) as e:
        kubo.get(cid)
    assert cid in str(e.value) and not isinstance(e.value, TransientError)  # not an outage
    assert kubo.get(kubo.put(b"still fine")) == b"still fine"


@pytest.mark.slow
def test_daemon_pins_what_it_stores(kubo):
    cid = kubo.put(b"pinned")
    kubo.pin(cid)  # already pinned by add: pin/add succeeds again
    assert kubo.get(cid) == b"pinned"


@pytest.mark.slow
def test_daemon_invalid_cid(kubo):
    with pytest.raises(InvalidCid):
        kubo.get("notacid")


@pytest.mark.slow
def test_daemon_wrong_service_is_unavailable(ipfs_api):
    # The daemon's web UI path is HTTP but not the RPC API: refused with a clear error, no bytes;
    # a configuration error (permanent, names the setting), not an outage to wait out.
    with KuboStore(ipfs_api + "/nonexistent", fetch_timeout=1.0) as store:
        with pytest.raises(NotKuboApi) as e:
            store.get(HELLO_CID)
    assert not isinstance(e.value, TransientError) and "IPFS_API" in str(e.value)


def test_interface_is_shared():
    assert issubclass(LocalStore, ContentStore) and issubclass(KuboStore, ContentStore)


# --- CLI --------------------------------------------------------------------------------------------


def test_cli_put_get_round_trip(tmp_path, monkeypatch):
    from tests.cli_runner import invoke

    monkeypatch.delenv("IPFS_API", raising=False)
    monkeypatch.setenv("LOYAL_HOME", str(tmp_path / "home"))
    src = tmp_path / "in.bin"
    src.write_bytes(b"hello\n")
    res = invoke(["store", "put", str(src), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["cid"] == HELLO_CID and out["size"] == 6
    dst = tmp_path / "out.bin"
    res = invoke(["store", "get", HELLO_CID, "-o", str(dst)])
    assert res.exit_code == 0, res.output
    assert dst.read_bytes() == b"hello\n"
    res = invoke(["store", "get", HELLO_CID])
    assert res.exit_code == 0 and res.stdout_bytes == b"hello\n"


def test_cli_errors_are_one_line(tmp_path, monkeypatch):
    from tests.cli_runner import invoke

    monkeypatch.delenv("IPFS_API", raising=False)
    monkeypatch.setenv("LOYAL_HOME", str(tmp_path / "home"))
    res = invoke(["store", "get", ABSENT_CID])
    assert res.exit_code == 1
    assert res.output.strip().count("\n") == 0 and "not found" in res.output
    res = invoke(["store", "get", "notacid"])
    assert res.exit_code == 1 and "invalid CID 'notacid'" in res.output
    dst = tmp_path / "never.bin"
    res = invoke(["store", "get", ABSENT_CID, "-o", str(dst)])
    assert res.exit_code == 1 and not dst.exists()


def test_daemon_helper_names_the_missing_install(tmp_path):
    from agents.core.ipfs_daemon import IpfsDaemonError, ipfs_daemon

    with pytest.raises(IpfsDaemonError, match="make ipfs"):
        with ipfs_daemon(ipfs_dir=tmp_path):
            pass
