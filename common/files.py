"""Atomic file writes: a reader (or a process restarted after SIGKILL) sees the old file or the new
one, never a torn one. Write to a temp file in the same directory, fsync, rename over the target."""
from __future__ import annotations

import json
import os
import tempfile
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
    raw = data.encode() if isinstance(data, str) else bytes(data)
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
