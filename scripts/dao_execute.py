"""`ape run dao_execute --account ALIAS|KEYFILE|N --proposal ID [--wait] [--network ...]`: execute a
Succeeded proposal. The actions and description are read back from its ProposalCreated event; a
revert inside an action is named (e.g. `WrongModelStatus(modelId=1, status=2)`), nothing sent.
`--wait` (dev chain only) first moves Anvil's clock past the end of voting.
"""
from __future__ import annotations

import click
from ape.cli import ConnectedProviderCommand, network_option
from eth_utils import keccak

from scripts._dao import (account_option, advance_past, bind_all, emit, find_proposal, governor, load_account,
                          require_state, send, state)
from scripts._loyal import load_book


@click.command(cls=ConnectedProviderCommand)
@network_option()
@account_option("--account", help="who sends the execution")
@click.option("--proposal", "proposal_id", type=int, required=True)
@click.option("--wait", is_flag=True, help="dev chain: move time past the end of voting first")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def cli(account, proposal_id, wait, as_json):
    gov = governor()
    log = find_proposal(gov, proposal_id)
    if wait:
        advance_past(gov.proposalDeadline(proposal_id))
    require_state(gov, proposal_id, "Succeeded", "execute")
    executor = load_account(account)
    args = log.event_arguments  # (`log.values` would be the mapping method, not the field)
    bind_all(load_book())  # so Ape decodes the targets' events in the receipt
    receipt = send(gov.execute, list(args["targets"]), [int(v) for v in args["values"]],
                   [bytes(c) for c in args["calldatas"]], keccak(text=args["description"]), sender=executor,
                   what=f"executing proposal {proposal_id}")
    result = {"proposalId": str(proposal_id), "state": state(gov, proposal_id), "tx": receipt.txn_hash,
              "gasUsed": receipt.gas_used, "events": [e.event_name for e in receipt.events]}
    emit(result, as_json, f"proposal {proposal_id} executed by {executor.address} (gas {receipt.gas_used}); "
                          f"events: {', '.join(result['events'])}")
