"""`ape run dao_vote --account 21 --proposal ID --support for [--wait]`: vote as dev account N.

`--wait` first moves Anvil's clock to the start of voting if the proposal is still Pending.
"""
from __future__ import annotations

import click
from ape.cli import ConnectedProviderCommand, network_option

from scripts._dao import SUPPORT, advance_past, dev_account, emit, governor, state


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option("--account", "index", type=click.IntRange(min=0), required=True, help="voter's dev account index")
@click.option("--proposal", "proposal_id", type=int, required=True)
@click.option("--support", type=click.Choice(list(SUPPORT)), default="for", show_default=True)
@click.option("--wait", is_flag=True, help="dev chain: move time to the start of voting first")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def cli(index, proposal_id, support, wait, as_json):
    gov = governor()
    voter = dev_account(index)
    if wait and state(gov, proposal_id) == "Pending":
        advance_past(gov.proposalSnapshot(proposal_id))
    receipt = gov.castVote(proposal_id, SUPPORT[support], sender=voter)
    votes = gov.proposalVotes(proposal_id)  # Ape: a struct named after the view's outputs
    tally = {"against": int(votes.againstVotes), "for": int(votes.forVotes), "abstain": int(votes.abstainVotes)}
    result = {"proposalId": proposal_id, "voter": voter.address, "support": support, "tally": tally,
              "quorum": int(gov.proposalQuorum(proposal_id)), "tx": receipt.txn_hash, "gasUsed": receipt.gas_used}
    emit(result, as_json, f"{voter.address} voted {support} on {proposal_id}: for {tally['for']}, "
                          f"against {tally['against']}, abstain {tally['abstain']} "
                          f"(quorum {result['quorum']}; gas {receipt.gas_used})")
