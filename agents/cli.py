"""`loyal`: the command line for developers, participants, voters and auditors.

Each subsystem contributes one Typer sub-app, registered in SUBCOMMANDS below.
"""
from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="Loyal: community-owned AI on an EVM chain.", no_args_is_help=True, pretty_exceptions_enable=False)

# (module path, attribute, command name): one line per subsystem.
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("agents.core.cli", "devnet", "devnet"),
    ("agents.core.cli", "deploy", "deploy"),
    ("agents.core.events_cli", "events", "events"),
    ("agents.core.store_cli", "app", "store"),
    ("agents.ledger.cli", "app", "ledger"),
    ("agents.oml.cli", "app", "oml"),
    ("agents.dao.cli", "app", "dao"),
    ("agents.din.cli", "app", "din"),
    ("agents.oml.fingerprint_cli", "app", "fingerprint"),
]


def _register() -> None:
    for module, attr, name in SUBCOMMANDS:
        sub = getattr(importlib.import_module(module), attr)
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=name)
        else:
            app.command(name)(sub)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
