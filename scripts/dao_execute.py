"""`ape run dao_execute --account 26 --proposal ID [--wait]`: execute a Succeeded proposal.

The actions and description are read back from the proposal's ProposalCreated event. `--wait`
first moves Anvil's clock past the end of voting.
"""
from __future__ import annotations

import click
from ape.cli import ConnectedProviderCommand, network_option
from eth_utils import keccak

from scripts._dao import advance_past, dev_account, emit, find_proposal, governor, state
from scripts._loyal import load_book, suite_contract


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option("--account", "index", type=click.IntRange(min=0), required=True, help="executor's dev account index")
@click.option("--proposal", "proposal_id", type=int, required=True)
@click.option("--wait", is_flag=True, help="dev chain: move time past the end of voting first")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def cli(index, proposal_id, wait, as_json):
    gov = governor()
    executor = dev_account(index)
    log = find_proposal(gov, proposal_id)
    if wait:
        advance_past(gov.proposalDeadline(proposal_id))
    current = state(gov, proposal_id)
    if current != "Succeeded":
        raise click.ClickException(f"proposal {proposal_id} is {current}, not Succeeded: nothing executed")
    args = log.event_arguments  # (`log.values` would be the mapping method, not the field)
    book = load_book()
    targets = {str(t).lower() for t in args["targets"]}
    for name, entry in book.items():  # bind the targets so Ape decodes their events in the receipt
        if entry["address"].lower() in targets:
            suite_contract(book, name)
    receipt = gov.execute(list(args["targets"]), [int(v) for v in args["values"]], [bytes(c) for c in args["calldatas"]],
                          keccak(text=args["description"]), sender=executor)
    result = {"proposalId": proposal_id, "state": state(gov, proposal_id), "tx": receipt.txn_hash,
              "gasUsed": receipt.gas_used, "events": [e.event_name for e in receipt.events]}
    emit(result, as_json, f"proposal {proposal_id} executed by {executor.address} (gas {receipt.gas_used}); "
                          f"events: {', '.join(result['events'])}")
