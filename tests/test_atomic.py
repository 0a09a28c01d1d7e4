"""The shared atomic writer: the old file survives a failed write, and no temp file is left."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from edge_runtime.atomic import FILE_MODE, atomic_path, atomic_write_bytes, atomic_write_text


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="exporter crashed"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half-writ")
            raise RuntimeError("exporter crashed")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_successful_write_replaces_readable_file(tmp_path: Path):
    target = tmp_path / "sub" / "label.json"
    atomic_write_text(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == FILE_MODE
    atomic_write_bytes(target, b"new", durable=True)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["label.json"]
