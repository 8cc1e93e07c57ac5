"""Compiled contracts (ABI + bytecode) as forge writes them to build/forge; never committed."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from eth_utils import function_signature_to_4byte_selector, keccak

from common.errors import ArtifactsMissing

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BUILD_DIR = REPO / "build" / "forge"


@dataclass(frozen=True)
class Artifact:
    name: str
    source: str  # e.g. contracts/core/Staking.sol
    abi: list[dict]
    bytecode: str  # creation code, 0x-prefixed
    storage: tuple = ()  # compiler storage layout entries (label, slot, type, ...)


def abi_type(inp: dict) -> str:
    """Canonical ABI type of one input, tuples spelled out: what selectors and eth_abi expect."""
    t = inp["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in inp["components"]) + ")" + t[len("tuple"):]
    return t


def _signature(item: dict) -> str:
    return f"{item['name']}({','.join(abi_type(i) for i in item.get('inputs', []))})"


class Artifacts:
    """Index of the suite's contracts (sources under contracts/) by contract name."""

    def __init__(self, build_dir: Path | str = DEFAULT_BUILD_DIR):
        self.build_dir = Path(build_dir)

    @cached_property
    def _by_name(self) -> dict[str, Artifact]:
        if not self.build_dir.is_dir():
            raise ArtifactsMissing(f"no contract build at {self.build_dir}: run `make build`")
        found: dict[str, Artifact] = {}
        for f in sorted(self.build_dir.glob("*.sol/*.json")):
            data = json.loads(f.read_text())
            target = data.get("metadata", {}).get("settings", {}).get("compilationTarget", {})
            for source, name in target.items():
                if not source.startswith("contracts/") or name != f.stem:
                    continue
                if name in found:
                    raise ArtifactsMissing(f"two suite contracts are named {name}: {found[name].source} and {source}")
                found[name] = Artifact(name, source, data["abi"], data["bytecode"]["object"],
                                       tuple((data.get("storageLayout") or {}).get("storage", ())))
        if not found:
            raise ArtifactsMissing(f"no suite contracts in {self.build_dir}: run `make build`")
        return found

    def get(self, name: str) -> Artifact:
        try:
            return self._by_name[name]
        except KeyError:
            raise ArtifactsMissing(f"no build artifact for contract {name} in {self.build_dir}: run `make build`") from None

    def storage_slot(self, name: str, label: str) -> int:
        """Slot of state variable `label` of contract `name`, from the compiler's storage layout."""
        for entry in self.get(name).storage:
            if entry["label"] == label:
                return int(entry["slot"])
        raise ArtifactsMissing(f"{name} has no state variable {label} in its storage layout: run `make build`")

    def names(self) -> list[str]:
        return sorted(self._by_name)

    @cached_property
    def errors(self) -> dict[bytes, dict]:
        """4-byte selector -> error ABI, over every suite contract (inherited OZ errors included)."""
        out: dict[bytes, dict] = {}
        for art in self._by_name.values():
            for item in art.abi:
                if item["type"] == "error":
                    out[function_signature_to_4byte_selector(_signature(item))] = item
        return out

    @cached_property
    def events(self) -> dict[bytes, list[tuple[str, dict]]]:
        """topic0 -> [(contract name, event ABI)], over every suite contract."""
        out: dict[bytes, list[tuple[str, dict]]] = {}
        for art in self._by_name.values():
            for item in art.abi:
                if item["type"] == "event" and not item.get("anonymous"):
                    out.setdefault(keccak(text=_signature(item)), []).append((art.name, item))
        return out
