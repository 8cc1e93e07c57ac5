"""`ape run dao_vote_by_sig --signer 22 --relayer 26 --proposal ID --support for [--wait]`:
dev account SIGNER signs an EIP-712 Ballot off-line; RELAYER submits it with `castVoteBySig`.
"""
from __future__ import annotations

import click
from ape import chain
from ape.cli import ConnectedProviderCommand, network_option
from eth_account.messages import encode_typed_data

from common.typed_data import BALLOT, Domain, typed_data  # standard library only: fine in .venv-ape
from scripts._dao import SUPPORT, advance_past, dev_account, emit, governor, state


def ballot(gov, proposal_id: int, support: int, voter: str, nonce: int) -> dict:
    return typed_data(Domain(gov.name(), gov.version(), chain.chain_id, gov.address), BALLOT,
                      {"proposalId": proposal_id, "support": support, "voter": voter, "nonce": nonce})


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option("--signer", "signer_index", type=click.IntRange(min=0), required=True, help="voter's dev account index")
@click.option("--relayer", "relayer_index", type=click.IntRange(min=0), required=True, help="who sends the tx")
@click.option("--proposal", "proposal_id", type=int, required=True)
@click.option("--support", type=click.Choice(list(SUPPORT)), default="for", show_default=True)
@click.option("--wait", is_flag=True, help="dev chain: move time to the start of voting first")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def cli(signer_index, relayer_index, proposal_id, support, wait, as_json):
    gov = governor()
    voter, relayer = dev_account(signer_index), dev_account(relayer_index)
    if wait and state(gov, proposal_id) == "Pending":
        advance_past(gov.proposalSnapshot(proposal_id))
    data = ballot(gov, proposal_id, SUPPORT[support], voter.address, int(gov.nonces(voter.address)))
    signature = voter.sign_message(encode_typed_data(full_message=data)).encode_rsv()
    receipt = gov.castVoteBySig(proposal_id, SUPPORT[support], voter.address, signature, sender=relayer)
    result = {"proposalId": proposal_id, "voter": voter.address, "relayer": relayer.address, "support": support,
              "signature": "0x" + signature.hex(), "hasVoted": bool(gov.hasVoted(proposal_id, voter.address)),
              "tx": receipt.txn_hash, "gasUsed": receipt.gas_used}
    emit(result, as_json, f"{relayer.address} relayed {voter.address}'s signed {support} vote on {proposal_id} "
                          f"(gas {receipt.gas_used})")
