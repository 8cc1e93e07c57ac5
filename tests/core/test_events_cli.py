"""`loyal events` as auditors run it: a subprocess against a real Anvil with the suite deployed."""
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from eth_utils import keccak

from agents.core.signers import dev_signer
from agents.dao.deploy import SAFETY
from agents.dao.demo import members
from agents.dao.governance import Action, Dao

REPO = Path(__file__).resolve().parents[2]


def loyal(*args):
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)


def events(chain, anvil, *args) -> list[str]:
    r = loyal("events", "--rpc", anvil.rpc_url, "--book", str(chain.book.path), *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def events_json(chain, anvil, *args) -> list[dict]:
    return [json.loads(line) for line in events(chain, anvil, *args, "--json")]


def test_chain_without_address_book_is_refused_in_one_line(anvil, tmp_path):
    missing = loyal("events", "--rpc", anvil.rpc_url, "--book", str(tmp_path / "none.json"))
    empty_book = tmp_path / "empty.json"
    empty_book.write_text(json.dumps({"chainId": 31337, "contracts": {}}))
    empty = loyal("events", "--rpc", anvil.rpc_url, "--book", str(empty_book))
    for r in (missing, empty):
        assert r.returncode == 1
        assert r.stdout == ""
        assert r.stderr.strip().count("\n") == 0
        assert "no address book for chain 31337" in r.stderr and "loyal deploy" in r.stderr and "--book" in r.stderr


def test_stale_address_book_is_refused(anvil, tmp_path):
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps({"chainId": 31337, "contracts": {"LoyalToken": {"address": "0x" + "ab" * 20}}}))
    r = loyal("events", "--rpc", anvil.rpc_url, "--book", str(stale))
    assert r.returncode == 1 and r.stdout == "" and r.stderr.strip().count("\n") == 0
    assert "has no code" in r.stderr and "loyal deploy" in r.stderr


def test_foreign_contract_logs_are_not_printed(chain, signers, anvil):
    start = chain.w3.eth.block_number + 1
    foreign, _ = chain.deploy(signers[1], "LoyalToken", signers[1].address, 10**18)  # not in the address book
    chain.transact(signers[1], chain.contract_at("LoyalToken", foreign).functions.transfer(signers[2].address, 5))
    chain.transact(signers[1], chain.contract("LoyalToken").functions.transfer(signers[2].address, 7))
    rows = events_json(chain, anvil, "--from-block", str(start))
    assert [(r["address"], r["event"], r["args"]["value"]) for r in rows] == \
        [(chain.book.address("LoyalToken"), "Transfer", 7)]


def test_where_filters_on_event_arguments(chain, signers, anvil):
    start = chain.w3.eth.block_number + 1
    token = chain.contract("LoyalToken")
    for to, value in ((signers[2], 11), (signers[3], 12), (signers[2], 12)):
        chain.transact(signers[1], token.functions.transfer(to.address, value))
    base = ("--from-block", str(start), "-e", "Transfer")
    assert len(events(chain, anvil, *base)) == 3
    to_2 = events_json(chain, anvil, *base, "--where", f"to={signers[2].address.lower()}")  # addresses: any case
    assert [r["args"]["value"] for r in to_2] == [11, 12]
    both = events_json(chain, anvil, *base, "--where", "to=0x" + signers[2].address[2:].upper(),
                       "--where", "value=0xc")  # integers compare as integers: 0xc == 12
    assert [(r["args"]["to"], r["args"]["value"]) for r in both] == [(signers[2].address, 12)]
    assert events(chain, anvil, *base, "--where", "value=13") == []


def test_where_on_an_argument_no_event_has_is_refused(chain, anvil):
    r = loyal("events", "--rpc", anvil.rpc_url, "--book", str(chain.book.path), "-c", "LoyalToken",
              "--where", "taskid=3")
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0
    assert "no selected event has an argument taskid" in r.stderr


