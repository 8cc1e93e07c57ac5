"""The OML platform: an HTTP service that issues permissions σ(q) and keeps the record of them.

Hosts ask `POST /v1/permits` for one or many query hashes at once (batch signing; the platform
never sees the queries). Each permit gets the host's next nonce, `expiry = chain time + ttl` and
`issuedBlock` = the chain head's number when it was signed, the rule `Claims` relies on to tell
whether a permission predates a claim (`issuedBlock < commit block`). Every permit is kept
(and appended to a JSONL log when one is given, which also restores nonces after a restart), so
provers and verifiers can ask `GET /v1/permits/{host}/{query_hash}` whether a query was permitted.
The platform signs only for hosts whose licence is running on-chain, and only on a request signed
by that host (EIP-191 over `permits.request_digest`: host, model, query hashes, request time); a
request older or newer than `REQUEST_MAX_AGE` seconds, or seen before, is refused.

Licensed access to weights (`encrypted_copies.py`): given the community's content keys, the platform also
answers `POST /v1/keys`: a host's signed request (EIP-191 over `sealed.key_request_digest`) gets
its own copy's content key wrapped (ECIES) to the public key recovered from that signature, and
only while the host's licence runs on-chain (read fresh, not from the cache).
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from agents.core.chain import Chain
from common.errors import LoyalError

from .permits import Permit, PermitSigner, request_digest
from .encrypted_copies import key_request_digest, public_key_of, wrap_key

MAX_BATCH = 4096
LICENCE_CACHE_SECONDS = 10.0
REQUEST_MAX_AGE = 120  # seconds between a host signing a permit request and the platform accepting it


class HostNotLicensed(LoyalError):
    """The platform refuses to sign for a host without a running licence for the model."""


class BadRequestSignature(LoyalError):
    """A permit request not signed by the host it names (or stale, or replayed)."""


class NoCopyForHost(LoyalError):
    """The platform holds no content key for this host's copy of the model."""


def sign_request(host: LocalAccount, model_id: int, qhashes: list[bytes], issued_at: int | None = None) -> dict:
    """The JSON body of `POST /v1/permits`, signed by `host`."""
    issued_at = int(time.time()) if issued_at is None else issued_at
    request_id = os.urandom(16)
    digest = request_digest(host.address, model_id, qhashes, issued_at, request_id)
    sig = host.sign_message(encode_defunct(primitive=digest)).signature
    return {"host": host.address, "model_id": model_id, "query_hashes": ["0x" + q.hex() for q in qhashes],
            "issued_at": issued_at, "request_id": "0x" + request_id.hex(), "signature": sig.to_0x_hex()}


class Platform:
    def __init__(self, chain: Chain, signer: LocalAccount, *, log_path: str | Path | None = None,
                 content_keys: dict[int, dict[str, bytes]] | None = None):
        self.chain = chain
        ledger = chain.contract("UsageLedger")
        self.address = signer.address
        self.ttl = chain.call(ledger.functions.permissionTtl())
        self.signer = PermitSigner(bytes(signer.key), chain.chain_id, ledger.address)
        self._agreements = chain.contract("HostAgreements")
        self._lock = threading.Lock()
        self._next_nonce: dict[str, int] = {}
        self._records: dict[tuple[str, bytes], list[Permit]] = {}
        self._licensed: dict[tuple[int, str], tuple[float, bool]] = {}
        self._seen: dict[bytes, int] = {}  # request digest -> issued_at, while within REQUEST_MAX_AGE
        self.issued = 0
        self._log = Path(log_path) if log_path else None
        self._content_keys = {m: {to_checksum_address(h): k for h, k in ks.items()}
                              for m, ks in (content_keys or {}).items()}
        self.keys_delivered = 0
        if self._log and self._log.exists():
            lines = self._log.read_text().splitlines()
            for i, line in enumerate(lines):
                try:
                    self._remember(Permit.from_json(json.loads(line)))
                except (ValueError, KeyError):
                    if i < len(lines) - 1:  # only the last line can be torn (a kill mid-append)
                        raise LoyalError(f"permit log {self._log} line {i + 1} is corrupt") from None

    def _remember(self, p: Permit) -> None:
        self._records.setdefault((p.host, p.query_hash), []).append(p)
        self._next_nonce[p.host] = max(self._next_nonce.get(p.host, 0), p.nonce + 1)
        self.issued += 1

    def _is_licensed(self, model_id: int, host: str) -> bool:
        key = (model_id, host)
        hit = self._licensed.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        ok = bool(self.chain.call(self._agreements.functions.isLicensed(model_id, host)))
        self._licensed[key] = (time.monotonic() + LICENCE_CACHE_SECONDS, ok)
        return ok

    def issue(self, host: str, model_id: int, qhashes: list[bytes]) -> list[Permit]:
        """Sign one permit per query hash for `host`; raises HostNotLicensed."""
        host = to_checksum_address(host)
        if not self._is_licensed(model_id, host):
            raise HostNotLicensed(f"host {host} has no running licence for model {model_id}")
        head = self.chain.w3.eth.get_block("latest")
        with self._lock:
            first = self._next_nonce.get(host, 0)
            self._next_nonce[host] = first + len(qhashes)
        permits = self.signer.sign_batch(host, model_id, qhashes, first, head["timestamp"] + self.ttl, head["number"])
        with self._lock:
            for p in permits:
                self._records.setdefault((host, p.query_hash), []).append(p)
            self.issued += len(permits)
            if self._log:
                with self._log.open("a") as f:
                    f.writelines(json.dumps(p.to_json()) + "\n" for p in permits)
        return permits

    def check_request(self, host: str, model_id: int, qhashes: list[bytes], issued_at: int, request_id: bytes,
                      signature: str) -> None:
        """Raise BadRequestSignature unless `host` signed this request recently and only once."""
        if len(request_id) != 16:
            raise BadRequestSignature("request id must be 16 bytes")
        digest = request_digest(to_checksum_address(host), model_id, qhashes, issued_at, request_id)
        try:
            signer = Account.recover_message(encode_defunct(primitive=digest), signature=signature)
        except Exception:
            raise BadRequestSignature("malformed request signature") from None
        if signer != to_checksum_address(host):
            raise BadRequestSignature(f"request signed by {signer}, not by host {to_checksum_address(host)}")
        self._accept_once(digest, issued_at)

    def _accept_once(self, digest: bytes, issued_at: int) -> None:
        """Raise BadRequestSignature for a signed request that is stale or already served; else
        remember it (permit and key requests share this one replay memory)."""
        now = int(time.time())
        if abs(now - issued_at) > REQUEST_MAX_AGE:
            raise BadRequestSignature(f"request time {issued_at} is more than {REQUEST_MAX_AGE} s from now ({now})")
        with self._lock:
            for d in [d for d, t in self._seen.items() if abs(now - t) > REQUEST_MAX_AGE]:
                del self._seen[d]
            if digest in self._seen:
                raise BadRequestSignature("request already served (replay)")
            self._seen[digest] = issued_at

    def wrapped_key(self, host: str, model_id: int, issued_at: int, request_id: bytes, signature: bytes) -> bytes:
        """`host`'s content key for `model_id`, ECIES-wrapped to the key that signed the request.
        Raises BadRequestSignature (not the host's signature, stale, replayed), HostNotLicensed
        (no running licence, read on-chain now) or NoCopyForHost."""
        host = to_checksum_address(host)
        if len(request_id) != 16:
            raise BadRequestSignature("request id must be 16 bytes")
        digest = key_request_digest(host, model_id, issued_at, request_id)
        try:
            public_key = public_key_of(host, digest, signature)
        except ValueError as e:
            raise BadRequestSignature(f"key request not signed by host {host} ({e})") from None
        self._accept_once(digest, issued_at)
        if not self.chain.call(self._agreements.functions.isLicensed(model_id, host)):
            raise HostNotLicensed(f"host {host} has no running licence for model {model_id}: "
                                  "sign it first (`loyal oml license`)")
        key = self._content_keys.get(model_id, {}).get(host)
        if key is None:
            raise NoCopyForHost(f"the platform holds no copy key for host {host} in model {model_id}")
        self.keys_delivered += 1
        return wrap_key(public_key, key)

    def records(self, host: str, qhash: bytes) -> list[Permit]:
        """Every permit issued to `host` for this query hash."""
        with self._lock:
            return list(self._records.get((to_checksum_address(host), qhash), []))


