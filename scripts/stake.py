"""`ape run stake [--account N] [--amount X] [--json]`: stake LOYAL as Anvil dev account N.

Dev chains only (the dev accounts come from Anvil's public mnemonic). If account N holds less than
X, account 0 (the deployer, holder of the initial supply) sends it the difference first.
"""
from __future__ import annotations

import json

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand, network_option

from scripts._loyal import DECIMALS, fmt_tokens, load_book, suite_contract


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option("--account", "index", type=click.IntRange(0, 9), default=1, show_default=True, help="dev account index")
@click.option("--amount", type=click.IntRange(min=1), default=100, show_default=True, help="whole LOYAL to stake")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def cli(index, amount, as_json):
    if chain.chain_id != 31337:
        raise click.ClickException(f"chain {chain.chain_id} is not the dev chain 31337: dev keys are public")
    book = load_book()
    token = suite_contract(book, "LoyalToken")
    staking = suite_contract(book, "Staking")
    staker = accounts.test_accounts[index]
    wei = amount * DECIMALS
    funded = 0
    balance = int(token.balanceOf(staker))
    if balance < wei:
        funded = wei - balance
        token.transfer(staker, funded, sender=accounts.test_accounts[0])
    token.approve(staking.address, wei, sender=staker)
    receipt = staking.stake(wei, sender=staker)
    staked_events = [log for log in receipt.events if log.event_name == "Staked"]
    result = {
        "account": staker.address,
        "staked": wei,
        "funded": funded,
        "activeStake": int(staking.stakeOf(staker)),
        "totalActive": int(staking.totalActive()),
        "tx": receipt.txn_hash,
        "gasUsed": receipt.gas_used,
        "events": len(staked_events),
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    if funded:
        click.echo(f"funded {staker.address} with {fmt_tokens(funded)} from account 0")
    click.echo(
        f"{staker.address} staked {fmt_tokens(wei)} (tx {receipt.txn_hash}, gas {receipt.gas_used}); "
        f"its active stake is {fmt_tokens(result['activeStake'])}, total {fmt_tokens(result['totalActive'])}"
    )
