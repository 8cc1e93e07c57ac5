"""Solidity enum member names, read from the declaring source the compiled ABI points at.

The ABI types an enum as `uint8` and names it only in `internalType` ("enum OTKIssuer.HaltReason");
the member names live in the Solidity source. `EnumNames` finds the declaring contract's source
through the forge build (its `compilationTarget`), so the names always match the contracts.
"""
from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path

from common.errors import ArtifactsMissing

from .artifacts import REPO, Artifacts

_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def enum_type(internal_type: str | None) -> str | None:
    """"enum OTKIssuer.HaltReason" (or "...[]") -> "OTKIssuer.HaltReason"; None if not an enum."""
    if not internal_type or not internal_type.startswith("enum "):
        return None
    return internal_type[len("enum "):].split("[", 1)[0]


class EnumNames:
    """`members("OTKIssuer.HaltReason") == ["None", "HardwareRevoked", ...]`, one source read per enum."""

    def __init__(self, artifacts: Artifacts, root: Path = REPO):
        self.artifacts = artifacts
        self.root = root
        self._members: dict[str, list[str]] = {}

    @cached_property
    def _sources(self) -> dict[str, str]:
        """Contract name -> source path (relative to the repo), over every contract in the build."""
        out: dict[str, str] = {}
        for f in sorted(self.artifacts.build_dir.glob("*.sol/*.json")):
            target = json.loads(f.read_text()).get("metadata", {}).get("settings", {}).get("compilationTarget", {})
            for source, name in target.items():
                out.setdefault(name, source)
        return out

    def members(self, qualified: str) -> list[str]:
        """Member names of enum `Contract.Enum`, in declaration order (index = ABI value)."""
        if qualified not in self._members:
            self._members[qualified] = self._read(qualified)
        return self._members[qualified]

    def name(self, qualified: str, value: int) -> str:
        """Member name of `value`; "<value>?" for a value the enum does not have."""
        names = self.members(qualified)
        return names[value] if 0 <= value < len(names) else f"{value}?"

    def _read(self, qualified: str) -> list[str]:
        contract, _, enum = qualified.rpartition(".")
        source = self._sources.get(contract)
        if source is None:
            raise ArtifactsMissing(f"enum {qualified}: no contract {contract} in the build {self.artifacts.build_dir}")
        text = _COMMENTS.sub("", (self.root / source).read_text())
        bodies = re.findall(rf"\benum\s+{re.escape(enum)}\s*\{{([^}}]*)\}}", text)
        found = {tuple(n.strip() for n in body.split(",") if n.strip()) for body in bodies}
        if len(found) != 1:
            raise ArtifactsMissing(f"enum {qualified}: {len(found)} declarations of {enum} in {source}")
        return list(found.pop())
