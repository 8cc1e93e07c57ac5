"""Shared by the DAO Ape scripts (dao_propose, dao_vote, dao_vote_by_sig, dao_execute).

Plain Ape API against the address book of the connected network (see scripts/_loyal.py), on any
network Ape reaches: `--network ethereum:local:foundry` (default, the devnet), or any RPC by URL
(`--network https://host:8545`). Accounts are the voter's own:

- an Ape account alias (`ape accounts import NAME` / `ape accounts generate NAME`),
- a keyfile path (a Web3 Secret Storage file: the same file `loyal keys new` writes),
- or, on the dev chain 31337 only, an Anvil dev account index (genesis personnel: 20..25 are
  safety tiers 1-3 and policy tiers 1-3).

A keyfile's passphrase comes from `APE_ACCOUNTS_<alias>_PASSPHRASE`, then `LOYAL_KEY_PASSWORD`,
then a prompt on a terminal. Every refusal is one line: proposal states by name with their dates,
reverts decoded by name against every suite contract's errors (a revert nested in `execute`
included), and nothing is sent.
"""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from ape import accounts, chain, project
from ape.exceptions import ApeException, ContractLogicError
from eth_abi import decode as abi_decode
from eth_utils import keccak

from scripts._loyal import load_book, suite_contract

# Ape's own INFO lines ("Connecting...", "Confirmed...") would mix with the results on stdout: the
# scripts print their own line (or JSON). APE_LOG_LEVEL=INFO brings them back.
from ape.logging import logger as _ape_logger  # noqa: E402

_ape_logger.set_level(os.environ.get("APE_LOG_LEVEL", "ERROR"))

TYPES = {"safety": 0, "review": 1, "system": 2, "emergency": 3}
TYPE_NAMES = {v: k.capitalize() for k, v in TYPES.items()}
SUPPORT = {"against": 0, "for": 1, "abstain": 2}
STATES = ["Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed"]
DEV_CHAIN = 31337


class Refused(click.ClickException):
    """One line on stderr, exit 1 (`ape run` prints `ERROR: (Refused) <line>` for it)."""


def account_option(*names: str, help: str):
    return click.option(*names, required=True, metavar="ALIAS|KEYFILE|N",
                        help=f"{help}: an Ape account alias, a keyfile path, or a dev account index (chain 31337)")


def load_account(spec: str):
    """The account `spec` names (see the module docstring), unlocked to sign without prompts."""
    spec = str(spec).strip()
    if spec.isdigit():
        return dev_account(int(spec))
    path = Path(spec).expanduser()
    if path.suffix == ".json" or os.sep in spec:
        if not path.is_file():
            raise Refused(f"keyfile {path} does not exist")
        from ape_accounts import KeyfileAccount

        try:
            blob = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            blob = None
        if not isinstance(blob, dict) or not {"crypto", "Crypto"} & set(blob) or "address" not in blob:
            raise Refused(f"{path} is not a Web3 Secret Storage keyfile (with its address)")
        account = KeyfileAccount(keyfile_path=path)
    else:
        try:
            account = accounts.load(spec)
        except (ApeException, IndexError, KeyError):
            raise Refused(f"no Ape account {spec!r}: `ape accounts import {spec}` (or generate), or pass a keyfile "
                          "path") from None
    if hasattr(account, "set_autosign"):
        alias = getattr(account, "alias", "")
        passphrase = os.environ.get(f"APE_ACCOUNTS_{alias}_PASSPHRASE") or os.environ.get("LOYAL_KEY_PASSWORD")
        if passphrase is None and not sys.stdin.isatty():
            raise Refused(f"no passphrase for {spec}: set APE_ACCOUNTS_{alias}_PASSPHRASE or LOYAL_KEY_PASSWORD")
        try:
            account.set_autosign(True, passphrase=passphrase)
        except ApeException as e:
            raise Refused(f"cannot unlock {spec}: {e}") from None
    return account


