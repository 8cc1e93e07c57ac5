"""Atomic file writes: a reader (or a process restarted after SIGKILL) sees the old file or the new
one, never a torn one. Write to a temp file in the same directory, fsync, rename over the target.

`atomic_dir` does the same for a directory built by several writes (a model cache, a set of copies).
Every temp-then-rename write in `agents/`, `ml/` and `bench/` goes through this module."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, mode: int | None = None,
                 durable: bool = True) -> Path:
    """Replace `path` with `data` atomically (parent directories are created).

    `durable` fsyncs the file before the rename (what a crash-safe cursor needs); `mode` sets
    permissions (e.g. 0o600 for a key file) before the file becomes visible.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        raw = data.encode()
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    else:  # bytes(n) would silently write n zero bytes
        raise TypeError(f"atomic_write takes bytes or str, not {type(data).__name__}")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2, **kw) -> Path:
    """`atomic_write` of `obj` as JSON (a trailing newline when indented)."""
    text = json.dumps(obj, indent=indent)
    return atomic_write(path, text + ("\n" if indent is not None else ""), **kw)


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a directory in a fresh temp sibling of `path` (yielded) and move it to `path` when the
    block ends without error; on error the temp directory is removed and `path` is left as it was.

    A previous `path` is renamed aside and removed only after the new one is in place, so `path` is
    never a half-written directory (a reader may briefly find no directory, never a torn one).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{secrets.token_hex(4)}.tmp")
    tmp.mkdir()
    try:
        yield tmp
        if p.exists():
            old = p.with_name(f".{p.name}.{secrets.token_hex(4)}.old")
            os.replace(p, old)
            try:
                os.replace(tmp, p)
            except BaseException:
                os.replace(old, p)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, p)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
