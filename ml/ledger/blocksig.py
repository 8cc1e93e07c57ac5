"""ML-DSA-65 (FIPS 204) signatures on sealed block roots, with `pqcrypto` (PQClean's ML-DSA, as Rust
bindings; PyPI `pqcrypto` 1.0).

Who signs what: a fork's owner signs the root of every sealed block that holds ops of its fork,
after checking those ops are its own (their delta blobs open under its fork key). The signed
message is

    b"LoyalLedgerBlock" || abi.encode(uint256 chainId, address ledger, uint256 blockId, bytes32 root)

with the FIPS 204 context string `CONTEXT`, so a signature cannot be moved to another chain, ledger,
block or root, nor pass as a signature made for another purpose with the same key.

The key pair lives in `<home>/ledger/keys/<address>.mldsa65` (JSON, mode 0600); the public key goes
to the content store and its keccak256 on chain (`registerBlockKey`, once per account). Sizes are
FIPS 204's for ML-DSA-65 (Table 2): public key 1952 bytes, secret key 4032, signature 3309;
`pqcrypto`'s constants are checked against them when this module loads.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from pqcrypto import InvalidSignatureError
from pqcrypto.sign import ml_dsa_65

from common.errors import BadKeyFile

from .errors import LedgerDataError

ALGORITHM = "ML-DSA-65"
PUBLIC_KEY_BYTES = 1952  # FIPS 204, Table 2
SECRET_KEY_BYTES = 4032
SIGNATURE_BYTES = 3309
CONTEXT = b"loyal-ledger/v1 block-root"
MESSAGE_PREFIX = b"LoyalLedgerBlock"

if (ml_dsa_65.PUBLIC_KEY_SIZE, ml_dsa_65.SECRET_KEY_SIZE, ml_dsa_65.SIGNATURE_SIZE) != (
        PUBLIC_KEY_BYTES, SECRET_KEY_BYTES, SIGNATURE_BYTES):
    raise ImportError(f"pqcrypto's ml_dsa_65 sizes {ml_dsa_65.PUBLIC_KEY_SIZE}/{ml_dsa_65.SECRET_KEY_SIZE}/"
                      f"{ml_dsa_65.SIGNATURE_SIZE} are not FIPS 204's ML-DSA-65 sizes")


class BlockSignatureMissing(LedgerDataError):
    """A sealed block holding a fork's ops has no signature by the fork owner's registered key."""


class BlockSignatureInvalid(LedgerDataError):
    """A published block signature does not verify under the signer's registered ML-DSA-65 key."""


class BlockKeyMismatch(LedgerDataError):
    """An ML-DSA-65 public key does not hash to the key hash registered on chain."""


def block_message(chain_id: int, ledger: str, block_id: int, root: bytes) -> bytes:
    """The bytes a block signature signs (with context `CONTEXT`)."""
    return MESSAGE_PREFIX + encode(["uint256", "address", "uint256", "bytes32"],
                                   [chain_id, to_checksum_address(ledger), block_id, root])


def key_hash(public_key: bytes) -> bytes:
    """What `registerBlockKey` records: keccak256 of the public key's bytes."""
    return keccak(public_key)


def verify_block(public_key: bytes, signature: bytes, chain_id: int, ledger: str, block_id: int, root: bytes) -> bool:
    """True iff `signature` is `public_key`'s ML-DSA-65 signature of block `block_id` with root `root`."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        ml_dsa_65.verify(public_key, block_message(chain_id, ledger, block_id, root), signature, CONTEXT)
    except InvalidSignatureError:
        return False
    return True


class BlockSigningKey:
    """An ML-DSA-65 key pair that signs block roots."""

    def __init__(self, public_key: bytes, secret_key: bytes):
        if len(public_key) != PUBLIC_KEY_BYTES or len(secret_key) != SECRET_KEY_BYTES:
            raise BadKeyFile(f"an {ALGORITHM} key pair is {PUBLIC_KEY_BYTES} + {SECRET_KEY_BYTES} bytes, "
                             f"got {len(public_key)} + {len(secret_key)}")
        self.public_key = public_key
        self._secret = secret_key

    @classmethod
    def generate(cls) -> "BlockSigningKey":
        pk, sk = ml_dsa_65.keygen()
        return cls(bytes(pk), bytes(sk))

    @classmethod
    def create_file(cls, path: Path) -> "BlockSigningKey":
        """Write a fresh key pair to `path` (mode 0600); refuses to overwrite an existing file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = cls.generate()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as f:
            json.dump({"algorithm": ALGORITHM, "public_key": key.public_key.hex(), "secret_key": key._secret.hex()}, f)
        return key

    @classmethod
    def load(cls, path: Path) -> "BlockSigningKey":
        try:
            d = json.loads(Path(path).read_text())
            if d.get("algorithm") != ALGORITHM:
                raise ValueError
            return cls(bytes.fromhex(d["public_key"]), bytes.fromhex(d["secret_key"]))
        except FileNotFoundError:
            raise BadKeyFile(f"block-signing key {path} does not exist (create it with `loyal ledger keygen`)") from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BadKeyFile(f"{path} is not an {ALGORITHM} key file") from None

    @property
    def key_hash(self) -> bytes:
        return key_hash(self.public_key)

    def sign_block(self, chain_id: int, ledger: str, block_id: int, root: bytes) -> bytes:
        return bytes(ml_dsa_65.sign(self._secret, block_message(chain_id, ledger, block_id, root), CONTEXT))
