"""`loyal keys`: an operator's keys, as Web3 Secret Storage (v3, scrypt) files in the keys folder.

The same keystore serves every role of every subsystem: pass `--keystore NAME` (or set the
`keystore` setting) to any command or daemon. Passwords come from `LOYAL_KEY_PASSWORD`, the
`key_password_file` setting, or a prompt; private keys are never taken from the command line.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from common.config import configure
from common.errors import BadKeyFile, ConfigError

app = typer.Typer(help="Create, import and list signer keys (encrypted keystores).", no_args_is_help=True)


def _named(name: str) -> Path:
    from .signers import KEY_NAME

    s = configure()
    if not KEY_NAME.match(name):
        raise ConfigError(f"bad key name {name!r}: letters, digits, '.', '_', '-' (max 64)")
    return s.keys / f"{name}.json"


@app.command("new")
def new(name: str = typer.Argument(..., help="key name (file <keys>/NAME.json)"),
        as_json: bool = typer.Option(False, "--json")):
    """Create a new random key, encrypted with a password; prints its address."""
    from eth_account import Account

    from .signers import key_password, save_keystore

    path = _named(name)
    if path.exists():
        raise BadKeyFile(f"key {name} already exists at {path}; choose another name")
    account = Account.create()
    save_keystore(account, path, key_password(path, confirm=True))
    _show(name, account.address, path, as_json)


@app.command("import")
def import_(name: str = typer.Argument(..., help="key name (file <keys>/NAME.json)"),
            private_key_file: Path = typer.Option(..., "--private-key-file",
                                                  help="file holding the 0x-hex private key ('-' = stdin)"),
            as_json: bool = typer.Option(False, "--json")):
    """Encrypt an existing private key into the keys folder."""
    from eth_account import Account

    from .signers import key_password, save_keystore

    path = _named(name)
    if path.exists():
        raise BadKeyFile(f"key {name} already exists at {path}; choose another name")
    try:
        text = sys.stdin.read() if str(private_key_file) == "-" else private_key_file.read_text()
    except OSError as e:
        raise BadKeyFile(f"cannot read {private_key_file}: {e.strerror}") from None
    try:
        account = Account.from_key(text.strip())
    except (ValueError, TypeError):
        raise BadKeyFile(f"{private_key_file} does not hold a 32-byte hex private key") from None
    save_keystore(account, path, key_password(path, confirm=True))
    _show(name, account.address, path, as_json)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json")):
    """Every key in the keys folder with its address (no password needed)."""
    from .signers import keystore_address

    s = configure()
    rows = []
    for f in sorted(s.keys.glob("*.json")) if s.keys.is_dir() else []:
        try:
            rows.append({"name": f.stem, "address": keystore_address(f), "path": str(f)})
        except BadKeyFile:
            rows.append({"name": f.stem, "address": None, "path": str(f)})
    if as_json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no keys in {s.keys} (create one: loyal keys new NAME)")
    for r in [] if as_json else rows:
        print(f"{r['name']:24} {r['address'] or '(not a keystore)'}")


@app.command("address")
def address(name: str = typer.Argument(..., help="key name or keystore file")):
    """The address of a key (no password needed)."""
    from .signers import keystore_address, keystore_path

    print(keystore_address(keystore_path(name, configure())))


def _show(name: str, addr: str, path: Path, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"name": name, "address": addr, "path": str(path)}))
    else:
        print(f"{name}: {addr} ({path})")
