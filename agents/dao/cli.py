"""`loyal dao ...`: the AI-governance DAO for voters and datacenters, with the same keystores as every
other role (`--keystore FILE|NAME`, `--dev-account N` on dev chains).

    loyal dao proposals                       every proposal: type, state, voting window (dates), tally
    loyal dao show ID                         one proposal, its actions decoded
    loyal dao propose --type review --call 'DaoModelRegistry.approve [1, 2, 0, "triage", 5000, 1830000000]' \\
                      --description "Approve model 1"
    loyal dao vote ID --support for           (or --sign-only FILE here, --relay FILE from anyone elsewhere)
    loyal dao execute ID
    loyal dao buy-credits N                   gas credits at the voted price, paid in LOYAL
    loyal dao datacenter --hardware ID ...    the datacenter daemon (attestations, challenges, OTKs)

Every refusal is one line naming the problem (a state by name with its date, a custom error by name
however deep the revert), and nothing is sent.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from agents.core.cli import BOOK, DEV_ACCOUNT, KEYSTORE, RPC, connect, console, require_suite, signer
from common.config import configure
from common.errors import ConfigError

app = typer.Typer(help="AI-governance DAO: personnel, typed votes, model/hardware registries, OTK drip.",
                  no_args_is_help=True)

_JSON = typer.Option(False, "--json", help="print the result as JSON on stdout")
_WAIT = typer.Option(False, "--wait", help="dev chain only: move the chain's clock to the start (vote) or past the "
                     "end (execute) of voting first")


def _dao(rpc, book):
    from .governance import Dao

    s = configure(rpc_url=rpc)
    chain = connect(s, book)
    require_suite(chain)
    return s, chain, Dao(chain)


def _print(result: dict, as_json: bool, line: str) -> None:
    from agents.core.audit import json_safe

    print(json.dumps(json_safe(result), indent=2) if as_json else line)


def _proposal_id(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise ConfigError(f"proposal id {text!r} is not a number (see `loyal dao proposals`)") from None
    if not 0 <= value < 2**256:
        raise ConfigError(f"proposal id {text!r} is not a uint256")
    return value


def _dev_wait(chain, what: str) -> None:
    if chain.chain_id != 31337:
        raise ConfigError(f"--wait moves the clock of a dev chain; chain {chain.chain_id} keeps its own time ({what})")


@app.command()
def demo(as_json: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout")):
    """Fresh Anvil + suite: vote in personnel, a model and hardware; run a workload under the OTK drip;
    fail attestations until the drip halts and the hardware is revoked; revoke the model by Emergency vote."""
    from agents.core.anvil import Anvil
    from agents.core.chain import Chain
    from agents.core.deploy import deploy_suite
    from agents.core.signers import dev_signer
    import tempfile

    from .demo import run_demo

    with Anvil(accounts=40) as node, tempfile.TemporaryDirectory() as tmp:
        chain = Chain.connect(node.rpc_url, book_path=Path(tmp) / "31337.json")
        with console.status("deploying the suite"):
            deploy_suite(chain, dev_signer(0))
        summary = run_demo(chain, log=lambda s: console.print(s, highlight=False))
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        console.print_json(json.dumps(summary, default=str))


@app.command()
def proposals(rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, as_json: bool = _JSON):
    """Every proposal of the governor: id, type, state, voting window (UTC dates), tally, title."""
    from agents.core.events import fetch_events

    _, chain, dao = _dao(rpc, book)
    start = int(chain.book.contracts["DaoGovernor"].get("block", 0))
    rows = []
    for ev in fetch_events(chain, from_block=start, contracts=["DaoGovernor"], names=["ProposalCreated"]):
        pid = ev.args["proposalId"]
        row = dao.status(pid)
        row["title"] = ev.args["description"].splitlines()[0][:80] if ev.args["description"] else ""
        rows.append(row)
    if as_json:
        _print({"proposals": rows}, True, "")
        return
    if not rows:
        print("no proposals")
    for r in rows:
        t = r["tally"]
        print(f"{r['proposalId']}  {r['type']:9} {r['state']:9} voting {r['votingOpens']} -> {r['votingCloses']}  "
              f"for {t['for']} / against {t['against']} / abstain {t['abstain']} (quorum {r['quorum']})  {r['title']}")


@app.command()
def show(proposal: str = typer.Argument(..., help="proposal id"), rpc: Optional[str] = RPC,
         book: Optional[Path] = BOOK, as_json: bool = _JSON):
    """One proposal: type, state, voting window, tally, quorum and its actions decoded."""
    from agents.core.audit import Auditor

    _, chain, dao = _dao(rpc, book)
    pid = _proposal_id(proposal)
    status = dao.status(pid)
    p = dao.find(pid)
    auditor = Auditor(chain)
    calls = [auditor.decode_call(a.target, a.calldata) for a in p.actions]
    status.update(description=p.description, actions=[c.to_json() for c in calls])
    if as_json:
        _print(status, True, "")
        return
    t = status["tally"]
    print(f"proposal {pid} ({status['type']}{', changes the rules' if status['changesRules'] else ''}): "
          f"{status['state']}")
    print(f"voting {status['votingOpens']} -> {status['votingCloses']}; for {t['for']}, against {t['against']}, "
          f"abstain {t['abstain']}; quorum {status['quorum']}")
    for c in calls:
        print(f"  {c.text()}")
    print(p.description)


def _encode_calls(chain, calls: List[str]):
    from .governance import Action

    actions = []
    for call in calls:
        spec, _, args_json = call.strip().partition(" ")
        args_json = args_json.strip() or "[]"
        name, _, fn = spec.partition(".")
        if not fn:
            raise ConfigError(f"--call {spec!r} is not Contract.function")
        try:
            args = json.loads(args_json)
        except json.JSONDecodeError as e:
            raise ConfigError(f"arguments of {spec} are not JSON ({e.msg})") from None
        if not isinstance(args, list):
            raise ConfigError(f"arguments of {spec} must be a JSON list")
        contract = chain.contract(name)
        items = [i for i in contract.abi if i.get("type") == "function" and i["name"] == fn]
        if not items:
            raise ConfigError(f"{name} has no function {fn}")
        args = [_bytes_args(i, a) for i, a in zip(items[0]["inputs"], args)]
        try:
            actions.append(Action.call(contract, fn, *args))
        except Exception as e:  # web3's validation: wrong count or type of arguments
            sig = f"{fn}({', '.join(i['type'] + ' ' + i['name'] for i in items[0]['inputs'])})"
            raise ConfigError(f"arguments of {spec} do not fit {sig}: {type(e).__name__}") from None
    return actions


def _bytes_args(abi: dict, value):
    """0x-hex strings for bytesN/bytes arguments become bytes (web3 wants bytes for them)."""
    if abi["type"].startswith("bytes") and isinstance(value, str) and value.startswith("0x"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            raise ConfigError(f"argument {abi['name']}: {value!r} is not 0x-hex") from None
    return value


@app.command()
def propose(
    ptype: str = typer.Option("review", "--type", help="safety, review, system or emergency"),
    calls: List[str] = typer.Option(..., "--call", help="an action: 'Contract.function [JSON arguments]' (repeat "
                                    "for several), e.g. 'DaoModelRegistry.revoke [1, \"0x..\"]'"),
    description: str = typer.Option(..., "--description"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, as_json: bool = _JSON,
    id_only: bool = typer.Option(False, "--id-only", help="print only the proposal id (for shell variables)"),
):
    """Create a typed proposal; prints its id. Actions outside the type's allow-list are refused."""
    from .governance import TYPE_NAMES, proposal_type

    s, chain, dao = _dao(rpc, book)
    try:
        t = proposal_type(ptype)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    actions = _encode_calls(chain, calls)
    who = signer(chain, s, keystore, dev_account)
    p = dao.propose(who, t, actions, description)
    from agents.core.audit import iso_utc

    result = {"proposalId": str(p.id), "type": TYPE_NAMES[t], "proposer": who.address,
              "votingOpens": iso_utc(p.vote_start + 1), "votingCloses": iso_utc(p.vote_end), "gasUsed": p.gas_used}
    if id_only:
        print(p.id)
        return
    _print(result, as_json, f"proposal {p.id} ({result['type']}): voting {result['votingOpens']} -> "
                            f"{result['votingCloses']}")


