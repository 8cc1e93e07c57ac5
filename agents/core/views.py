"""Contract view results by name, never by position.

`read(chain, fn)` is `chain.call(fn)` with the ABI's names attached: a struct, or a view with
several (named) outputs, comes back as a `Record` (`run.issued`, `votes.forVotes`); structs nested in
structs or arrays are Records too. A Record has no positions, so a reordered struct cannot silently
shift a value into the wrong variable.

`record_as(cls, record, **extra)` builds a typed Python view (a dataclass or NamedTuple) from a
Record: field `op_count` takes member `opCount` (or the member named in the field's metadata
`{"abi": ...}`); IntEnum fields are converted; `extra` supplies fields the struct lacks (e.g. the id
it was read by). Every field must be found and every member used, so the Python view and the
Solidity struct cannot drift apart unnoticed.
"""
from __future__ import annotations

import dataclasses
import re
import typing
from enum import Enum
from typing import Any, Iterator, Mapping, TypeVar

from eth_utils import to_checksum_address

from .chain import Chain

T = TypeVar("T")


class Record(Mapping[str, Any]):
    """A struct (or a view's outputs) by member name: `r.opCount` or `r["opCount"]`."""

    __slots__ = ("_members",)

    def __init__(self, members: Mapping[str, Any]):
        object.__setattr__(self, "_members", dict(members))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._members[name]
        except KeyError:
            raise AttributeError(f"record has no member {name!r} (members: {', '.join(self._members)})") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Record is read-only")

    def __getitem__(self, name: str) -> Any:
        if not isinstance(name, str):
            raise TypeError(f"a Record is read by member name, not by position ({name!r})")
        return self._members[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __repr__(self) -> str:
        return "Record(" + ", ".join(f"{k}={v!r}" for k, v in self._members.items()) + ")"

    def snake(self) -> dict[str, Any]:
        """The members as a dict with snake_case keys (`opCount` -> `op_count`)."""
        return {snake_case(k): v for k, v in self._members.items()}


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def named(abi: Mapping[str, Any], value: Any) -> Any:
    """One decoded ABI value with every struct in it as a Record, addresses checksummed, bytes as `bytes`."""
    t = abi["type"]
    if t.endswith("]"):
        item = {**abi, "type": t[: t.rindex("[")]}
        return [named(item, v) for v in value]
    if t == "tuple":
        comps = abi["components"]
        values = [value[c["name"]] for c in comps] if isinstance(value, Mapping) else list(value)
        return Record({c["name"]: named(c, v) for c, v in zip(comps, values)})
    if t == "address":
        return to_checksum_address(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return value


def read(chain: Chain, fn, *, sender: str | None = None, block: int | str = "latest") -> Any:
    """Call view `fn` (a bound contract function); a struct or several outputs come back as a Record."""
    outputs = fn.abi["outputs"]
    value = chain.call(fn, sender=sender, block=block)
    if len(outputs) == 1:
        return named(outputs[0], value)
    if not all(o["name"] for o in outputs):
        raise TypeError(f"{fn.abi['name']} has unnamed outputs: name them in the contract to read them by name")
    return Record({o["name"]: named(o, v) for o, v in zip(outputs, value)})


def record_as(cls: type[T], record: Mapping[str, Any], **extra: Any) -> T:
    """`cls` (a dataclass or NamedTuple) from a Record; see the module docstring for the rules."""
    hints = typing.get_type_hints(cls)
    if dataclasses.is_dataclass(cls):
        fields = [(f.name, f.metadata.get("abi")) for f in dataclasses.fields(cls)]
    else:
        fields = [(name, None) for name in cls._fields]  # type: ignore[attr-defined]
    kwargs, used = dict(extra), set()
    for name, alias in fields:
        if name in extra:
            continue
        member = alias or camel_case(name)
        if member not in record:
            raise TypeError(f"{cls.__name__}.{name}: no member {member} in the record ({', '.join(record)})")
        value, kind = record[member], hints.get(name)
        if isinstance(kind, type) and issubclass(kind, Enum):
            value = kind(value)
        kwargs[name] = value
        used.add(member)
    unused = [m for m in record if m not in used]
    if unused:
        raise TypeError(f"{cls.__name__} has no field for member(s) {', '.join(unused)} of the record")
    return cls(**kwargs)
