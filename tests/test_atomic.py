"""The shared atomic writer: the old file survives a failed write, and no temp file is left."""

from __future__ import annotations

import errno
import os
import signal
import stat
import tempfile
from pathlib import Path

import pytest

from edge_runtime.atomic import FILE_MODE, atomic_path, atomic_write_bytes, atomic_write_text
from edge_runtime.stop_signals import sigterm_as_interrupt


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


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_refuses_to_replace_a_device_or_pipe(tmp_path: Path, kind: str):
    """Run as root, the rename would replace /dev/null itself with a regular file."""
    if kind == "fifo":
        target = tmp_path / "pipe"
        os.mkfifo(target)
    else:
        target = Path("/dev/null")
    before = target.stat()
    with pytest.raises(OSError, match="device, pipe or socket") as caught:
        atomic_write_text(target, "x")
    assert caught.value.filename == str(target)
    after = target.stat()
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert not stat.S_ISREG(after.st_mode)


def test_a_failed_write_names_the_target_not_the_temp_file(tmp_path: Path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    with pytest.raises(OSError) as caught:
        with atomic_path(target) as tmp:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert caught.value.filename == str(target) and caught.value.errno == errno.ENOSPC
    with pytest.raises(OSError) as caught:
        with atomic_path(target):
            raise OSError(errno.ENOSPC, "No space left on device")  # what a failed write() raises
    assert caught.value.filename == str(target)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_a_folder_that_takes_no_new_file_names_the_target_not_the_temp_file():
    # procfs takes no new file, even from root: as a read-only file system or a folder without
    # write permission, the temp file is never made, and the error is about the target
    target = Path("/proc/sonomap-summary.json")
    with pytest.raises(OSError) as caught:
        atomic_write_bytes(target, b"{}")
    assert caught.value.filename == str(target), caught.value


def test_errors_about_other_files_pass_unchanged(tmp_path: Path):
    with pytest.raises(FileNotFoundError) as caught:
        with atomic_path(tmp_path / "out.json"):
            (tmp_path / "missing-input.yaml").read_text()
    assert caught.value.filename == str(tmp_path / "missing-input.yaml")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_that_comes_as_the_temp_file_is_made_leaves_no_temp(tmp_path: Path, monkeypatch, signum):
    """A real SIGTERM (taken as Ctrl-C, as the file-writing commands do) or Ctrl-C that arrives the
    moment the hidden temp file exists, before the writer knows its name: the write stops as it
    should, the old file stays, and no temp file is left behind (a nightly register-batch stopped
    by its timer left one)."""
    target = tmp_path / "input_stats.json"
    target.write_text("old")
    made = tempfile.mkstemp

    def made_then_stopped(*args, **kwargs):
        handle = made(*args, **kwargs)
        signal.raise_signal(signum)  # its handler runs at the next chance: before the name is kept
        return handle

    monkeypatch.setattr(tempfile, "mkstemp", made_then_stopped)
    # Ctrl-C as an interactive run takes it (a test worker process may ignore SIGINT)
    ctrl_c = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with sigterm_as_interrupt(), pytest.raises(KeyboardInterrupt):
            atomic_write_text(target, "new")
    finally:
        signal.signal(signal.SIGINT, ctrl_c)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input_stats.json"]
