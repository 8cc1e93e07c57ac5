"""The user's keys: AES-256-GCM for every blob the ledger stores, HMAC-SHA256 for on-chain commitments.

A user holds one 32-byte master key (a local file, mode 0600; it is never sent anywhere). From it,
HKDF-SHA256 derives per fork (chain id, ledger address, fork id):

- the fork key (`ForkKey`, 32 bytes): encrypts the fork's deltas and states and keys their
  commitments. It is what an owner shares (`loyal ledger share-key`) with someone who may fork the
  fork, evaluate it or verify it; it opens every delta and state of that fork and nothing else;
- the interaction key: encrypts the fork's interactions (prompts, responses). Never shared.

Each of these `BlobKey`s derives, again with HKDF-SHA256, an AES-256-GCM key and an HMAC key.

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


def _fork_info(kind: str, chain_id: int, ledger: str, user_model_id: int) -> bytes:
    return f"loyal-ledger/v2 {kind}|{chain_id}|{ledger.lower()}|{user_model_id}".encode()


class BlobKey:
    """A 32-byte secret and the AES-256-GCM and HMAC-SHA256 keys derived from it."""

    WHAT = "ledger key"

    def __init__(self, secret: bytes):
        if len(secret) != 32:
            raise BadKeyFile(f"a {self.WHAT} is 32 bytes, got {len(secret)}")
        self._secret = secret
        self._aes = AESGCM(_derive(secret, b"loyal-ledger/v1 aes-256-gcm"))
        self._mac = _derive(secret, b"loyal-ledger/v1 commitment")

    @classmethod
    def generate(cls):
        return cls(os.urandom(32))

    @classmethod
    def create_file(cls, path: Path):
        """Write a fresh key to `path` (mode 0600); refuses to overwrite an existing file."""
        key = cls.generate()
        key.save(path)
        return key

    def save(self, path: Path) -> None:
        """Write the key to `path` (mode 0600); refuses to overwrite an existing file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as f:
            f.write(self._secret.hex() + "\n")

    @classmethod
    def load(cls, path: Path):
        try:
            text = Path(path).read_text().strip()
            return cls(bytes.fromhex(text))
        except FileNotFoundError:
            raise BadKeyFile(f"{cls.WHAT} file {path} does not exist (create one with `loyal ledger keygen`)") from None
        except ValueError:
            raise BadKeyFile(f"{cls.WHAT} file {path} is not 64 hex characters") from None

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


class ForkKey(BlobKey):
    """The key of one fork's deltas, states and commitments (sharable, see the module docstring)."""

    WHAT = "fork key"


class UserKey(BlobKey):
    """A user's master key; it derives the keys of the user's forks."""

    WHAT = "ledger key"

    def fork_key(self, chain_id: int, ledger: str, user_model_id: int) -> ForkKey:
        return ForkKey(_derive(self._secret, _fork_info("fork", chain_id, ledger, user_model_id)))

    def interaction_key(self, chain_id: int, ledger: str, user_model_id: int) -> BlobKey:
        return BlobKey(_derive(self._secret, _fork_info("interactions", chain_id, ledger, user_model_id)))
