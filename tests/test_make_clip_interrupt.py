"""`make-clip` stopped with Ctrl-C while it encodes: the earlier clip and its .json stay byte for byte
(a clip short of frames must not replace a whole one that the .json describes), no hidden temp file
is left, and the exit status is 130."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from cli import sonomap

TINY = ("--size", "64x36", "--noise", "0")
ENDLESS_FRAMES = 1_000_000  # far more than it encodes before the stop: the stop comes mid-way
STARTED_BYTES = 1  # the hidden file holds the first encoded fragment
WAIT_S = 120
POLL_S = 0.05
INTERRUPTED = 130


def _default_sigint() -> None:
    # a process started in the background inherits SIGINT ignored (nohup, CI): Ctrl-C must reach it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_mid_clip_keeps_the_earlier_clip_and_json(tmp_path):
    out = tmp_path / "c.mp4"
    info = out.with_suffix(".json")
    sonomap("make-clip", "--out", out, "--frames", 2, *TINY)
    good_clip, good_info = out.read_bytes(), info.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_runtime.cli", "make-clip", "--out", str(out)]
        + ["--frames", str(ENDLESS_FRAMES), *TINY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + WAIT_S
        while not any(p.stat().st_size >= STARTED_BYTES for p in tmp_path.glob(".c.mp4.*.partial")):
            assert proc.poll() is None and time.monotonic() < deadline, "make-clip never started writing"
            time.sleep(POLL_S)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=WAIT_S)
    finally:
        proc.kill()
    assert proc.returncode == INTERRUPTED, err
    assert out.read_bytes() == good_clip and info.read_bytes() == good_info
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "c.mp4"]
