"""`loyal token balance|transfer|approve` and `loyal stake|unstake|withdraw`: LOYAL for operators.

Amounts are decimal LOYAL (`12.5`), never wei. Every write signs with `--keystore` (or the
`keystore` setting) or, on a dev chain, `--dev-account N`; `stake` never leaves an approval behind
a refused stake (see `agents.core.token`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from common.config import configure
from common.units import format_amount, parse_amount

from .cli import BOOK, DEV_ACCOUNT, KEYSTORE, RPC, connect, require_suite, signer

app = typer.Typer(help="LoyalToken: balances, transfers, approvals (amounts in LOYAL).", no_args_is_help=True)


def _setup(rpc, book, keystore=None, dev_account=None, need_signer=True):
    s = configure(rpc_url=rpc)
    chain = connect(s, book)
    require_suite(chain)
    who = signer(chain, s, keystore, dev_account) if need_signer else None
    return chain, who


def _address(chain, text: str) -> str:
    """An address, or a suite contract's name from the address book (e.g. Staking)."""
    from eth_utils import is_address, to_checksum_address

    from common.errors import ConfigError

    if is_address(text):
        return to_checksum_address(text)
    if text in chain.book.contracts:
        return chain.book.address(text)
    raise ConfigError(f"{text!r} is neither an address nor a contract in the address book")


def _receipt_line(action: str, receipt: dict) -> str:
    return f"{action} (tx {receipt['transactionHash'].to_0x_hex()}, block {receipt['blockNumber']})"


@app.command()
def balance(
    account: Optional[str] = typer.Argument(None, help="address or contract name [default: the signer]"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, as_json: bool = typer.Option(False, "--json"),
):
    """LOYAL held, staked and unbonding, and native coin for gas."""
    from .signers import keystore_address, keystore_path
    from .token import Stakes

    s = configure(rpc_url=rpc)
    chain = connect(s, book)
    require_suite(chain)
    if account is not None:
        who = _address(chain, account)
    elif dev_account is not None or keystore is None and s.keystore is None:
        who = signer(chain, s, keystore, dev_account).address
    else:  # a keystore's address needs no password
        who = keystore_address(keystore_path(keystore or s.keystore, s))
    st = Stakes(chain)
    info = st.info(who)
    out = {"account": who, "loyal": str(st.token.balance(who)), "staked": str(info["active"]),
           "unbonding": str(info["unbonding"]), "unlock_at": info["unlock_at"],
           "eth": str(chain.w3.eth.get_balance(who))}
    if as_json:
        print(json.dumps(out))
        return
    print(f"account    {who}")
    print(f"LOYAL      {format_amount(int(out['loyal']))}")
    print(f"staked     {format_amount(int(out['staked']))}")
    if info["unbonding"]:
        print(f"unbonding  {format_amount(info['unbonding'])} (withdrawable at unix time {info['unlock_at']})")
    print(f"gas        {int(out['eth']) / 1e18:.6g} ETH")


@app.command()
def transfer(
    to: str = typer.Argument(..., help="recipient address or contract name"),
    amount: str = typer.Argument(..., help="LOYAL, e.g. 12.5"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT,
):
    """Send LOYAL from the signer to an address."""
    from .token import Token

    wei = parse_amount(amount)
    chain, who = _setup(rpc, book, keystore, dev_account)
    r = Token(chain).transfer(who, _address(chain, to), wei)
    print(_receipt_line(f"sent {format_amount(wei)} from {who.address} to {_address(chain, to)}", r))


@app.command()
def approve(
    spender: str = typer.Argument(..., help="spender address or contract name (e.g. Staking)"),
    amount: str = typer.Argument(..., help="LOYAL, e.g. 12.5 (0 revokes)"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT,
):
    """Set the amount a spender may pull from the signer (commands that pay approve by themselves)."""
    from .token import Token

    wei = parse_amount(amount)
    chain, who = _setup(rpc, book, keystore, dev_account)
    r = Token(chain).approve(who, _address(chain, spender), wei)
    print(_receipt_line(f"{_address(chain, spender)} may spend {format_amount(wei)} of {who.address}", r))


def stake(
    amount: str = typer.Argument(..., help="LOYAL to stake, e.g. 100"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT,
):
    """Stake LOYAL in Staking (the pool every protocol's stake requirement reads)."""
    from .token import Stakes

    wei = parse_amount(amount)
    chain, who = _setup(rpc, book, keystore, dev_account)
    st = Stakes(chain)
    r = st.stake(who, wei)
    print(_receipt_line(f"staked {format_amount(wei)}; {who.address} now has "
                        f"{format_amount(st.info(who.address)['active'])} staked", r))


def unstake(
    amount: str = typer.Argument(..., help="LOYAL to start unbonding"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT,
):
    """Start unbonding stake; `loyal withdraw` after the unstake delay (slashing still applies meanwhile)."""
    from .token import Stakes

    wei = parse_amount(amount)
    chain, who = _setup(rpc, book, keystore, dev_account)
    st = Stakes(chain)
    r = st.request_unstake(who, wei)
    print(_receipt_line(f"unbonding {format_amount(wei)}; withdrawable at unix time "
                        f"{st.info(who.address)['unlock_at']}", r))


def withdraw(
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT,
):
    """Withdraw unbonded stake whose delay has passed."""
    from .token import Stakes

    chain, who = _setup(rpc, book, keystore, dev_account)
    before = Stakes(chain).token.balance(who.address)
    r = Stakes(chain).withdraw(who)
    got = Stakes(chain).token.balance(who.address) - before
    print(_receipt_line(f"withdrew {format_amount(got)}", r))
