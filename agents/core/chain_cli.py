"""`loyal chain`: chain facts for everyone, and dev-chain conveniences (clock, funding).

`advance` and `fund` work only on a dev chain (Anvil): they use its `evm_increaseTime` /
`anvil_setBalance` methods and Anvil's public dev account 0 (which holds the devnet's LOYAL).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from common.config import configure
from common.errors import ConfigError
from common.units import format_amount, parse_amount

from .cli import BOOK, RPC, connect, require_suite

app = typer.Typer(help="Chain facts; dev-chain clock and funding.", no_args_is_help=True)


def _dev_chain(rpc, book):
    from .signers import DEV_CHAIN_IDS

    s = configure(rpc_url=rpc)
    chain = connect(s, book)
    if chain.chain_id not in DEV_CHAIN_IDS:
        raise ConfigError(f"chain {chain.chain_id} is not a dev chain: this command only works on a devnet")
    return chain


@app.command()
def info(rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, as_json: bool = typer.Option(False, "--json")):
    """Chain id, head block and its time, and the address book in use."""
    s = configure(rpc_url=rpc)
    chain = connect(s, book)
    head = chain.w3.eth.get_block("latest")
    out = {"rpc_url": s.rpc_url, "chainId": chain.chain_id, "block": head["number"],
           "time": datetime.fromtimestamp(head["timestamp"], timezone.utc).isoformat(),
           "book": str(chain.book.path), "contracts": len(chain.book.contracts)}
    if as_json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:10} {v}")


@app.command()
def advance(seconds: int = typer.Argument(..., min=1, help="seconds to move the clock forward"),
            rpc: Optional[str] = RPC, book: Optional[Path] = BOOK):
    """Dev chain: move the clock forward and mine a block (daemons see the next stage)."""
    chain = _dev_chain(rpc, book)
    chain.advance_time(seconds)
    head = chain.w3.eth.get_block("latest")
    print(f"block {head['number']} at {datetime.fromtimestamp(head['timestamp'], timezone.utc).isoformat()}")


@app.command()
def fund(account: str = typer.Argument(..., help="address to fund"),
         eth: str = typer.Option("10", "--eth", help="native coin for gas (set, not added)"),
         loyal: str = typer.Option("0", "--loyal", help="LOYAL to send from dev account 0"),
         rpc: Optional[str] = RPC, book: Optional[Path] = BOOK):
    """Dev chain: give an address gas money and LOYAL (from dev account 0, the devnet's treasury)."""
    from eth_utils import is_address, to_checksum_address

    from .signers import dev_signer
    from .token import Token

    if not is_address(account):
        raise ConfigError(f"{account!r} is not an address")
    who = to_checksum_address(account)
    eth_wei, loyal_wei = parse_amount(eth, "ETH"), parse_amount(loyal)
    chain = _dev_chain(rpc, book)
    chain.w3.provider.make_request("anvil_setBalance", [who, hex(eth_wei)])
    if loyal_wei:
        require_suite(chain)
        Token(chain).transfer(dev_signer(0), who, loyal_wei)
    print(f"{who}: {eth_wei / 1e18:g} ETH for gas" + (f", +{format_amount(loyal_wei)}" if loyal_wei else ""))
