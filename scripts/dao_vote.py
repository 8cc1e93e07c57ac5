"""`ape run dao_vote --account ALIAS|KEYFILE|N --proposal ID --support for [--wait] [--network ...]`: vote.

Refused by name, nothing sent: an unknown proposal, voting not open yet or closed (with its dates).
`--wait` (dev chain only) first moves Anvil's clock to the start of voting.
"""
from __future__ import annotations

import click
from ape.cli import ConnectedProviderCommand, network_option

from scripts._dao import (SUPPORT, account_option, advance_past, emit, governor, load_account, require_state, send,
                          state, window)


@click.command(cls=ConnectedProviderCommand)
@network_option()
@account_option("--account", help="the voter")
@click.option("--proposal", "proposal_id", type=int, required=True)
@click.option("--support", type=click.Choice(list(SUPPORT)), default="for", show_default=True)
@click.option("--wait", is_flag=True, help="dev chain: move time to the start of voting first")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def cli(account, proposal_id, support, wait, as_json):
    gov = governor()
    if wait and state(gov, proposal_id) == "Pending":
        advance_past(gov.proposalSnapshot(proposal_id))
    require_state(gov, proposal_id, "Active", "vote")
    voter = load_account(account)
    receipt = send(gov.castVote, proposal_id, SUPPORT[support], sender=voter, what="the vote")
    votes = gov.proposalVotes(proposal_id)  # Ape: a struct named after the view's outputs
    tally = {"against": int(votes.againstVotes), "for": int(votes.forVotes), "abstain": int(votes.abstainVotes)}
    _, closes = window(gov, proposal_id)
    result = {"proposalId": str(proposal_id), "voter": voter.address, "support": support, "tally": tally,
              "state": state(gov, proposal_id), "votingCloses": closes,
              "quorum": int(gov.proposalQuorum(proposal_id)), "tx": receipt.txn_hash, "gasUsed": receipt.gas_used}
    emit(result, as_json, f"{voter.address} voted {support} on {proposal_id}: for {tally['for']}, "
                          f"against {tally['against']}, abstain {tally['abstain']} (quorum {result['quorum']}; "
                          f"{result['state']} until {closes}; gas {receipt.gas_used})")
