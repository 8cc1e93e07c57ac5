"""Content store: bytes in, content id (CID) out; bytes back only if they hash to that CID.

CIDs are what `ipfs add --cid-version=1 --raw-leaves` prints with kubo's defaults (sha2-256,
256 KiB fixed-size chunks, balanced UnixFS DAG, base32): a blob under 256 KiB is a raw block
(`bafkrei...`), a larger one a dag-pb root (`bafybei...`). Hashing is done by `aleph-cid`, so the
embedded store and a real IPFS daemon give the same CID for the same bytes.

Two backends behind one interface:
- `LocalStore(root)`: a directory of blobs named by CID (the embedded default).
- `KuboStore(api_url)`: a Kubo-RPC-compatible IPFS daemon (`/api/v0/add`, `/cat`, `/pin/add`).
`open_store()` picks the daemon when `IPFS_API` is set, else a LocalStore under `$LOYAL_HOME/store`.

Fetching is bounded: the embedded store answers at once (a blob is a file or it is not: every
writer renames it into place before anyone learns its CID); the daemon may search for a blob it
does not hold for `fetch_timeout` seconds (setting `fetch_timeout`, env LOYAL_FETCH_TIMEOUT,
default 30), then the blob is not found. `get(cid, max_bytes=N)` refuses a blob larger than N
bytes before reading it all (a CID can name gigabytes). Errors say what kind of failure it is:
- `StoreUnavailable` (a `TransientError`): the daemon does not answer or fails; try again later.
- `BlobNotFound`, `InvalidCid`, `CorruptBlob`, `BlobTooLarge`: a verdict about that CID.
- `BlobUnreadable`: the daemon answers but fails on that CID (e.g. a dag-pb root that is not
  protobuf: anyone can `block/put` such a block). Usually the blob's fault; a caller that must not
  blame a blob for a failing daemon checks that the daemon still reads a known blob
  (`agents/din/blobs.py` does).
- `NotKuboApi`: the configured URL answers but is not a Kubo RPC API (fix `ipfs_api`).
"""
from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterable

import httpx
from aleph_cid import CidHasher

from common.config import current
from common.errors import LoyalError, TransientError
from common.files import atomic_write

#: Bytes per `update` call when hashing; also the read size for files.
HASH_CHUNK = 1 << 20
#: Prefixes of the CIDs this store produces: CIDv1, base32, sha2-256, raw leaf or dag-pb root.
CID_PREFIXES = ("bafkrei", "bafybei")


class StoreError(LoyalError):
    """Base of content-store errors."""


class BlobNotFound(StoreError):
    def __init__(self, cid: str, where: str = ""):
        self.cid = cid
        super().__init__(f"blob {cid} not found" + (f" in {where}" if where else ""))


class CorruptBlob(StoreError):
    def __init__(self, cid: str, actual: str, where: str = ""):
        self.cid = cid
        self.actual = actual
        super().__init__(
            f"blob {cid} is corrupt" + (f" in {where}" if where else "") + f": its bytes hash to {actual}"
        )


class InvalidCid(StoreError):
    def __init__(self, text: str, reason: str = "not a CID"):
        self.text = text
        super().__init__(f"invalid CID {text!r}: {reason}")


class BlobUnreadable(StoreError):
    def __init__(self, cid: str, where: str, reason: str):
        self.cid = cid
        self.reason = reason
        super().__init__(f"blob {cid} cannot be read by {where}: {reason}")


class BlobTooLarge(StoreError):
    def __init__(self, cid: str, max_bytes: int, where: str = ""):
        self.cid = cid
        self.max_bytes = max_bytes
        super().__init__(f"blob {cid} is larger than {max_bytes} bytes" + (f" in {where}" if where else ""))


