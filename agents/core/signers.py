"""Who signs: Anvil's well-known dev accounts for local work, an encrypted keystore for real use."""
from __future__ import annotations

import functools
import json
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from common.errors import BadKeyFile

# Anvil's public test mnemonic. Its keys are public knowledge: never hold real value with them.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"

Account.enable_unaudited_hdwallet_features()


@functools.lru_cache(maxsize=None)
def dev_signer(index: int) -> LocalAccount:
    """Dev account `index` of Anvil's mnemonic (Anvil funds the first `--accounts` of them)."""
    if index < 0:
        raise ValueError(f"dev account index must be >= 0, got {index}")
    return Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


def load_keystore(path: str | Path, password: str) -> LocalAccount:
    """Decrypt a Web3 Secret Storage (v3) keystore file into a signer."""
    p = Path(path)
    try:
        blob = json.loads(p.read_text())
    except FileNotFoundError:
        raise BadKeyFile(f"key file {p} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError):
        raise BadKeyFile(f"key file {p} is not a JSON keystore") from None
    if not isinstance(blob, dict) or "crypto" not in {k.lower() for k in blob}:
        raise BadKeyFile(f"key file {p} is not a Web3 Secret Storage keystore (no 'crypto' section)")
    try:
        key = Account.decrypt(blob, password)
    except ValueError as e:
        msg = "wrong password" if "MAC mismatch" in str(e) else str(e)
        raise BadKeyFile(f"cannot decrypt key file {p}: {msg}") from None
    return Account.from_key(key)


def save_keystore(account: LocalAccount, path: str | Path, password: str) -> Path:
    """Write `account` as an encrypted keystore (scrypt KDF), refusing to overwrite a file."""
    p = Path(path)
    if p.exists():
        raise BadKeyFile(f"key file {p} already exists; refusing to overwrite it")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(Account.encrypt(account.key, password)))
    p.chmod(0o600)
    return p
