"""The suite's events as auditors read them: block time, LOYAL amounts, enum names, decoded proposals.

`Auditor` turns an `Event` (agents/core/events.py) into an `AuditedEvent`:
- only a log from an address-book address, decoded against the ABI of the contract the book names
  there, is the suite's (anything else is foreign and dropped);
- the block time (ISO 8601 UTC), each block's timestamp fetched once;
- token amounts in LOYAL: which arguments are LoyalToken amounts (wei) is declared once, in
  `TOKEN_AMOUNTS`, per contract and event (or governance-callable function);
- enum values by name: an argument whose ABI `internalType` is `enum C.E` (or which `ENUM_ARGS`
  declares to carry one) is named from the declaring Solidity source (enums.py);
- `ProposalCreated` calldatas decoded against the suite's ABIs as `Contract.function(arg=value, ...)`.

`Where` filters on argument values (`--where taskId=3`). JSON output never loses precision in a
53-bit reader (jq, JavaScript): integers beyond 2**53 - 1 are written as decimal strings.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector, is_hex_address, to_checksum_address

from common.errors import ConfigError, DeploymentMissing
from common.units import format_amount

from .artifacts import abi_type
from .chain import Chain, Event
from .enums import EnumNames, enum_type
from .views import named

MAX_SAFE_INT = 2**53 - 1  # largest integer a double (jq, JavaScript) holds exactly

# Which arguments are LoyalToken amounts in wei, per address-book contract and event (or function a
# proposal may call). A dotted name reaches into a struct argument. Credits (GasCredits), OTK units
# and compute budgets are not tokens and are not listed. tests/core/test_audit.py checks each entry
# names a real argument.
TOKEN_AMOUNTS: dict[str, dict[str, tuple[str, ...]]] = {
    "LoyalToken": {"Transfer": ("value",), "Approval": ("value",)},
    "Staking": {
        "Staked": ("amount", "activeStake"),
        "UnstakeRequested": ("amount", "unbonding"),
        "Withdrawn": ("amount",),
        "Slashed": ("amount",),
        "SlashedFundsPaid": ("amount",),
        "StakeLocked": ("amount", "lockedTotal"),
        "StakeUnlocked": ("amount", "lockedTotal"),
    },
    "DinTasks": {
        "TaskCreated": ("deposit", "params.reward", "params.evaluatorFee", "params.participantBond",
                        "params.minEvaluatorStake", "params.slashAmount"),
        "Paid": ("amount", "paidOut"),
        "BondReturned": ("amount",),
        "DepositReclaimed": ("amount",),
    },
    "DinRounds": {"EvaluatorSlashed": ("amount",), "SlashShareClaimed": ("amount",)},
    "DinScoring": {"RewardClaimed": ("amount",), "FeeClaimed": ("amount",), "OwnerRefunded": ("amount",)},
    "TrainingLedger": {
        "RewardsFunded": ("amount", "pool"),
        "RewardPerOpSet": ("amount",),
        "TrainingRewardsClaimed": ("amount",),
        "RewardClaimSubmitted": ("amount", "bond"),
        "RewardClaimRejected": ("slashed",),
        "QualityPolicySet": ("minEvaluatorStake",),
    },
    "ModelRegistry": {"ModelRegistered": ("feePerQuery", "stakeRequired")},
    "HostAgreements": {"StakeReleased": ("amount",)},
    "UsageLedger": {"PermissionRedeemed": ("fee",), "UsagePosted": ("fee",)},
    "Claims": {
        "ClaimConfirmed": ("slashed", "proverReward", "communityShare", "verifierReward"),
        "ClaimRejected": ("bondToHost", "verifierReward"),
        "VerifierSettled": ("reward", "penalty"),
        "ClaimOverturned": ("slashed",),
    },
    "ClaimAppeals": {"AppealFiled": ("bond",), "VerifierPenalised": ("amount",)},
    "LineageClaims": {"LineageConfirmed": ("slashed", "proverReward", "communityShare"),
                      "LineageRejected": ("bondToHost",)},
    "DaoTreasury": {"BountyPaid": ("amount",), "payBounty": ("amount",), "SafetyModuleAwarded": ("amount",),
                    "awardModule": ("amount",)},
    "GasCredits": {"CreditsBought": ("paid", "price"), "GasTaxPaid": ("released", "tax"), "CreditPriceSet": ("price",),
                   "UpkeepPaid": ("amount",), "setCreditPrice": ("price",), "payUpkeep": ("amount",),
                   "buy": ("maxPrice",)},
}

# Arguments the ABI types as a plain uint8 although they carry an enum (OZ Governor's `support`).
ENUM_ARGS: dict[str, dict[str, dict[str, str]]] = {
    "DaoGovernor": {
        "VoteCast": {"support": "GovernorCountingSimple.VoteType"},
        "VoteCastWithParams": {"support": "GovernorCountingSimple.VoteType"},
    },
}

_MISSING = object()


def json_safe(v: Any) -> Any:
    """Plain JSON for 53-bit readers: big integers as decimal strings, bytes as 0x-hex."""
    if isinstance(v, bool) or v is None or isinstance(v, float):
        return v
    if isinstance(v, int):
        return str(v) if abs(v) > MAX_SAFE_INT else v
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    if isinstance(v, Mapping):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v


def iso_utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _lookup(args: Mapping[str, Any], path: str) -> Any:
    v: Any = args
    for part in path.split("."):
        if not isinstance(v, Mapping) or part not in v:
            return _MISSING
        v = v[part]
    return v


@dataclass(frozen=True)
class Decoded:
    """Named, annotated arguments of one event or function call, rendered the same way for both."""
    inputs: tuple[dict, ...]  # ABI inputs, declaration order
    args: dict[str, Any]  # by name; structs as Records (views.py)
    amounts: dict[str, int] = field(default_factory=dict)  # dotted arg name -> LoyalToken wei
    enums: dict[str, str] = field(default_factory=dict)  # dotted arg name -> member name
    shown: dict[str, str] = field(default_factory=dict)  # dotted arg name -> text shown instead (calls)

    def text(self) -> str:
        return ", ".join(f"{i['name']}={self._show(i, self.args[i['name']], i['name'])}" for i in self.inputs)

    def _show(self, abi: dict, v: Any, path: str) -> str:
        if path in self.shown:
            return self.shown[path]
        if path in self.enums:
            return self.enums[path]
        t = abi["type"]
        if t.endswith("]"):
            item = {**abi, "type": t[: t.rindex("[")]}
            return "[" + ", ".join(self._show(item, x, path) for x in v) + "]"
        if t == "tuple":
            members = (f"{c['name']}={self._show(c, v[c['name']], path + '.' + c['name'])}" for c in abi["components"])
            return "(" + ", ".join(members) + ")"
        if path in self.amounts:
            return format_amount(v)
        if isinstance(v, (bytes, bytearray)):
            return "0x" + bytes(v).hex()
        if isinstance(v, bool):
            return "true" if v else "false"
        if t == "string":
            return json.dumps(v, ensure_ascii=False)
        return str(v)

    def to_json(self) -> dict:
        out: dict[str, Any] = {"args": json_safe(self.args)}
        if self.amounts:
            out["LOYAL"] = {k: format_amount(v, "") for k, v in self.amounts.items()}
        if self.enums:
            out["enum"] = dict(self.enums)
        return out


@dataclass(frozen=True)
class Call:
    """One action of a proposal: calldata sent to `target`, decoded if a suite ABI knows it."""
    target: str
    calldata: bytes
    contract: str | None = None  # address-book name at `target`
    function: str | None = None
    decoded: Decoded | None = None

    def text(self) -> str:
        if self.decoded is None:
            where = self.contract or self.target
            return f"{where}.<undecoded>(0x{self.calldata.hex()})"
        return f"{self.contract}.{self.function}({self.decoded.text()})"

    def to_json(self) -> dict:
        out: dict[str, Any] = {"target": self.target, "contract": self.contract, "function": self.function,
                               "text": self.text()}
        if self.decoded is None:
            out["calldata"] = "0x" + self.calldata.hex()
        else:
            out.update(self.decoded.to_json())
        return out


@dataclass(frozen=True)
class AuditedEvent:
    event: Event
    timestamp: int  # block time, seconds since the epoch
    decoded: Decoded
    calls: tuple[Call, ...] = ()  # ProposalCreated: its actions

    @property
    def time(self) -> str:
        return iso_utc(self.timestamp)

    def text(self) -> str:
        ev = self.event
        return f"#{ev.block}:{ev.log_index} {self.time} {ev.contract}.{ev.name}({self.decoded.text()})"

    def to_json(self) -> dict:
        ev = self.event
        out = {"block": ev.block, "time": self.time, "timestamp": self.timestamp, "log_index": ev.log_index,
               "tx": ev.tx, "contract": ev.contract, "address": ev.address, "event": ev.name}
        out.update(self.decoded.to_json())
        if self.calls:
            out["calls"] = [c.to_json() for c in self.calls]
        return out


@dataclass(frozen=True)
class Condition:
    """`--where name=value`: the event has argument `name` (dotted into structs) equal to `value`.

    Integers compare as integers (decimal or 0x-hex), addresses and bytes case-insensitively, enums
    by member name or value, booleans as true/false; a list argument matches if any element does.
    """
    name: str
    value: str

    @classmethod
    def parse(cls, text: str) -> "Condition":
        name, sep, value = text.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"--where {text!r} is not name=value (e.g. --where taskId=3)")
        return cls(name.strip(), value.strip())

    def matches(self, d: Decoded) -> bool:
        v = _lookup(d.args, self.name)
        if v is _MISSING:
            return False
        if self.name in d.enums and not _is_int(self.value):
            return d.enums[self.name].lower() == self.value.lower()
        return _equal(v, self.value)


def _is_int(text: str) -> bool:
    try:
        int(text, 0)
        return True
    except ValueError:
        return False


def _equal(v: Any, text: str) -> bool:
    if isinstance(v, (list, tuple)):
        return any(_equal(x, text) for x in v)
    if isinstance(v, bool):
        return text.lower() in (("true", "1") if v else ("false", "0"))
    if isinstance(v, int):
        return _is_int(text) and int(text, 0) == v
    if isinstance(v, (bytes, bytearray)):
        t = text.lower()
        return ("0x" + bytes(v).hex()) == (t if t.startswith("0x") else "0x" + t)
    if isinstance(v, str) and is_hex_address(v):
        return v.lower() == text.lower()
    return v == text


class Auditor:
    """Decodes, annotates and filters the suite's events of one chain's address book."""

    def __init__(self, chain: Chain, where: Iterable[Condition] = ()):
        self.chain = chain
        self.where = tuple(where)
        self.enums = EnumNames(chain.artifacts)
        self._times: dict[int, int] = {}
        self._selectors: dict[str, dict[bytes, dict]] = {}
        self._names = {e["address"].lower(): n for n, e in chain.book.contracts.items()}

    # -- the address book --------------------------------------------------------------------
    def check_book(self) -> None:
        """Refuse a chain whose address book is missing, empty, or names addresses without code."""
        book = self.chain.book
        if not book.contracts:
            raise DeploymentMissing(f"no address book for chain {self.chain.chain_id} at {book.path} (or it lists no "
                                    f"contracts): run `loyal deploy`, or pass --book PATH")
        for name, entry in sorted(book.contracts.items()):
            if not self.chain.w3.eth.get_code(to_checksum_address(entry["address"])):
                raise DeploymentMissing(f"address book {book.path} puts {name} at {entry['address']}, where chain "
                                        f"{self.chain.chain_id} has no code: run `loyal deploy`, or pass --book PATH")

    def check_where(self, contracts: Iterable[str] | None, names: Iterable[str] | None) -> None:
        """Refuse a --where argument no selected event has (a typo would silently print nothing)."""
        selected = list(contracts or self.chain.book.contracts)
        if not self.where or any(c not in self.chain.book.contracts for c in selected):
            return  # an unknown --contract is fetch_events' error to report
        wanted = set(names) if names else None
        have: set[str] = set()
        for contract in selected:
            for item in self.chain.artifacts.get(contract).abi:
                if item["type"] == "event" and (wanted is None or item["name"] in wanted):
                    have |= set(_paths(item["inputs"]))
        for c in self.where:
            if c.name not in have:
                raise ConfigError(f"--where {c.name}: no selected event has an argument {c.name}")

    # -- events ------------------------------------------------------------------------------
    def audit(self, ev: Event) -> AuditedEvent | None:
        """The annotated event, or None if it is not the suite's or fails a --where condition."""
        contract = self._names.get(ev.address.lower())
        if contract is None or contract != ev.contract:
            return None
        abi = self._event_abi(contract, ev)
        if abi is None:
            return None
        decoded = self._decode(contract, ev.name, abi["inputs"], dict(ev.args))
        if not all(c.matches(decoded) for c in self.where):
            return None
        calls: tuple[Call, ...] = ()
        if contract == "DaoGovernor" and ev.name == "ProposalCreated":
            calls = tuple(self.decode_call(t, bytes(d)) for t, d in zip(ev.args["targets"], ev.args["calldatas"]))
            decoded = replace(decoded, shown={"calldatas": "[" + ", ".join(c.text() for c in calls) + "]"})
        return AuditedEvent(ev, self.block_time(ev.block), decoded, calls)

    def block_time(self, block: int) -> int:
        if block not in self._times:
            self._times[block] = int(self.chain.w3.eth.get_block(block)["timestamp"])
        return self._times[block]

    def forget_times(self) -> None:
        """Drop the cached block times (a long-running reader that has written them elsewhere)."""
        self._times.clear()

    def _event_abi(self, contract: str, ev: Event) -> dict | None:
        """The event's entry in `contract`'s own ABI (None: it was decoded against another contract's)."""
        for item in self.chain.artifacts.get(contract).abi:
            if item["type"] == "event" and item["name"] == ev.name \
                    and {i["name"] for i in item["inputs"]} == set(ev.args):
                return item
        return None

    # -- proposal calldata -------------------------------------------------------------------
    def decode_call(self, target: str, calldata: bytes) -> Call:
        target = to_checksum_address(target)
        contract = self._names.get(target.lower())
        if contract is None or len(calldata) < 4:
            return Call(target, calldata, contract)
        fn = self._functions(contract).get(calldata[:4])
        if fn is None:
            return Call(target, calldata, contract)
        try:
            values = abi_decode([abi_type(i) for i in fn["inputs"]], calldata[4:])
        except DecodingError:
            return Call(target, calldata, contract)
        args = {i["name"]: named(i, v) for i, v in zip(fn["inputs"], values)}
        return Call(target, calldata, contract, fn["name"], self._decode(contract, fn["name"], fn["inputs"], args))

    def _functions(self, contract: str) -> dict[bytes, dict]:
        """4-byte selector -> function ABI of one suite contract."""
        if contract not in self._selectors:
            self._selectors[contract] = {
                function_signature_to_4byte_selector(f"{i['name']}({','.join(abi_type(x) for x in i['inputs'])})"): i
                for i in self.chain.artifacts.get(contract).abi if i["type"] == "function"}
        return self._selectors[contract]

    # -- annotation --------------------------------------------------------------------------
    def _decode(self, contract: str, member: str, inputs: list[dict], args: dict[str, Any]) -> Decoded:
        args = {i["name"]: named(i, args[i["name"]]) for i in inputs}
        amounts = {p: v for p in TOKEN_AMOUNTS.get(contract, {}).get(member, ())
                   if isinstance(v := _lookup(args, p), int)}
        declared = ENUM_ARGS.get(contract, {}).get(member, {})
        enums: dict[str, str] = {}
        for path, abi in _leaves(inputs):
            qualified = declared.get(path) or enum_type(abi.get("internalType"))
            v = _lookup(args, path)
            if qualified is None or v is _MISSING:
                continue
            if isinstance(v, list):
                enums[path] = "[" + ", ".join(self.enums.name(qualified, x) for x in v) + "]"
            else:
                enums[path] = self.enums.name(qualified, v)
        return Decoded(tuple(inputs), args, amounts, enums)


def _leaves(inputs: list[dict], prefix: str = "") -> Iterable[tuple[str, dict]]:
    """(dotted name, ABI entry) of every non-struct argument, struct members included."""
    for i in inputs:
        path = prefix + i["name"]
        if i["type"] == "tuple":
            yield from _leaves(i["components"], path + ".")
        else:
            yield path, i


def _paths(inputs: list[dict], prefix: str = "") -> Iterable[str]:
    for i in inputs:
        yield prefix + i["name"]
        if i["type"] == "tuple":
            yield from _paths(i["components"], prefix + i["name"] + ".")