def dev_account(index: int):
    if chain.chain_id != DEV_CHAIN:
        raise Refused(f"chain {chain.chain_id} is not the dev chain {DEV_CHAIN}: dev keys are public; use an Ape "
                      "account alias or a keyfile")
    test_accounts = accounts.test_accounts
    while len(test_accounts) <= index:  # beyond `number_of_accounts`: derive the next ones from the mnemonic
        test_accounts.generate_test_account()
    return test_accounts[index]


def governor():
    return suite_contract(load_book(), "DaoGovernor")


def bind_all(book: dict) -> None:
    """Bind every suite contract, so Ape decodes their events in any receipt."""
    for name in book:
        try:
            suite_contract(book, name)
        except Exception:  # a book entry Ape did not compile (none expected)
            pass


def encode_call(book: dict, spec: str, args_json: str) -> tuple[str, bytes]:
    """`("DaoModelRegistry.approve", "[1, 2, 0, \\"triage\\", 5000, 1830000000]")` -> (address, calldata)."""
    try:
        name, fn = spec.split(".", 1)
    except ValueError:
        raise click.BadParameter(f"{spec!r} is not Contract.function", param_hint="--call") from None
    try:
        args = json.loads(args_json)
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"arguments of {spec} are not JSON ({e.msg})", param_hint="--call") from None
    if not isinstance(args, list):
        raise click.BadParameter(f"arguments of {spec} must be a JSON list", param_hint="--call")
    contract = suite_contract(book, name)
    if not hasattr(contract, fn):
        raise click.BadParameter(f"{name} has no function {fn}", param_hint="--call")
    try:
        return contract.address, bytes(getattr(contract, fn).encode_input(*args))
    except Exception as e:  # Ape's conversion: wrong count or type of arguments
        raise click.BadParameter(f"arguments of {spec} do not fit: {e}", param_hint="--call") from None


