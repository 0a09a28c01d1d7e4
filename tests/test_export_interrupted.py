"""`sonomap export onnx|torchscript` stopped part-way, and output paths refused before any work.

A real export runs in a subprocess and is stopped once its hidden staging folder exists: by SIGTERM
(what `timeout`, `systemctl stop` and `docker stop` send), which must unwind like Ctrl-C, and by
SIGKILL, whose folder only the next export to the same path can delete. Every time, the model
already at ``--out`` stays byte for byte.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from child_process import reaped
from cli import sonomap
from export_fixtures import shared_checkpoint

from edge_runtime.cli import main
from export.staging import STAGING_SUFFIX

STAGING_WAIT_S = 120  # the folder appears once the arguments and frames are read (seconds)
POLL_S = 0.05
EXIT_WAIT_S = 120


@pytest.fixture(scope="module")
def checkpoint():
    return str(shared_checkpoint())


def _args(checkpoint: str, out, busi_sample) -> list[str]:
    frames = ["--frames", str(busi_sample / "images"), "--parity-frames", "1", "--roi", "64x64"]
    return ["export", "onnx", "--checkpoint", checkpoint, "--out", str(out), *frames]


def _files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _staging(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(STAGING_SUFFIX))


def _stopped_export(args: list[str], folder, sig: signal.Signals) -> int:
    """Start ``sonomap ARGS``, send ``sig`` once a staging folder exists in ``folder``; its exit status."""
    before = set(_staging(folder))
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_runtime.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    with reaped(proc):
        deadline = time.monotonic() + STAGING_WAIT_S
        while not set(_staging(folder)) - before:
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no staging folder appeared"
            time.sleep(POLL_S)
        proc.send_signal(sig)
        proc.communicate(timeout=EXIT_WAIT_S)
    return proc.returncode


def test_sigterm_mid_export_deletes_the_staging_folder_and_keeps_the_model(checkpoint, tmp_path, busi_sample):
    out = tmp_path / "model.onnx"
    assert main(_args(checkpoint, out, busi_sample)) == 0
    good = _files(tmp_path)

    assert (
        _stopped_export(_args(checkpoint, out, busi_sample), tmp_path, signal.SIGTERM) == 128 + signal.SIGTERM
    )
    assert _staging(tmp_path) == []  # killed by the default action, the folder (tens of MB) stayed
    assert _files(tmp_path) == good


def test_the_next_export_deletes_what_a_killed_one_left(checkpoint, tmp_path, busi_sample):
    out = tmp_path / "model.onnx"
    assert main(_args(checkpoint, out, busi_sample)) == 0
    good = _files(tmp_path)
    assert _stopped_export(_args(checkpoint, out, busi_sample), tmp_path, signal.SIGKILL) == -signal.SIGKILL
    killed = _staging(tmp_path)
    assert len(killed) == 1 and _files(tmp_path) == good  # SIGKILL cannot be unwound: the folder stays
    # the folder of an export still running (this test process), and ones whose name holds no
    # process id: none, or digits no process id can be (os.kill would overflow on them)
    running = tmp_path / f".model.onnx.{os.getpid()}.abcd1234{STAGING_SUFFIX}"
    unknown = [
        tmp_path / f".model.onnx.{middle}{STAGING_SUFFIX}" for middle in ("abcd1234", "9" * 20 + ".ab")
    ]
    for folder in (running, *unknown):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"half")

    done = sonomap(*_args(checkpoint, out, busi_sample))
    assert f"removed {killed[0]}" in done.stdout
    assert _staging(tmp_path) == sorted([running.name, *(folder.name for folder in unknown)])
    assert (running / "model.onnx").read_bytes() == b"half"


@pytest.mark.parametrize(
    "name, extra, culprit",
    [
        ("model.txt", [], "--out {out}: the ONNX file name must end in .onnx"),
        ("model.onnx", ["--opset", "16"], "--opset 16"),
    ],
)
def test_onnx_name_and_opset_are_refused_before_any_folder_is_made(
    checkpoint, tmp_path, busi_sample, capsys, name, extra, culprit
):
    out = tmp_path / "new" / name
    rc = main([*_args(checkpoint, out, busi_sample), *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert culprit.format(out=out) in err and STAGING_SUFFIX not in err  # not the hidden folder's path
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target, name", [("onnx", "model.onnx"), ("torchscript", "model.ts")])
def test_out_below_a_file_is_named_as_out(checkpoint, tmp_path, capsys, target, name):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("kept")
    out = blocker / name
    rc = main(["export", target, "--checkpoint", checkpoint, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert f"--out {out}: {blocker} is a file, not a folder" in err
    assert blocker.read_text() == "kept" and [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
