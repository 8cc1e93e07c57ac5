"""Vote by EIP-712 signature, signed on one machine and relayed from another:

    ape run dao_vote_by_sig --signer ALIAS|KEYFILE|N --proposal ID --support for --sign-only ballot.json
    ape run dao_vote_by_sig --relayer ALIAS|KEYFILE|N --relay ballot.json          (anyone, anywhere)
    ape run dao_vote_by_sig --signer S --relayer R --proposal ID --support for     (both in one go)

The ballot file (common/ballots.py, the same `loyal dao vote --sign-only/--relay` writes and
reads) holds the chain, governor, proposal, support, voter, nonce and signature. Before relaying,
a ballot for another chain or governor, a used nonce, or a signature that is not the voter's over
exactly these fields (e.g. the proposal id edited) is refused by name; nothing is sent.
"""
from __future__ import annotations

import click
from ape import chain
from ape.cli import ConnectedProviderCommand, network_option
from eth_account import Account
from eth_account.messages import encode_typed_data

from common.ballots import BallotFileError, SignedBallot, check_ballot, read_ballot, write_ballot
from common.typed_data import BALLOT, Domain, typed_data  # standard library only: fine in .venv-ape
from scripts._dao import (SUPPORT, Refused, advance_past, emit, governor, load_account, require_state, send, state)


def ballot(gov, proposal_id: int, support: int, voter: str, nonce: int) -> dict:
    return typed_data(Domain(gov.name(), gov.version(), chain.chain_id, gov.address), BALLOT,
                      {"proposalId": proposal_id, "support": support, "voter": voter, "nonce": nonce})


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option("--signer", "signer_spec", metavar="ALIAS|KEYFILE|N", help="the voter, who signs the ballot")
@click.option("--relayer", "relayer_spec", metavar="ALIAS|KEYFILE|N", help="who sends castVoteBySig")
@click.option("--proposal", "proposal_id", type=int)
@click.option("--support", type=click.Choice(list(SUPPORT)), default="for", show_default=True)
@click.option("--sign-only", "sign_only", type=click.Path(dir_okay=False), help="write the signed ballot to FILE; "
              "send nothing")
@click.option("--relay", "relay_file", type=click.Path(dir_okay=False), help="send the ballot signed in FILE")
@click.option("--wait", is_flag=True, help="dev chain: move time to the start of voting first")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def cli(signer_spec, relayer_spec, proposal_id, support, sign_only, relay_file, wait, as_json):
    if sign_only and relay_file:
        raise Refused("--sign-only and --relay exclude each other: sign on one machine, relay on another")
    gov = governor()
    if relay_file:
        if not relayer_spec:
            raise Refused("--relay needs --relayer ACCOUNT (who sends the transaction)")
        try:
            signed = read_ballot(relay_file)
        except BallotFileError as e:
            raise Refused(str(e)) from None
    else:
        if not signer_spec or proposal_id is None:
            raise Refused("signing needs --signer ACCOUNT and --proposal ID")
        if wait and state(gov, proposal_id) == "Pending":
            advance_past(gov.proposalSnapshot(proposal_id))
        if state(gov, proposal_id) != "Pending":  # a ballot may be signed before voting opens
            require_state(gov, proposal_id, "Active", "sign a ballot")
        voter = load_account(signer_spec)
        nonce = int(gov.nonces(voter.address))
        data = ballot(gov, proposal_id, SUPPORT[support], voter.address, nonce)
        signature = voter.sign_message(encode_typed_data(full_message=data)).encode_rsv()
        signed = SignedBallot(chain.chain_id, gov.address, proposal_id, SUPPORT[support], voter.address, nonce,
                              bytes(signature))
        if sign_only:
            write_ballot(sign_only, signed)
            emit({"ballot": sign_only, **signed.to_json()}, as_json,
                 f"{voter.address} signed a {support} ballot on {proposal_id} into {sign_only} (nothing sent)")
            return
        if not relayer_spec:
            raise Refused("give --relayer ACCOUNT to send the ballot, or --sign-only FILE to keep it")
    try:
        check_ballot(signed, chain_id=chain.chain_id, governor=gov.address, voter_nonce=int(gov.nonces(signed.voter)))
    except BallotFileError as e:
        raise Refused(str(e)) from None
    data = ballot(gov, signed.proposal_id, signed.support, signed.voter, signed.nonce)
    if Account.recover_message(encode_typed_data(full_message=data), signature=signed.signature).lower() \
            != signed.voter.lower():
        raise Refused(f"the signature is not {signed.voter}'s over this ballot (proposal {signed.proposal_id}, "
                      f"{signed.support_name}, nonce {signed.nonce}): it was signed for another proposal, vote or "
                      "chain; nothing sent")
    require_state(gov, signed.proposal_id, "Active", "relay the vote")
    relayer = load_account(relayer_spec)
    receipt = send(gov.castVoteBySig, signed.proposal_id, signed.support, signed.voter, signed.signature,
                   sender=relayer, what="the relayed vote")
    result = {"proposalId": str(signed.proposal_id), "voter": signed.voter, "relayer": relayer.address,
              "support": signed.support_name, "signature": "0x" + signed.signature.hex(),
              "hasVoted": bool(gov.hasVoted(signed.proposal_id, signed.voter)), "tx": receipt.txn_hash,
              "gasUsed": receipt.gas_used}
    emit(result, as_json, f"{relayer.address} relayed {signed.voter}'s signed {signed.support_name} vote on "
                          f"{signed.proposal_id} (gas {receipt.gas_used})")
