"""`ape run dao_propose --account ALIAS|KEYFILE|N --type review --call DaoModelRegistry.approve
'[1, 2, 0, "triage", 5000, 1830000000]' --description "Approve model 1" [--network ...]`: create a typed
DAO proposal. Repeat `--call Contract.function JSON_ARGS` for several actions (contracts by
address-book name). An action outside the type's allow-list is refused by name; nothing is sent.
"""
from __future__ import annotations

import click
from ape.cli import ConnectedProviderCommand, network_option

from scripts._dao import (TYPE_NAMES, TYPES, account_option, emit, encode_call, governor, load_account, send,
                          window)
from scripts._loyal import load_book


@click.command(cls=ConnectedProviderCommand)
@network_option()
@account_option("--account", help="the proposer")
@click.option("--type", "ptype", type=click.Choice(list(TYPES)), default="review", show_default=True)
@click.option("--call", "calls", nargs=2, multiple=True, required=True, metavar="CONTRACT.FN JSON_ARGS",
              help="an action, e.g. DaoModelRegistry.approve '[1, 2, 0, \"triage\", 5000, 1830000000]'")
@click.option("--description", required=True)
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option("--id-only", is_flag=True, help="print only the proposal id (for shell variables)")
def cli(account, ptype, calls, description, as_json, id_only):
    book = load_book()
    actions = [encode_call(book, spec, args) for spec, args in calls]
    proposer = load_account(account)
    gov = governor()
    receipt = send(gov.proposeTyped, TYPES[ptype], [a for a, _ in actions], [0] * len(actions),
                   [d for _, d in actions], description, sender=proposer, what="the proposal")
    ev = next(log for log in receipt.events if log.event_name == "ProposalCreated")
    pid = int(ev.proposalId)
    opens, closes = window(gov, pid)
    result = {"proposalId": str(pid), "type": TYPE_NAMES[TYPES[ptype]], "proposer": proposer.address,
              "votingOpens": opens, "votingCloses": closes, "actions": len(actions), "tx": receipt.txn_hash,
              "gasUsed": receipt.gas_used}
    if id_only:
        click.echo(pid)
        return
    emit(result, as_json, f"proposal {pid} ({result['type']}) by {proposer.address}: voting {opens} -> {closes} "
                          f"(tx {receipt.txn_hash})")
