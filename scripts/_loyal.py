"""Shared by the Ape scripts: the suite's address book and its contracts, bound through Ape.

The address book is the one the Python deploy path writes (`loyal deploy` / `loyal devnet`), found
through the same configuration (`common.config`: `LOYAL_DEPLOYMENTS`, `loyal.toml`, default
`$LOYAL_HOME/deployments/<chainId>.json`), format
`{"chainId": 31337, "contracts": {"LoyalToken": {"address": "0x..", ...}, ...}}`.
ABIs come from Ape's own compile of `contracts/` (ape-solidity through tools/solc).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from ape import chain, project

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # common.config is standard-library only: importable from Ape's venv

from common.config import current  # noqa: E402

DECIMALS = 10**18


def book_path(chain_id: int) -> Path:
    return current().book_path(chain_id)


def load_book() -> dict[str, dict]:
    """`{name: entry}` for the connected chain; a clear one-line error if missing or for another chain."""
    chain_id = chain.chain_id
    path = book_path(chain_id)
    if not path.is_file():
        raise click.ClickException(f"no address book {path} for chain {chain_id}: run `loyal deploy` first")
    data = json.loads(path.read_text())
    if data.get("chainId") != chain_id:
        raise click.ClickException(f"address book {path} is for chain {data.get('chainId')}, not {chain_id}")
    return data.get("contracts", {})


def suite_contract(book: dict[str, dict], name: str):
    """Ape contract instance of suite contract `name` at its address-book address."""
    entry = book.get(name)
    if not entry:
        raise click.ClickException(f"{name} is not in the address book for chain {chain.chain_id}: run `loyal deploy`")
    container = project.get_contract(name)
    # Ape keeps contract types per address on disk for custom networks; a devnet redeployed in another
    # order reuses addresses, so state this book's type first or Ape would bind a stale one.
    chain.contracts[entry["address"]] = container.contract_type
    return container.at(entry["address"])


def fmt_tokens(wei: int) -> str:
    whole, frac = divmod(int(wei), DECIMALS)
    return f"{whole}.{frac:018d}".rstrip("0").rstrip(".") + " LOYAL"