@app.command()
def vote(
    proposal: Optional[str] = typer.Argument(None, help="proposal id (not with --relay)"),
    support: str = typer.Option("for", "--support", help="for, against or abstain"),
    sign_only: Optional[Path] = typer.Option(None, "--sign-only", help="sign the EIP-712 ballot into FILE; send nothing"),
    relay: Optional[Path] = typer.Option(None, "--relay", help="send the ballot signed in FILE (by anyone) from this "
                                         "signer"),
    wait: bool = _WAIT,
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, as_json: bool = _JSON,
):
    """Vote on a proposal; or sign a ballot to a file on one machine and relay it from another."""
    from common.ballots import BallotFileError, read_ballot, write_ballot

    from .governance import BadBallot, support_value

    if sign_only and relay:
        raise ConfigError("--sign-only and --relay exclude each other: sign on one machine, relay on another")
    if relay is None and proposal is None:
        raise ConfigError("which proposal? give its id (or --relay FILE)")
    if relay is not None and proposal is not None:
        raise ConfigError("--relay takes the proposal from the ballot file: give no proposal id")
    try:
        sv = support_value(support)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    s, chain, dao = _dao(rpc, book)
    if relay is not None:
        try:
            ballot = read_ballot(relay)
        except BallotFileError as e:
            raise BadBallot(str(e)) from None
        who = signer(chain, s, keystore, dev_account)
        r = dao.relay(who, ballot)
        result = {"proposalId": str(ballot.proposal_id), "voter": ballot.voter, "relayer": who.address,
                  "support": ballot.support_name, "tx": r["transactionHash"].to_0x_hex(), "gasUsed": r["gasUsed"]}
        _print(result, as_json, f"relayed {ballot.voter}'s {ballot.support_name} vote on {ballot.proposal_id} "
                                f"(gas {r['gasUsed']})")
        return
    pid = _proposal_id(proposal)
    who = signer(chain, s, keystore, dev_account)
    if wait:
        _dev_wait(chain, "vote")
        if dao.state(pid) == "Pending":
            dao.advance_past(chain.call(dao.governor.functions.proposalSnapshot(pid)))
    if sign_only is not None:
        if dao.state(pid) != "Pending":  # a ballot may be signed before voting opens, not after it closed
            dao.require_state(pid, "Active", "sign a ballot")
        ballot = dao.signed_ballot(who, pid, sv)
        write_ballot(sign_only, ballot)
        _print({"ballot": str(sign_only), **ballot.to_json()}, as_json,
               f"{who.address} signed a {ballot.support_name} ballot on {pid} into {sign_only} (nothing sent; "
               "relay it with `loyal dao vote --relay FILE` or `ape run dao_vote_by_sig --relay FILE`)")
        return
    r = dao.vote(who, pid, sv)
    st = dao.status(pid)
    t = st["tally"]
    _print({**st, "voter": who.address, "support": support, "gasUsed": r["gasUsed"]}, as_json,
           f"{who.address} voted {support} on {pid}: for {t['for']}, against {t['against']}, abstain {t['abstain']} "
           f"(quorum {st['quorum']}; voting closes {st['votingCloses']})")


