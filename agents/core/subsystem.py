"""How a subsystem plugs into the base: one `Subsystem` declared in its package's `__init__.py`.

Each declares, in one place, its deploy hook, its `loyal devnet` scenario step and its CLI
commands, as "module:attribute" strings so nothing heavy (torch, transformers) is imported until
that piece is used. `ORDER` is the only list the base keeps: subsystem packages in dependency
order (a later deploy hook may use an earlier one's contracts).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

ORDER: tuple[str, ...] = ("core", "din", "ledger", "oml", "dao", "explorer")


@dataclass(frozen=True)
class Subsystem:
    name: str
    deploy: str | None = None  # "module:function(Deployer)"
    scenario: tuple[str, str] | None = None  # ("module:function(ScenarioContext) -> dict", step title)
    commands: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (command name, "module:attr")


def resolve(ref: str) -> Any:
    """The object a "module:attribute" reference names."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def subsystems() -> list[Subsystem]:
    return [importlib.import_module(f"agents.{name}").SUBSYSTEM for name in ORDER]
