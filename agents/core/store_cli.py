"""`loyal store put FILE` / `loyal store get CID [-o FILE]`: the content store from the shell.

The backend is a Kubo RPC API when `--api` or the `ipfs_api` setting (env IPFS_API) is set, else
the local directory store under `<home>/store`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from common.config import configure
from common.errors import ConfigError
from common.files import atomic_write

from .cli import HOME
from .store import open_store

app = typer.Typer(help="Content store: put bytes, get them back by CID (hash-checked).", no_args_is_help=True)


def _api_option() -> Optional[str]:
    return typer.Option(None, "--api", help="Kubo RPC API URL or multiaddr (default: env IPFS_API; unset = local store)")


@app.command("put")
def put(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="file to store"),
    api: Optional[str] = _api_option(),
    home: Optional[Path] = HOME,
    as_json: bool = typer.Option(False, "--json", help="print {cid, size, store} as JSON"),
):
    """Store FILE; print its CID (CIDv1, raw leaves: what `ipfs add --cid-version=1 --raw-leaves` prints)."""
    configure(ipfs_api=api, home=home)
    data = file.read_bytes()
    store = open_store()
    cid = store.put(data)
    if as_json:
        print(json.dumps({"cid": cid, "size": len(data), "store": store.location}))
    else:
        print(cid)


@app.command("get")
def get(
    cid: str = typer.Argument(..., help="content id to fetch"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="write to this file (default: stdout)"),
    api: Optional[str] = _api_option(),
    home: Optional[Path] = HOME,
    as_json: bool = typer.Option(False, "--json", help="with -o: print {cid, size, path} as JSON"),
):
    """Fetch CID, check its bytes hash to it, write them to stdout or -o FILE (never a partial file)."""
    if output is None and as_json:
        raise ConfigError("--json needs -o FILE (the blob itself goes to stdout otherwise)")
    configure(ipfs_api=api, home=home)
    data = open_store().get(cid)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    atomic_write(output, data)
    if as_json:
        print(json.dumps({"cid": cid.strip(), "size": len(data), "path": str(output)}))