class StoreUnavailable(StoreError, TransientError):
    """The store does not answer (connection refused, timeout, daemon error): it may come back."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(f"content store at {url} unavailable: {reason}")


class NotKuboApi(StoreError):
    """The configured URL answers, but not as a Kubo RPC API: a configuration error, not an outage."""

    def __init__(self, url: str, reason: str):
        self.url = url
        super().__init__(f"{url} is not a Kubo RPC API ({reason}): check the ipfs_api setting (IPFS_API)")


def cid_of(data: bytes | Iterable[bytes]) -> str:
    """CIDv1 (raw leaves, kubo defaults) of `data`, or of the concatenation of an iterable of chunks."""
    hasher = CidHasher.for_ipfs_v1_raw_leaves()
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for start in range(0, len(view), HASH_CHUNK):
            hasher.update(bytes(view[start:start + HASH_CHUNK]))
    else:
        for chunk in data:
            hasher.update(bytes(chunk))
    return hasher.finalize()


def parse_cid(text: str) -> str:
    """Return `text` stripped if it is a CID this store addresses, else raise InvalidCid."""
    if not isinstance(text, str):
        raise InvalidCid(repr(text), "a CID is a string")
    cid = text.strip()
    if cid.startswith("/ipfs/"):
        cid = cid[len("/ipfs/"):]
    try:
        CidHasher.for_expected(cid)
    except ValueError as e:
        raise InvalidCid(text, str(e).splitlines()[0]) from None
    if not cid.startswith(CID_PREFIXES):
        raise InvalidCid(
            text,
            "this store addresses content by base32 CIDv1 sha2-256 (bafkrei.../bafybei..., "
            "as `ipfs add --cid-version=1 --raw-leaves` prints them)",
        )
    return cid


class ContentStore(ABC):
    """put/get/has by content id. `get` never returns bytes that do not hash to the CID asked for."""

    @abstractmethod
    def put(self, data: bytes) -> str:
        """Store `data`; return its CID (identical across backends)."""

    @abstractmethod
    def get(self, cid: str, max_bytes: int | None = None) -> bytes:
        """Return the bytes for `cid`; raise BlobNotFound, CorruptBlob, InvalidCid, or BlobTooLarge
        when it holds more than `max_bytes` bytes (checked before reading them all)."""

    @abstractmethod
    def has(self, cid: str) -> bool:
        """Whether the store holds `cid` (raises InvalidCid for malformed text)."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Human-readable location: a directory or an API URL."""


