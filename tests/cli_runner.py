"""Run `loyal` in-process exactly as the console script does (`agents.cli.main`), capturing output.

Same result shape as click's CliRunner (`exit_code`, `stdout`, `stderr`, `output`, `stdout_bytes`)
but through `main`, so the CLI contract (one line on stderr, exit codes) is what tests see.
"""
from __future__ import annotations

from dataclasses import dataclass

from click.testing import CliRunner


@dataclass
class Result:
    exit_code: int
    stdout_bytes: bytes
    stderr_bytes: bytes

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode(errors="replace")

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke(args: list[str], input: str | bytes | None = None, env: dict | None = None) -> Result:
    from agents.cli import main

    runner = CliRunner()
    import sys

    with runner.isolation(input=input, env=env) as (out, err, _):
        code = main([str(a) for a in args])
        sys.stdout.flush()
        sys.stderr.flush()
    return Result(code, out.getvalue(), err.getvalue())