def test_json_big_ints_as_strings_amounts_in_loyal_and_block_time(chain, signers, anvil):
    start = chain.w3.eth.block_number + 1
    token = chain.contract("LoyalToken")
    chain.transact(signers[1], token.functions.transfer(signers[2].address, 1_500_000_000_000_000_000))
    chain.transact(signers[1], token.functions.transfer(signers[2].address, 11))
    big, small = events_json(chain, anvil, "--from-block", str(start), "-e", "Transfer")
    assert big["args"]["value"] == "1500000000000000000"  # > 2**53: a string, exact in jq
    assert big["LOYAL"] == {"value": "1.5"}
    assert small["args"]["value"] == 11 and small["LOYAL"] == {"value": "0.000000000000000011"}
    block_ts = chain.w3.eth.get_block(big["block"])["timestamp"]
    assert big["timestamp"] == block_ts
    assert big["time"] == datetime.fromtimestamp(block_ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = events(chain, anvil, "--from-block", str(start), "-e", "Transfer")
    assert text[0].startswith(f"#{big['block']}:{big['log_index']} {big['time']} LoyalToken.Transfer(")
    assert text[0].endswith(f"to={signers[2].address}, value=1.5 LOYAL)")


def test_proposal_calldata_decoded_and_enums_by_name(chain, anvil):
    dao = Dao(chain)
    dao.advance_past(dao.now())  # proposers are read at clock() - 1
    proposer, newcomer = members()["safety3"], dev_signer(30)
    ref = keccak(text="report:1")
    proposal = dao.propose(proposer, "system", [
        Action.call(dao.treasury, "payBounty", ref, newcomer.address, 500 * 10**18),
        Action.call(dao.personnel, "admit", newcomer.address, SAFETY, 1, b"\x01" * 32),
    ], "Bounty and admission")
    rows = events_json(chain, anvil, "-c", "DaoGovernor", "--where", f"proposalId={proposal.id}")
    assert [r["event"] for r in rows] == ["ProposalCreated", "ProposalTyped"]
    created, typed = rows
    assert created["args"]["proposalId"] == str(proposal.id)  # a 256-bit hash: a string, never rounded
    assert typed["enum"] == {"proposalType": "System"} and typed["args"]["proposalType"] == 2
    pay, admit = created["calls"]
    assert pay["text"] == (f"DaoTreasury.payBounty(bountyRef=0x{ref.hex()}, recipient={newcomer.address}, "
                           f"amount=500 LOYAL)")
    assert pay["args"]["amount"] == str(500 * 10**18) and pay["LOYAL"] == {"amount": "500"}
    assert admit["text"] == (f"PersonnelRegistry.admit(account={newcomer.address}, track=Safety, tier=1, "
                             f"vettingRef=0x{'01' * 32})")
    assert admit["enum"] == {"track": "Safety"}
    text = events(chain, anvil, "-c", "DaoGovernor", "-e", "ProposalCreated", "--where", f"proposalId={proposal.id}")
    assert len(text) == 1 and f"calldatas=[{pay['text']}, {admit['text']}]" in text[0]
    assert 'description="Bounty and admission"' in text[0]


def test_genesis_personnel_tracks_by_name(chain, anvil):
    rows = events_json(chain, anvil, "-c", "PersonnelRegistry", "-e", "PersonnelAdmitted")
    safety3 = members()["safety3"].address
    (row,) = [r for r in rows if r["args"]["account"] == safety3]
    assert row["enum"] == {"track": "Safety"} and row["args"]["tier"] == 3
    assert "track=Safety, tier=3" in events(chain, anvil, "-c", "PersonnelRegistry", "--where",
                                            f"account={safety3}")[0]


@pytest.mark.parametrize("where", ["track=safety", "track=2"])
def test_where_on_an_enum_takes_its_name_or_value(chain, anvil, where):
    rows = events_json(chain, anvil, "-c", "PersonnelRegistry", "-e", "PersonnelAdmitted", "--where", where)
    assert rows and {r["enum"]["track"] for r in rows} == {"Safety"}