# -- names and dates ------------------------------------------------------------------------------
def date(timestamp: int) -> str:
    return datetime.fromtimestamp(int(timestamp), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def state(gov, proposal_id: int) -> str:
    """The proposal's state by name; `Refused` naming an unknown id (checked without a reverting call,
    whose trace Ape would print)."""
    if int(gov.proposalSnapshot(proposal_id)) == 0:
        raise Refused(f"no proposal {proposal_id} on the governor {gov.address} of chain {chain.chain_id}")
    return STATES[int(gov.state(proposal_id))]


def window(gov, proposal_id: int) -> tuple[str, str]:
    """(voting opens, voting closes) as UTC dates."""
    return date(int(gov.proposalSnapshot(proposal_id)) + 1), date(int(gov.proposalDeadline(proposal_id)))


def require_state(gov, proposal_id: int, wanted: str, action: str) -> None:
    current = state(gov, proposal_id)
    if current == wanted:
        return
    opens, closes = window(gov, proposal_id)
    when = {"Pending": f"voting opens {opens}", "Active": f"voting closes {closes}"}.get(current,
                                                                                         f"voting closed {closes}")
    raise Refused(f"proposal {proposal_id} is {current} ({when}), not {wanted}: cannot {action}; nothing sent")


def find_proposal(gov, proposal_id: int):
    """The ProposalCreated log of `proposal_id` (its targets, calldatas and description)."""
    state(gov, proposal_id)
    for log in gov.ProposalCreated.range(0, chain.blocks.height + 1):
        if int(log.event_arguments["proposalId"]) == proposal_id:
            return log
    raise Refused(f"no ProposalCreated event for proposal {proposal_id} on chain {chain.chain_id}")


def advance_past(timestamp: int) -> int:
    """Dev chain: mine a block just after `timestamp` (Anvil evm_increaseTime); returns seconds moved."""
    if chain.chain_id != DEV_CHAIN:
        raise Refused(f"--wait moves the clock of the dev chain; chain {chain.chain_id} keeps its own time")
    gap = int(timestamp) + 1 - chain.blocks.head.timestamp
    if gap > 0:  # plain RPC: works with the foundry provider and with `--network http://...` alike
        chain.provider.make_request("evm_increaseTime", [gap])
        chain.provider.make_request("evm_mine", [])
    return max(gap, 0)


# -- reverts by name ----------------------------------------------------------------------------
def _error_index(book: dict) -> dict[bytes, tuple[str, list]]:
    """4-byte selector -> (error name, inputs) over every suite contract Ape compiled."""
    out: dict[bytes, tuple[str, list]] = {}
    for name in book:
        try:
            ct = project.get_contract(name).contract_type
        except Exception:
            continue
        for err in ct.errors:
            out[keccak(text=err.selector)[:4]] = (err.name, list(err.inputs))
    return out


def decode_revert(err: Exception, book: dict | None = None) -> str:
    """`Name(arg=value, ...)` of a revert, however deep it was raised (raw data looked up against every
    suite contract's errors, since the governor's ABI does not know its targets' errors)."""
    abi = getattr(err, "abi", None)
    if abi is not None and getattr(err, "inputs", None) is not None:
        return f"{abi.name}({', '.join(f'{k}={_show(v)}' for k, v in err.inputs.items())})"
    raw = str(getattr(err, "revert_message", "") or err)
    hexdata = next((w for w in raw.replace("'", " ").replace('"', " ").split() if w.startswith("0x") and len(w) >= 10),
                   None)
    if hexdata:
        try:
            data = bytes.fromhex(hexdata[2:])
        except ValueError:
            data = b""
        book = book or load_book()
        found = _error_index(book).get(data[:4])
        if found:
            name, inputs = found
            try:
                values = abi_decode([i.canonical_type for i in inputs], data[4:])
            except Exception:
                return f"{name}(0x{data[4:].hex()})"
            if name == "ActionNotAllowed":
                return _not_allowed(book, *values)
            return f"{name}({', '.join(f'{i.name}={_show(v)}' for i, v in zip(inputs, values))})"
    return raw.splitlines()[0] if raw else type(err).__name__


def _not_allowed(book: dict, ptype: int, target: str, selector: bytes) -> str:
    """ActionNotAllowed by name: which type, which contract and function."""
    name = next((n for n, e in book.items() if e["address"].lower() == str(target).lower()), str(target))
    fn = "0x" + bytes(selector).hex()
    try:
        for m in project.get_contract(name).contract_type.methods:
            if keccak(text=m.selector)[:4] == bytes(selector):
                fn = m.name
    except Exception:
        pass
    return f"ActionNotAllowed: a {TYPE_NAMES.get(int(ptype), ptype)} proposal may not call {name}.{fn} (not on its " \
           "type's allow-list)"


def _show(v) -> str:
    return "0x" + v.hex() if isinstance(v, (bytes, bytearray)) else str(v)


def preflight(method, *args, sender) -> None:
    """Run the transaction as an `eth_call` first: a revert becomes one line naming the error (Ape's
    own estimate would print a call trace before it)."""
    from web3.exceptions import ContractCustomError, ContractLogicError as Web3LogicError

    data = method.encode_input(*args)
    try:
        chain.provider.web3.eth.call({"from": sender.address, "to": method.contract.address, "data": data})
    except (ContractCustomError, Web3LogicError) as e:
        raw = e.data if isinstance(getattr(e, "data", None), str) else str(e)
        raise Refused(f"{_what(method)} refused: {decode_revert(_Raw(raw))}; nothing sent") from None


class _Raw(Exception):
    def __init__(self, data: str):
        super().__init__(data)
        self.revert_message = data


def _what(method) -> str:
    return f"{method.contract.contract_type.name}.{method.abis[0].name}"


def send(method, *args, sender, what: str):
    """Send a contract method as a transaction after `preflight`; a revert is one line, nothing sent."""
    preflight(method, *args, sender=sender)
    try:
        return method(*args, sender=sender)
    except ContractLogicError as e:  # the state changed between the preflight and the send
        raise Refused(f"{what} refused: {decode_revert(e)}; nothing sent") from None


def emit(result: dict, as_json: bool, line: str) -> None:
    click.echo(json.dumps(result, indent=2, default=str) if as_json else line)
