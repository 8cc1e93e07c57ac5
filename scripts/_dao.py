"""Shared by the DAO Ape scripts (dao_propose, dao_vote, dao_vote_by_sig, dao_execute).

Plain Ape API against the devnet address book (see scripts/_loyal.py). Voters are Anvil dev
accounts by index (`accounts.test_accounts[N]`, Anvil's public mnemonic): dev chain only. The
genesis personnel of the dev chain are accounts 20..25 (safety tiers 1-3, policy tiers 1-3).
"""
from __future__ import annotations

import json

import click
from ape import accounts, chain

from scripts._loyal import load_book, suite_contract

TYPES = {"safety": 0, "review": 1, "system": 2, "emergency": 3}
SUPPORT = {"against": 0, "for": 1, "abstain": 2}
STATES = ["Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed"]


def dev_account(index: int):
    if chain.chain_id != 31337:
        raise click.ClickException(f"chain {chain.chain_id} is not the dev chain 31337: dev keys are public")
    test_accounts = accounts.test_accounts
    while len(test_accounts) <= index:  # beyond `number_of_accounts`: derive the next ones from the mnemonic
        test_accounts.generate_test_account()
    return test_accounts[index]


def governor():
    return suite_contract(load_book(), "DaoGovernor")


def encode_call(book: dict, spec: str, args_json: str) -> tuple[str, bytes]:
    """`("DaoModelRegistry.approve", "[1, 2, \\"triage\\", 5000, 1790000000]")` -> (address, calldata)."""
    try:
        name, fn = spec.split(".", 1)
    except ValueError:
        raise click.BadParameter(f"{spec!r} is not Contract.function", param_hint="--call") from None
    try:
        args = json.loads(args_json)
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"arguments of {spec} are not JSON ({e.msg})", param_hint="--call") from None
    if not isinstance(args, list):
        raise click.BadParameter(f"arguments of {spec} must be a JSON list", param_hint="--call")
    contract = suite_contract(book, name)
    if not hasattr(contract, fn):
        raise click.BadParameter(f"{name} has no function {fn}", param_hint="--call")
    return contract.address, bytes(getattr(contract, fn).encode_input(*args))


def find_proposal(gov, proposal_id: int):
    """The ProposalCreated log of `proposal_id` (its targets, calldatas and description)."""
    for log in gov.ProposalCreated.range(0, chain.blocks.height + 1):
        if int(log.event_arguments["proposalId"]) == proposal_id:
            return log
    raise click.ClickException(f"no proposal {proposal_id} on chain {chain.chain_id}")


def state(gov, proposal_id: int) -> str:
    return STATES[int(gov.state(proposal_id))]


def advance_past(timestamp: int) -> int:
    """Dev chain: mine a block just after `timestamp` (Anvil evm_increaseTime); returns seconds moved."""
    gap = int(timestamp) + 1 - chain.blocks.head.timestamp
    if gap > 0:
        chain.mine(1, deltatime=gap)
    return max(gap, 0)


def emit(result: dict, as_json: bool, line: str) -> None:
    click.echo(json.dumps(result, indent=2, default=str) if as_json else line)
