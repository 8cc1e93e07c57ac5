"""Licensed access to a host's copy: the copy is encrypted, its key goes only to its licensed host.

- **Encryption of a copy**: AES-256-GCM (`cryptography`'s `AESGCM`), a fresh random 256-bit
  content key per copy and a random 96-bit nonce; the associated data binds the ciphertext to
  this format (`AAD`). Only the ciphertext is put in the content store; the manifest names its
  CID. GCM authenticates: a wrong key or a changed byte fails with `WrongContentKey`, never with
  garbage weights.
- **Wrapping of the content key**: ECIES on secp256k1 (`eciespy`: ephemeral ECDH, HKDF-SHA256,
  AES-256-GCM) to the host's **account key**, the same key that signs its licence and its
  transactions. The host publishes nothing extra: the platform recovers the public key from the
  host's signed key request (EIP-191) and checks that it hashes to the host's address, so the
  wrapped key opens only with the licensed host's private key (`WrongKey` otherwise).

What this does not protect against: a licensee decrypts its copy to run it, and can then copy or
publish the plaintext. That is what the per-host fingerprints are for (a leaked copy answers its
host's keys, `Claims.revealLeak` slashes that host). Whoever holds a content key (the community,
and the platform that delivers keys) can read that copy too.
"""
from __future__ import annotations

import os
import time

import coincurve
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account.messages import _hash_eip191_message, encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from common.errors import LoyalError

MAGIC = b"LOYAL-OML-SEALED-1"  # prefix of every sealed copy (format version)
AAD = b"loyal oml copy v1"
NONCE_BYTES = 12
KEY_BYTES = 32
SCHEME = "aes-256-gcm; content key wrapped by ecies-secp256k1 to the host's account key"
KEY_REQUEST_TAG = b"Loyal OML key request v1"


class WrongContentKey(LoyalError):
    """The content key does not open this sealed copy (or the ciphertext was altered)."""


class WrongKey(LoyalError):
    """A wrapped content key that the given private key cannot unwrap (wrapped for another host)."""


class NotSealed(LoyalError):
    """Bytes that are not a sealed copy."""


def new_content_key() -> bytes:
    return AESGCM.generate_key(bit_length=8 * KEY_BYTES)


def seal(plaintext: bytes, key: bytes) -> bytes:
    """MAGIC || nonce || AES-256-GCM(key, nonce, plaintext, AAD) (ciphertext with its 16-byte tag)."""
    if len(key) != KEY_BYTES:
        raise ValueError("content key must be 32 bytes")
    nonce = os.urandom(NONCE_BYTES)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, AAD)


def is_sealed(blob: bytes) -> bool:
    return blob.startswith(MAGIC)


def unseal(blob: bytes, key: bytes) -> bytes:
    """The plaintext of a sealed copy; WrongContentKey if `key` is not its content key."""
    if not is_sealed(blob):
        raise NotSealed("not a sealed OML copy (no LOYAL-OML-SEALED-1 header)")
    if len(key) != KEY_BYTES:
        raise WrongContentKey("content key must be 32 bytes")
    nonce = blob[len(MAGIC):len(MAGIC) + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES:], AAD)
    except InvalidTag:
        raise WrongContentKey("the content key does not open this copy (AES-GCM tag mismatch)") from None


def public_key_of(address: str, digest: bytes, signature: bytes) -> bytes:
    """The uncompressed secp256k1 public key (65 bytes) that signed `digest` as an EIP-191 message,
    checked to belong to `address`; ValueError otherwise."""
    if len(signature) != 65:
        raise ValueError("signature must be 65 bytes")
    msg_hash = _hash_eip191_message(encode_defunct(primitive=digest))
    v = signature[64] - 27 if signature[64] >= 27 else signature[64]
    pub = coincurve.PublicKey.from_signature_and_message(signature[:64] + bytes([v]), msg_hash, hasher=None)
    raw = pub.format(compressed=False)
    if to_checksum_address(keccak(raw[1:])[-20:]) != to_checksum_address(address):
        raise ValueError(f"signature is not by {address}")
    return raw


def wrap_key(public_key: bytes, content_key: bytes) -> bytes:
    """ECIES-encrypt `content_key` to a secp256k1 public key (eciespy)."""
    from ecies import encrypt

    return encrypt(public_key, content_key)


def unwrap_key(private_key: bytes, wrapped: bytes) -> bytes:
    """The content key inside `wrapped`; WrongKey if it was wrapped to another key."""
    from ecies import decrypt

    try:
        key = decrypt(private_key, wrapped)
    except (ValueError, TypeError):
        raise WrongKey("this host's key cannot unwrap the content key: it was wrapped for another host") from None
    if len(key) != KEY_BYTES:
        raise WrongKey("the unwrapped content key is not 32 bytes")
    return key


def key_request_digest(host: str, model_id: int, issued_at: int, request_id: bytes) -> bytes:
    """What a host signs (EIP-191) to ask the platform for its wrapped content key."""
    if len(request_id) != 16:
        raise ValueError("request id must be 16 bytes")
    return keccak(KEY_REQUEST_TAG + bytes.fromhex(to_checksum_address(host)[2:]) + model_id.to_bytes(32, "big")
                  + issued_at.to_bytes(8, "big") + request_id)


def sign_key_request(host: LocalAccount, model_id: int, issued_at: int | None = None) -> dict:
    """The JSON body of the platform's `POST /v1/keys`, signed by `host`."""
    issued_at = int(time.time()) if issued_at is None else issued_at
    request_id = os.urandom(16)
    sig = host.sign_message(encode_defunct(primitive=key_request_digest(host.address, model_id, issued_at,
                                                                       request_id))).signature
    return {"host": host.address, "model_id": model_id, "issued_at": issued_at,
            "request_id": "0x" + request_id.hex(), "signature": sig.to_0x_hex()}
