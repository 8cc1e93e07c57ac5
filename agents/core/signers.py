"""Who signs: Anvil's well-known dev accounts for local work, an encrypted keystore for real use.

`load_signer` is the one way every command and daemon of every subsystem gets its key:
`--keystore FILE|NAME` (or the `keystore` setting) names a Web3 Secret Storage file, either a
path or a name in the keys folder (`loyal keys new NAME`); the password comes from
`LOYAL_KEY_PASSWORD`, the `key_password_file` setting, or a prompt on a terminal.
`--dev-account N` signs with Anvil's public dev key N, refused on any chain but a dev chain.
"""
from __future__ import annotations

import functools
import json
import re
import sys
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from common.config import Settings, current
from common.errors import BadKeyFile, ConfigError
from common.files import atomic_write

# Anvil's public test mnemonic. Its keys are public knowledge: never hold real value with them.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
DEV_CHAIN_IDS = frozenset({31337})
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

Account.enable_unaudited_hdwallet_features()


@functools.lru_cache(maxsize=None)
def dev_signer(index: int) -> LocalAccount:
    """Dev account `index` of Anvil's mnemonic (Anvil funds the first `--accounts` of them)."""
    if index < 0:
        raise ValueError(f"dev account index must be >= 0, got {index}")
    return Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


def read_keystore(path: str | Path) -> dict:
    """The JSON of a Web3 Secret Storage (v3) file, checked for shape (not decrypted)."""
    p = Path(path)
    try:
        blob = json.loads(p.read_text())
    except FileNotFoundError:
        raise BadKeyFile(f"key file {p} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError):
        raise BadKeyFile(f"key file {p} is not a JSON keystore") from None
    if not isinstance(blob, dict) or "crypto" not in {k.lower() for k in blob}:
        raise BadKeyFile(f"key file {p} is not a Web3 Secret Storage keystore (no 'crypto' section)")
    return blob


def load_keystore(path: str | Path, password: str) -> LocalAccount:
    """Decrypt a Web3 Secret Storage (v3) keystore file into a signer."""
    blob = read_keystore(path)
    try:
        key = Account.decrypt(blob, password)
    except ValueError as e:
        msg = "wrong password" if "MAC mismatch" in str(e) else str(e)
        raise BadKeyFile(f"cannot decrypt key file {path}: {msg}") from None
    return Account.from_key(key)


def keystore_address(path: str | Path) -> str:
    """The address a keystore file declares (no password needed; checked when it is decrypted)."""
    from eth_utils import to_checksum_address

    blob = read_keystore(path)
    if "address" not in blob:
        raise BadKeyFile(f"key file {path} does not state its address")
    return to_checksum_address("0x" + blob["address"].removeprefix("0x"))


def save_keystore(account: LocalAccount, path: str | Path, password: str, *, scrypt_n: int | None = None) -> Path:
    """Write `account` as an encrypted keystore (scrypt KDF, mode 0600), refusing to overwrite a file."""
    p = Path(path)
    if p.exists():
        raise BadKeyFile(f"key file {p} already exists; refusing to overwrite it")
    blob = Account.encrypt(account.key, password, iterations=scrypt_n) if scrypt_n else Account.encrypt(account.key, password)
    return atomic_write(p, json.dumps(blob), mode=0o600)


def keystore_path(name_or_path: str | Path, settings: Settings | None = None) -> Path:
    """A keystore given as a path, or as a name in the keys folder (`NAME` -> keys/NAME.json)."""
    s = settings or current()
    p = Path(name_or_path)
    if p.exists() or p.suffix == ".json" or len(p.parts) > 1:
        return p
    if not KEY_NAME.match(str(name_or_path)):
        raise ConfigError(f"bad key name {str(name_or_path)!r}: letters, digits, '.', '_', '-' (max 64)")
    return s.keys / f"{name_or_path}.json"


def key_password(path: Path, settings: Settings | None = None, *, confirm: bool = False) -> str:
    """The password for `path`: LOYAL_KEY_PASSWORD, the key_password_file setting, or a prompt."""
    s = settings or current()
    pw = s.key_password()
    if pw is not None:
        return pw
    if not sys.stdin.isatty():
        raise ConfigError(f"password for {path} needed: set LOYAL_KEY_PASSWORD or key_password_file "
                          "(no terminal to prompt on)")
    import getpass

    pw = getpass.getpass(f"password for {path}: ")
    if confirm and getpass.getpass("repeat password: ") != pw:
        raise ConfigError("passwords do not match")
    return pw


def load_signer(chain_id: int, *, keystore: str | Path | None = None, dev_account: int | None = None,
                default_dev: int | None = None, settings: Settings | None = None) -> LocalAccount:
    """The signer of a command or daemon.

    Order: `dev_account` (dev chains only) > `keystore` (flag) > the `keystore` setting >
    `default_dev` on a dev chain (e.g. the deployer, account 0) > a one-line error naming the fix.
    """
    s = settings or current()
    if dev_account is not None:
        return _dev(chain_id, dev_account)
    ks = keystore if keystore is not None else s.keystore
    if ks is not None:
        path = keystore_path(ks, s)
        read_keystore(path)  # shape first: no password prompt for a file that is not a keystore
        return load_keystore(path, key_password(path, s))
    if default_dev is not None and chain_id in DEV_CHAIN_IDS:
        return dev_signer(default_dev)
    if chain_id in DEV_CHAIN_IDS:
        raise ConfigError("no signer: pass --keystore FILE|NAME (see `loyal keys new`) or --dev-account N")
    raise ConfigError(f"no signer: pass --keystore FILE|NAME (see `loyal keys new`); chain {chain_id} "
                      "is not a dev chain, so dev accounts are refused")


def _dev(chain_id: int, index: int) -> LocalAccount:
    if chain_id not in DEV_CHAIN_IDS:
        raise ConfigError(f"chain {chain_id} is not a dev chain: pass --keystore (dev keys are public)")
    if index < 0:
        raise ConfigError(f"--dev-account must be >= 0, got {index}")
    return dev_signer(index)
