"""`sonomap replay` stopped by SIGTERM (or Ctrl-C) stops at a frame boundary like `live`: the output is
finalised (its closing index written), the summary written, one line says so, and the exit status is
128 + the signal's number. A real looping, paced replay in a subprocess and real signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from child_process import reaped
from cli import sonomap
from runtime_model import dark_onnx

RUN_S = 2  # the replay runs this long after its first frame before the signal
EXIT_S = 60
POLL_S = 0.1
MP4_CLOSING_INDEX = b"mfra"  # fragmented mp4's closing index: written when the file is finalised


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sigterm") / "clip.mp4"
    sonomap("make-clip", "--out", out, "--frames", 30, "--size", "320x180")
    return out


def _replaying(clip: Path, out: Path, *more: str) -> subprocess.Popen:
    """A looping, paced replay of ``clip`` into ``out`` in its own process, returned once its signal
    handlers are in place: the output opens with the first frame, after them, staged under a hidden
    name until it is complete (edge_runtime.sinks.mp4)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_runtime.cli", "replay", str(clip), "--loop", "--realtime"]
        + ["--model", str(dark_onnx()), "--out", str(out), *more],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + EXIT_S
    while not any(out.parent.glob(f".{out.name}.*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(POLL_S)
    return proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_replay_cleanly(clip, tmp_path, sig):
    out, summary = tmp_path / "term.mp4", tmp_path / "term.json"
    proc = _replaying(clip, out, "--summary", str(summary))
    time.sleep(RUN_S)
    proc.send_signal(sig)
    with reaped(proc):
        stdout, stderr = proc.communicate(timeout=EXIT_S)
    assert proc.returncode == 128 + int(sig), stderr[-2000:]
    assert "Traceback" not in stderr
    frames = json.loads(summary.read_text())["frames"]
    assert frames > 0
    assert stderr.strip().splitlines()[-1] == (
        f"sonomap replay: stopped by {sig.name} after {frames} frame(s); the outputs are finalised"
    )
    assert out.read_bytes()[-256:].find(MP4_CLOSING_INDEX) >= 0  # finalised, not cut off
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(c.streams.video[0])) == frames
    assert f"wrote {out} (video)" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [out.name, summary.name]
    )  # no staged file left


def test_a_second_signal_while_stopping_gives_up_and_exits_with_its_own_status(clip, tmp_path):
    """SIGINT then SIGTERM delivered together (the process held stopped while both were sent): the
    first starts the clean stop, the second gives up waiting. The status is the second signal's,
    128 + SIGTERM, as a shell reports it; before, every second signal read as Ctrl-C's 130."""
    proc = _replaying(clip, tmp_path / "two.mp4")
    with reaped(proc):
        # pending together, a process's signals are handled lowest number first: SIGINT, then SIGTERM
        proc.send_signal(signal.SIGSTOP)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGCONT)
        _stdout, stderr = proc.communicate(timeout=EXIT_S)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "Traceback" not in stderr
    assert (
        stderr.strip()
        .splitlines()[-1]
        .startswith(
            "sonomap replay: stopped by a second SIGTERM while stopping; what it had already written is kept"
        )
    ), stderr[-2000:]