@app.command()
def execute(
    proposal: str = typer.Argument(..., help="proposal id"), wait: bool = _WAIT,
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, as_json: bool = _JSON,
):
    """Execute a Succeeded proposal (its actions are read back from the chain)."""
    s, chain, dao = _dao(rpc, book)
    pid = _proposal_id(proposal)
    who = signer(chain, s, keystore, dev_account)
    p = dao.find(pid)
    if wait:
        _dev_wait(chain, "execute")
        dao.advance_past(p.vote_end)
    r = dao.execute(who, p)
    events = [e.name for e in chain.decode_events(r)]
    _print({"proposalId": str(pid), "state": dao.state(pid), "gasUsed": r["gasUsed"], "events": events}, as_json,
           f"proposal {pid} executed (gas {r['gasUsed']}); events: {', '.join(events)}")


@app.command("submit-model")
def submit_model(
    artifact: Optional[Path] = typer.Option(None, "--artifact", help="the model's weights/artifact file (its "
                                            "keccak256 is registered)"),
    artifact_hash: Optional[str] = typer.Option(None, "--artifact-hash", help="or its 0x-hex 32-byte digest"),
    uri: str = typer.Option(..., "--uri", help="where reviewers fetch the artifact and model card"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, as_json: bool = _JSON,
):
    """Submit a model for review (it starts Pending); prints its id."""
    from eth_utils import keccak

    if (artifact is None) == (artifact_hash is None):
        raise ConfigError("give the model as --artifact FILE or as --artifact-hash 0x... (one of them)")
    if artifact is not None:
        try:
            digest = keccak(artifact.read_bytes())
        except OSError as e:
            raise ConfigError(f"cannot read {artifact}: {e.strerror}") from None
    else:
        digest = _hash32(artifact_hash, "--artifact-hash")
    s, chain, dao = _dao(rpc, book)
    who = signer(chain, s, keystore, dev_account)
    r = chain.transact(who, dao.models.functions.submit(digest, uri))
    model_id = next(e for e in chain.decode_events(r) if e.name == "ModelSubmitted").args["modelId"]
    _print({"modelId": model_id, "submitter": who.address, "artifactHash": "0x" + digest.hex()}, as_json,
           str(model_id))


@app.command("register-hardware")
def register_hardware(
    attestation_key: str = typer.Option(..., "--attestation-key", help="the unit's own signing key: keystore FILE|NAME "
                                        "(only its address is read)"),
    measurement: str = typer.Option(..., "--measurement", help="0x-hex 32-byte reference measurement"),
    meta: str = typer.Option("", "--meta", help="where the unit is (datacenter/rack/node)"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, as_json: bool = _JSON,
):
    """Register a hardware unit operated by the signer (it starts Pending); prints its id."""
    from agents.core.signers import keystore_address, keystore_path

    m = _hash32(measurement, "--measurement")
    s, chain, dao = _dao(rpc, book)
    unit = keystore_address(keystore_path(attestation_key, s))
    who = signer(chain, s, keystore, dev_account)
    r = chain.transact(who, dao.hardware.functions.register(unit, m, meta))
    hw = next(e for e in chain.decode_events(r) if e.name == "HardwareRegistered").args["hardwareId"]
    _print({"hardwareId": hw, "operator": who.address, "attestationKey": unit}, as_json, str(hw))


def _hash32(text: str, option: str) -> bytes:
    try:
        b = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not hex") from None
    if len(b) != 32:
        raise ConfigError(f"{option} must be 32 bytes, got {len(b)}")
    return b


@app.command("buy-credits")
def buy_credits(
    credits: int = typer.Argument(..., min=1, help="gas credits to buy"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT, as_json: bool = _JSON,
):
    """Buy gas credits at the voted price, paying LOYAL (never leaves an approval behind a refusal)."""
    from common.units import format_amount

    s, chain, dao = _dao(rpc, book)
    who = signer(chain, s, keystore, dev_account)
    r = dao.buy_credits(who, credits)
    ev = next(e for e in chain.decode_events(r) if e.name == "CreditsBought")
    balance = chain.call(dao.credits.functions.balanceOf(who.address))
    _print({"account": who.address, "credits": credits, "paid": ev.args["paid"], "balance": balance}, as_json,
           f"{who.address} bought {credits} gas credits for {format_amount(ev.args['paid'])}; balance {balance}")


@app.command()
def datacenter(
    hardware: int = typer.Option(..., "--hardware", min=1, help="the approved hardware unit this datacenter runs"),
    measurement: str = typer.Option(..., "--measurement", help="0x-hex 32-byte measurement the unit reports "
                                    "(its reference when healthy)"),
    attestation_key: str = typer.Option(..., "--attestation-key", help="the unit's own signing key: keystore "
                                        "FILE|NAME (same keystores as every role)"),
    run: Optional[int] = typer.Option(None, "--run", min=1, help="follow this open run"),
    model: Optional[int] = typer.Option(None, "--model", min=1, help="open a run of this model (first start only)"),
    budget: int = typer.Option(1_000, "--budget", min=1, help="with --model: run budget (units)"),
    ration: int = typer.Option(100, "--ration", min=1, help="with --model: units per OTK"),
    tier: int = typer.Option(1, "--tier", min=1, max=3, help="with --model: the run's risk tier"),
    scope: str = typer.Option("narrow", "--scope", help="with --model: narrow or general"),
    purpose: str = typer.Option("", "--purpose", help="with --model: declared purpose [default: the model's]"),
    duration: int = typer.Option(86_400, "--duration", min=1, help="with --model: seconds rations may be drawn"),
    interval: int = typer.Option(3_600, "--interval", min=1, help="with --model: max age (s) of the attestation a "
                                 "ration needs"),
    home: Optional[Path] = typer.Option(None, "--home", help="state folder (cursor) [default <home setting>]"),
    poll: Optional[float] = typer.Option(None, "--poll", help="seconds to sleep when idle [setting poll]"),
    exit_when_done: bool = typer.Option(False, "--exit-when-done", help="exit when the run's drip has stopped"),
    rpc: Optional[str] = RPC, book: Optional[Path] = BOOK, keystore: Optional[str] = KEYSTORE,
    dev_account: Optional[int] = DEV_ACCOUNT,
):
    """Datacenter daemon: attest the unit, answer its attestation challenges, draw the OTK drip, do
    each ration's work and consume its key; resumes from its cursor after any kill."""
    import logging
    import time

    from agents.core.events import EventCursor
    from agents.core.logs import setup_logging
    from agents.core.signers import load_signer

    from .datacenter import SCOPES, Datacenter, DatacenterDaemon, RunRequest, cursor_path, run_secret

    if run is not None and model is not None:
        raise ConfigError("--run follows an open run, --model opens one: give one of them")
    if scope.lower() not in SCOPES:
        raise ConfigError(f"--scope {scope!r}: narrow or general")
    m = _hash32(measurement, "--measurement")
    s = configure(rpc_url=rpc)
    setup_logging(s.log_level)
    chain = connect(s, book)
    require_suite(chain)
    operator = signer(chain, s, keystore, dev_account)
    hw_key = load_signer(chain.chain_id, keystore=attestation_key, settings=s)
    dc = Datacenter(chain, operator, hw_key, hardware, m, secret=run_secret(operator))
    unit = chain.call(dc.hardware.functions.operatorOf(hardware))
    if unit.lower() != operator.address.lower():
        raise ConfigError(f"hardware {hardware} is operated by {unit}, not by this signer {operator.address}")
    path = cursor_path(home or s.home, chain.chain_id, hardware, operator.address)
    start = int(chain.book.contracts["OTKIssuer"].get("block", 0))
    cursor = EventCursor.open(path, start_block=start)
    req = None if model is None else RunRequest(model, f"loyal-dc-{hardware}-{time.time_ns()}".encode(), budget,
                                                ration, duration, interval, tier, SCOPES[scope.lower()], purpose)
    if run is None and model is None and cursor.state.get("run_id") is None:
        raise ConfigError("no run to follow: pass --run ID, or --model ID to open one")
    d = DatacenterDaemon(dc, cursor, request=req, run_id=run)
    log = logging.getLogger("loyal.dao.datacenter")
    log.info("datacenter for hardware #%d (operator %s), cursor %s", hardware, operator.address, path)
    d.run(poll=poll or s.poll)
    log.info("drip stopped: %s after %d keys, %d units", d.finished, cursor.state["done"], cursor.state["units"])
    while not exit_when_done:  # a daemon stays up until stopped; a new run is a new --run/--model start
        time.sleep(poll or s.poll)
