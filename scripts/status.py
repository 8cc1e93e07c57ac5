"""`ape run status [--json]`: the suite on the connected chain (token supply, staking totals, addresses).

Connects to the running devnet (ape-foundry: host from ape-config.yaml or APE_FOUNDRY_HOST).
"""
from __future__ import annotations

import json

import click
from ape import chain
from ape.cli import ConnectedProviderCommand, network_option

from scripts._loyal import fmt_tokens, load_book, suite_contract


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option("--json", "as_json", is_flag=True, help="print the status as JSON")
def cli(provider, as_json):
    book = load_book()
    token = suite_contract(book, "LoyalToken")
    staking = suite_contract(book, "Staking")
    status = {
        "chainId": chain.chain_id,
        "block": chain.blocks.height,
        "rpc": provider.uri,
        "token": {"address": token.address, "symbol": token.symbol(), "totalSupply": int(token.totalSupply())},
        "staking": {
            "address": staking.address,
            "totalActive": int(staking.totalActive()),
            "totalUnbonding": int(staking.totalUnbonding()),
            "balance": int(token.balanceOf(staking.address)),
            "unstakeDelay": int(staking.unstakeDelay()),
        },
        "contracts": {name: entry["address"] for name, entry in sorted(book.items())},
    }
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    s = status["staking"]
    click.echo(f"chain {status['chainId']} at block {status['block']} ({status['rpc']})")
    click.echo(f"LoyalToken {token.address}: total supply {fmt_tokens(status['token']['totalSupply'])}")
    click.echo(
        f"Staking    {staking.address}: total staked {fmt_tokens(s['totalActive'])} active, "
        f"{fmt_tokens(s['totalUnbonding'])} unbonding (delay {s['unstakeDelay']} s)"
    )
    click.echo("contracts:")
    for name, address in status["contracts"].items():
        click.echo(f"  {name:<24} {address}")
