"""`loyal`: the command line for developers, operators, participants, voters and auditors.

Every subsystem declares its commands in its `SUBSYSTEM` (agents/<name>/__init__.py); they are
registered here in the base's dependency order, lazily: `loyal fingerprint ...` imports the fingerprint
commands only (not web3, not every other subsystem), so a command starts as fast as its own imports
allow; `loyal --help` and `agents.cli.app` register them all.

The CLI contract, the same for every command (tests/core/test_cli_contract.py enforces it): a
problem the user can fix is exactly one line on stderr, `error: <what is wrong and the fix>`, with
exit code 1 — no traceback, no usage box. Exit code 2 only for an unknown option or command.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import click
import typer

from agents.core.subsystem import resolve, subsystems
from common.config import reset as reset_config
from common.config import use_config_file
from common.errors import LoyalError

_app = typer.Typer(help="Loyal: community-owned AI on an EVM chain.", no_args_is_help=True,
                   pretty_exceptions_enable=False, rich_markup_mode=None, add_completion=False)
_registered: set[str] = set()


@_app.callback()
def _root(config: Optional[Path] = typer.Option(None, "--config", help="loyal.toml to read settings from "
                                                 "[env LOYAL_CONFIG; default $LOYAL_HOME/loyal.toml]")):
    use_config_file(config)


def _register(only: str | None = None) -> None:
    """Register the subsystems' commands (`only`: just the one of that name, when there is one)."""
    commands = [(name, ref) for sub in subsystems() for name, ref in sub.commands]
    if only is not None and any(name == only for name, _ in commands):
        commands = [(name, ref) for name, ref in commands if name == only]
    for name, ref in commands:
        if name in _registered:
            continue
        target = resolve(ref)
        if isinstance(target, typer.Typer):
            _app.add_typer(target, name=name)
        else:
            _app.command(name)(target)
        _registered.add(name)


def _command_of(args: list[str]) -> str | None:
    """The top-level command `args` run (the first word that is not a root option or its value)."""
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--config":
            i += 2
            continue
        if a.startswith("-"):
            return None  # --help, --config=X...: the whole tree
        return a
    return None


def __getattr__(name: str):
    if name == "app":  # the full command tree (docs, tests walking it)
        _register()
        return _app
    raise AttributeError(name)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    """Run `loyal` with `argv`; returns the exit code (the console script exits with it)."""
    args = sys.argv[1:] if argv is None else list(argv)
    _register(_command_of(args))
    try:
        rv = _app(args=args, prog_name="loyal", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except LoyalError as e:
        print(f"error: {_one_line(e)}", file=sys.stderr, flush=True)
        return 1
    except (click.NoSuchOption, click.BadOptionUsage) as e:
        print(f"error: {_one_line(e.format_message())} (see `{_cmd_path(e)} --help`)", file=sys.stderr, flush=True)
        return 2
    except click.UsageError as e:
        code = 2 if "No such command" in e.format_message() else 1
        print(f"error: {_one_line(e.format_message())} (see `{_cmd_path(e)} --help`)", file=sys.stderr, flush=True)
        return code
    except click.Abort:
        print("error: aborted", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # e.g. `loyal events | head`: the reader went away; not an error of ours
        sys.stderr.close()
        return 0
    except Exception as e:  # a bug, not a user error: still one line, the traceback on request
        if os.environ.get("LOYAL_DEBUG"):
            raise
        print(f"error: internal error {type(e).__name__}: {_one_line(e)} (LOYAL_DEBUG=1 shows the traceback; "
              "please report it)", file=sys.stderr, flush=True)
        return 1
    finally:
        reset_config()  # a process may run main() again (tests): nothing carries over


def _cmd_path(e: click.ClickException) -> str:
    ctx = getattr(e, "ctx", None)
    return ctx.command_path if ctx is not None else "loyal"


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