class LocalStore(ContentStore):
    """Blobs as files `<root>/blobs/<shard>/<cid>`, written atomically (temp file + rename)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    @property
    def location(self) -> str:
        return str(self.root)

    def path_of(self, cid: str) -> Path:
        cid = parse_cid(cid)
        return self.root / "blobs" / cid[-3:-1] / cid

    def put(self, data: bytes) -> str:
        cid = cid_of(data)
        final = self.path_of(cid)
        if final.is_file() and final.stat().st_size == len(data) and cid_of(final.read_bytes()) == cid:
            return cid  # already stored intact; a damaged copy is replaced below
        atomic_write(final, data)
        return cid

    def get(self, cid: str, max_bytes: int | None = None) -> bytes:
        path = self.path_of(cid)
        cid = path.name
        try:
            with open(path, "rb") as f:
                if max_bytes is not None and os.fstat(f.fileno()).st_size > max_bytes:
                    raise BlobTooLarge(cid, max_bytes, str(self.root))
                data = f.read()
        except FileNotFoundError:
            raise BlobNotFound(cid, str(self.root)) from None
        actual = cid_of(data)
        if actual != cid:
            raise CorruptBlob(cid, actual, str(self.root))
        return data

    def has(self, cid: str) -> bool:
        return self.path_of(cid).is_file()


_MULTIADDR = re.compile(r"^/(ip4|ip6|dns4|dns6|dns)/([^/]+)/tcp/(\d+)(/(https?))?/?$")


def api_url_from(text: str) -> str:
    """Normalise `http://host:port`, `host:port` or a multiaddr `/ip4/host/tcp/port[/http]`."""
    text = text.strip().rstrip("/")
    m = _MULTIADDR.match(text)
    if m:
        proto, host, port, _, scheme = m.groups()
        if proto == "ip6":
            host = f"[{host}]"
        return f"{scheme or 'http'}://{host}:{port}"
    if "://" not in text:
        text = "http://" + text
    if text.endswith("/api/v0"):
        text = text[: -len("/api/v0")]
    return text


class KuboStore(ContentStore):
    """A Kubo RPC HTTP API (kubo, or js-ipfs in tests). Every call is a POST under `/api/v0`.

    `fetch_timeout` bounds how long the daemon searches for a CID it does not hold (offline
    daemons otherwise wait forever); past it, `get` and `pin` raise BlobNotFound. A stalled
    download gives up after `fetch_timeout` + 30 s without a byte (StoreUnavailable). `has` asks for
    the root block with `offline=true` (kubo answers at once) and gives up after `has_timeout`
    (js-ipfs ignores `offline`, so a missing CID costs that long there).
    """

    ADD_PARAMS = {
        "cid-version": "1",
        "raw-leaves": "true",
        "cid-base": "base32",
        "chunker": "size-262144",
        "hash": "sha2-256",
        "pin": "true",
        "quieter": "true",
    }

    def __init__(
        self,
        api_url: str,
        *,
        fetch_timeout: float = 30.0,
        has_timeout: float = 2.0,
        connect_timeout: float = 5.0,
    ):
        self.api_url = api_url_from(api_url)
        self.fetch_timeout = fetch_timeout
        self.has_timeout = has_timeout
        self._client = httpx.Client(
            base_url=self.api_url + "/api/v0",
            timeout=httpx.Timeout(fetch_timeout + 30.0, connect=connect_timeout),
        )

    @property
    def location(self) -> str:
        return self.api_url

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "KuboStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _ms(seconds: float) -> str:
        return f"{max(1, int(seconds * 1000))}ms"

    def _post(self, endpoint: str, params: dict[str, str], **kw: object) -> httpx.Response:
        try:
            resp = self._client.post(endpoint, params=params, **kw)  # type: ignore[arg-type]
        except httpx.HTTPError as e:
            raise StoreUnavailable(self.api_url, f"{type(e).__name__}: {e}".splitlines()[0]) from None
        return resp

    def _error(self, resp: httpx.Response, cid: str | None = None) -> StoreError:
        try:
            message = str(json.loads(resp.text).get("Message", resp.text))
        except (ValueError, AttributeError):
            message = resp.text.strip() or resp.reason_phrase
        message = message.splitlines()[0] if message else f"HTTP {resp.status_code}"
        low = message.lower()
        if resp.status_code in (404, 405):
            return NotKuboApi(self.api_url, f"HTTP {resp.status_code} on {resp.url.path}")
        if cid is not None and any(s in low for s in ("timed out", "not found", "no link named", "deadline")):
            return BlobNotFound(cid, self.api_url)
        if cid is not None and resp.status_code == 500:
            return BlobUnreadable(cid, self.api_url, message)
        return StoreUnavailable(self.api_url, f"daemon error (HTTP {resp.status_code}): {message}")

    def put(self, data: bytes) -> str:
        cid = cid_of(data)
        resp = self._post("/add", self.ADD_PARAMS, files={"file": ("blob", bytes(data), "application/octet-stream")})
        if resp.status_code != 200:
            raise self._error(resp)
        lines = [ln for ln in resp.text.splitlines() if ln.strip()]
        try:
            daemon_cid = json.loads(lines[-1])["Hash"]
        except (IndexError, ValueError, KeyError, TypeError):
            raise StoreUnavailable(self.api_url, f"unexpected /add answer: {resp.text[:200]!r}") from None
        if daemon_cid != cid:
            raise StoreError(
                f"daemon at {self.api_url} stored the blob as {daemon_cid} but its bytes hash to {cid}: "
                "it does not honour cid-version=1/raw-leaves/size-262144"
            )
        return cid

    def get(self, cid: str, max_bytes: int | None = None) -> bytes:
        cid = parse_cid(cid)
        params = {"arg": cid, "timeout": self._ms(self.fetch_timeout)}
        if max_bytes is not None:
            params["length"] = str(max_bytes + 1)  # the daemon stops there; one byte more tells "too large"
        hasher = CidHasher.for_ipfs_v1_raw_leaves()
        parts: list[bytes] = []
        size = 0
        try:
            with self._client.stream("POST", "/cat", params=params) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise self._error(resp, cid)
                for chunk in resp.iter_bytes(HASH_CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise BlobTooLarge(cid, max_bytes, self.api_url)
                    hasher.update(chunk)
                    parts.append(chunk)
        except httpx.HTTPError as e:
            raise StoreUnavailable(self.api_url, f"{type(e).__name__}: {e}".splitlines()[0]) from None
        actual = hasher.finalize()
        if actual != cid:
            raise CorruptBlob(cid, actual, self.api_url)
        return b"".join(parts)

    def has(self, cid: str) -> bool:
        cid = parse_cid(cid)
        resp = self._post("/block/stat", {"arg": cid, "offline": "true", "timeout": self._ms(self.has_timeout)})
        if resp.status_code == 200:
            return True
        err = self._error(resp, cid)
        if isinstance(err, BlobNotFound):
            return False
        raise err

    def pin(self, cid: str) -> None:
        """Pin `cid` recursively so the daemon's garbage collector keeps it."""
        cid = parse_cid(cid)
        resp = self._post("/pin/add", {"arg": cid, "recursive": "true", "timeout": self._ms(self.fetch_timeout)})
        if resp.status_code != 200:
            raise self._error(resp, cid)


def open_store(api: str | None = None, root: str | os.PathLike[str] | None = None, **kubo_kw: float) -> ContentStore:
    """`KuboStore(api or the ipfs_api setting)` if either is set (its fetch timeout from the
    `fetch_timeout` setting unless given), else `LocalStore(root or <home>/store)`."""
    settings = current()
    api = api or settings.ipfs_api or None
    if api:
        return KuboStore(api, **{"fetch_timeout": settings.fetch_timeout, **kubo_kw})
    return LocalStore(Path(root) if root is not None else settings.home / "store")
