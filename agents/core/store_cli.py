"""`loyal store put FILE` / `loyal store get CID [-o FILE]`: the content store from the shell.

The backend is a Kubo RPC API when `--api` or `IPFS_API` is set, else the local directory store
under `$LOYAL_HOME/store`.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer

from .cli import fail
from common.errors import LoyalError
from .store import open_store

app = typer.Typer(help="Content store: put bytes, get them back by CID (hash-checked).", no_args_is_help=True)


def _api_option() -> Optional[str]:
    return typer.Option(None, "--api", help="Kubo RPC API URL or multiaddr (default: env IPFS_API; unset = local store)")


@app.command("put")
def put(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="file to store"),
    api: Optional[str] = _api_option(),
    as_json: bool = typer.Option(False, "--json", help="print {cid, size, store} as JSON"),
):
    """Store FILE; print its CID (CIDv1, raw leaves: what `ipfs add --cid-version=1 --raw-leaves` prints)."""
    data = file.read_bytes()
    try:
        store = open_store(api)
        cid = store.put(data)
    except LoyalError as e:
        fail(e)
    if as_json:
        print(json.dumps({"cid": cid, "size": len(data), "store": store.location}))
    else:
        print(cid)


@app.command("get")
def get(
    cid: str = typer.Argument(..., help="content id to fetch"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="write to this file (default: stdout)"),
    api: Optional[str] = _api_option(),
    as_json: bool = typer.Option(False, "--json", help="with -o: print {cid, size, path} as JSON"),
):
    """Fetch CID, check its bytes hash to it, write them to stdout or -o FILE (never a partial file)."""
    try:
        data = open_store(api).get(cid)
    except LoyalError as e:
        fail(e)
    if output is None:
        if as_json:
            raise typer.BadParameter("--json needs -o FILE (the blob itself goes to stdout otherwise)")
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if as_json:
        print(json.dumps({"cid": cid.strip(), "size": len(data), "path": str(output)}))
