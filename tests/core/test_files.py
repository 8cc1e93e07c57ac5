"""common.files: a write either lands whole or leaves the old file/directory, and leaves no temp behind."""
from __future__ import annotations

import json
import stat

import pytest

from common.files import atomic_dir, atomic_write, atomic_write_json


def _entries(d):
    return sorted(p.name for p in d.iterdir())


def test_atomic_write_replaces_whole_file_and_sets_mode(tmp_path):
    p = tmp_path / "sub" / "f.bin"
    atomic_write(p, b"old")
    atomic_write(p, "néw", mode=0o600)
    assert p.read_bytes() == "néw".encode()
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert _entries(p.parent) == ["f.bin"]


def test_atomic_write_json_round_trips_with_trailing_newline(tmp_path):
    p = atomic_write_json(tmp_path / "x.json", {"a": [1, 2]})
    assert p.read_text().endswith("}\n") and json.loads(p.read_text()) == {"a": [1, 2]}


def test_failed_write_keeps_old_file_and_no_temp(tmp_path):
    p = tmp_path / "f.json"
    atomic_write(p, b"old")
    with pytest.raises(TypeError):
        atomic_write_json(p, {"not json": object()})
    with pytest.raises(TypeError):
        atomic_write(p, 12345)  # bytes(12345) would be 12345 zero bytes
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        atomic_write(tmp_path / "d", b"new")  # the rename fails after the temp file is written
    assert p.read_bytes() == b"old"
    assert _entries(tmp_path) == ["d", "f.json"]
    assert _entries(tmp_path / "d") == []


def test_atomic_dir_creates_then_replaces_whole_directory(tmp_path):
    d = tmp_path / "cache" / "entry"
    with atomic_dir(d) as tmp:
        assert not d.exists() and tmp.parent == d.parent
        (tmp / "a").write_text("1")
    assert _entries(d) == ["a"]
    with atomic_dir(d) as tmp:
        (tmp / "b").write_text("2")
        assert _entries(d) == ["a"], "the old directory stays until the new one is complete"
    assert _entries(d) == ["b"]
    assert _entries(d.parent) == ["entry"]


def test_atomic_dir_failure_keeps_old_directory_and_no_temp(tmp_path):
    d = tmp_path / "entry"
    with atomic_dir(d) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(d) as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("killed mid-build")
    assert _entries(d) == ["a"]
    assert _entries(tmp_path) == ["entry"]
