"""The user's key: AES-256-GCM for every blob the ledger stores, HMAC-SHA256 for on-chain commitments.

A user holds one 32-byte master key (a local file, mode 0600; it is never sent anywhere). Two keys
are derived from it with HKDF-SHA256: one for AES-256-GCM, one for HMAC-SHA256 commitments.

Blob format: `b"LLG1" || nonce (12 bytes) || AES-GCM ciphertext with its 16-byte tag`.
Nonces: 96 random bits from `os.urandom` for every blob, never reused on purpose; with random
nonces one key should encrypt fewer than 2**32 blobs (NIST SP 800-38D), far above any fork's op count.
Associated data binds each blob to where it belongs: `loyal-ledger/v1|<kind>|<chainId>|<ledger>|
<userModelId>|<seq>`, so a blob moved to another op, fork, chain or kind fails to decrypt.

Commitments: `HMAC-SHA256(commit_key, kind || 0x00 || data)`: binding, and hiding to anyone without
the key (a bare hash of a delta would let a guesser confirm a guessed interaction by retraining).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from common.errors import BadKeyFile

from .errors import DecryptionFailed

MAGIC = b"LLG1"
NONCE_BYTES = 12


@dataclass(frozen=True)
class BlobContext:
    """Where a blob belongs; its text is the AES-GCM associated data."""

    kind: str  # "interaction" | "delta" | "state"
    chain_id: int
    ledger: str
    user_model_id: int
    seq: int

    def aad(self) -> bytes:
        return f"loyal-ledger/v1|{self.kind}|{self.chain_id}|{self.ledger.lower()}|{self.user_model_id}|{self.seq}".encode()


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


class UserKey:
    """A user's master key and the two keys derived from it."""

    def __init__(self, master: bytes):
        if len(master) != 32:
            raise BadKeyFile(f"a ledger key is 32 bytes, got {len(master)}")
        self._aes = AESGCM(_derive(master, b"loyal-ledger/v1 aes-256-gcm"))
        self._mac = _derive(master, b"loyal-ledger/v1 commitment")

    @classmethod
    def generate(cls) -> "UserKey":
        return cls(os.urandom(32))

    @classmethod
    def create_file(cls, path: Path) -> "UserKey":
        """Write a fresh key to `path` (mode 0600); refuses to overwrite an existing file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        master = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as f:
            f.write(master.hex() + "\n")
        return cls(master)

    @classmethod
    def load(cls, path: Path) -> "UserKey":
        try:
            text = Path(path).read_text().strip()
            return cls(bytes.fromhex(text))
        except FileNotFoundError:
            raise BadKeyFile(f"ledger key file {path} does not exist (create one with `loyal ledger keygen`)") from None
        except ValueError:
            raise BadKeyFile(f"ledger key file {path} is not 64 hex characters") from None

    def encrypt(self, plaintext: bytes, ctx: BlobContext) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return MAGIC + nonce + self._aes.encrypt(nonce, plaintext, ctx.aad())

    def decrypt(self, blob: bytes, ctx: BlobContext) -> bytes:
        if len(blob) < len(MAGIC) + NONCE_BYTES + 16 or not blob.startswith(MAGIC):
            raise DecryptionFailed(f"{ctx.kind} blob for op {ctx.seq} is not a ledger ciphertext")
        nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
        try:
            return self._aes.decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], ctx.aad())
        except InvalidTag:
            raise DecryptionFailed(
                f"{ctx.kind} blob for fork {ctx.user_model_id} op {ctx.seq} fails AES-GCM authentication "
                "(wrong key, moved blob, or altered ciphertext)"
            ) from None

    def commitment(self, kind: str, data: bytes) -> bytes:
        """32-byte keyed commitment to `data` (HMAC-SHA256)."""
        return hmac.new(self._mac, kind.encode() + b"\x00" + data, hashlib.sha256).digest()
