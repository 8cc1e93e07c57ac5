"""`ape run dao_propose --account 24 --type review --call DaoModelRegistry.approve '[1,2,"triage",5000,1790000000]'
--description "Approve model 1"`: create a typed DAO proposal as dev account N.

Repeat `--call Contract.function JSON_ARGS` for several actions (contracts by address-book name).
"""
from __future__ import annotations

import click
from ape.cli import ConnectedProviderCommand, network_option

from scripts._dao import TYPES, dev_account, emit, encode_call, governor
from scripts._loyal import load_book


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option("--account", "index", type=click.IntRange(min=0), required=True, help="proposer's dev account index")
@click.option("--type", "ptype", type=click.Choice(list(TYPES)), default="review", show_default=True)
@click.option("--call", "calls", nargs=2, multiple=True, required=True, metavar="CONTRACT.FN JSON_ARGS",
              help="an action, e.g. DaoModelRegistry.approve '[1,2,\"triage\",5000,1790000000]'")
@click.option("--description", required=True)
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def cli(index, ptype, calls, description, as_json):
    book = load_book()
    proposer = dev_account(index)
    actions = [encode_call(book, spec, args) for spec, args in calls]
    gov = governor()
    receipt = gov.proposeTyped(TYPES[ptype], [a for a, _ in actions], [0] * len(actions), [d for _, d in actions],
                               description, sender=proposer)
    ev = next(log for log in receipt.events if log.event_name == "ProposalCreated")
    result = {"proposalId": int(ev.proposalId), "type": ptype, "proposer": proposer.address,
              "voteStart": int(ev.voteStart), "voteEnd": int(ev.voteEnd), "actions": len(actions),
              "tx": receipt.txn_hash, "gasUsed": receipt.gas_used}
    emit(result, as_json, f"proposal {result['proposalId']} ({ptype}) by {proposer.address}: voting "
                          f"{result['voteStart']}..{result['voteEnd']} (tx {receipt.txn_hash})")