class KeyRequest(BaseModel):
    host: str
    model_id: int = Field(ge=1)
    issued_at: int
    request_id: str
    signature: str


class PermitRequest(BaseModel):
    host: str
    model_id: int = Field(ge=1)
    query_hashes: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    issued_at: int
    request_id: str
    signature: str


def _hexbytes(text: str) -> bytes:
    try:
        return bytes.fromhex(text[2:] if text.startswith("0x") else text)
    except ValueError:
        return b""


def _hash32(text: str) -> bytes:
    try:
        b = bytes.fromhex(text[2:] if text.startswith("0x") else text)
    except ValueError:
        b = b""
    if len(b) != 32:
        raise HTTPException(422, f"query hash {text!r} is not 32 bytes of hex")
    return b


def create_app(platform: Platform) -> FastAPI:
    app = FastAPI(title="Loyal OML platform")

    @app.get("/v1/health")
    def health() -> dict:
        return {"platform": platform.address, "ttl": platform.ttl, "issued": platform.issued}

    @app.post("/v1/permits")
    def permits(req: PermitRequest) -> dict:
        if not is_address(req.host):
            raise HTTPException(422, f"host {req.host!r} is not an address")
        qhashes = [_hash32(h) for h in req.query_hashes]
        try:
            platform.check_request(req.host, req.model_id, qhashes, req.issued_at, _hexbytes(req.request_id),
                                   req.signature)
            issued = platform.issue(req.host, req.model_id, qhashes)
        except BadRequestSignature as e:
            raise HTTPException(401, str(e)) from None
        except HostNotLicensed as e:
            raise HTTPException(403, str(e)) from None
        return {"permits": [p.to_json() for p in issued]}

    @app.post("/v1/keys")
    def keys(req: KeyRequest) -> dict:
        if not is_address(req.host):
            raise HTTPException(422, f"host {req.host!r} is not an address")
        try:
            wrapped = platform.wrapped_key(req.host, req.model_id, req.issued_at, _hexbytes(req.request_id),
                                           _hexbytes(req.signature))
        except BadRequestSignature as e:
            raise HTTPException(401, str(e)) from None
        except HostNotLicensed as e:
            raise HTTPException(403, str(e)) from None
        except NoCopyForHost as e:
            raise HTTPException(404, str(e)) from None
        return {"host": to_checksum_address(req.host), "model_id": req.model_id, "wrapped_key": "0x" + wrapped.hex()}

    @app.get("/v1/permits/{host}/{qhash}")
    def records(host: str, qhash: str) -> dict:
        if not is_address(host):
            raise HTTPException(422, f"host {host!r} is not an address")
        return {"permits": [p.to_json() for p in platform.records(host, _hash32(qhash))]}

    return app
