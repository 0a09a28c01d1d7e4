"""A replay killed outright (SIGKILL, power loss) leaves its staged video under a hidden name
(``.NAME.<pid>.<random>.partial``); the next replay to the same path deletes it, and leaves alone the
staged file of a process still running. Real processes and a real replay, nothing mocked."""

from __future__ import annotations

import subprocess
import sys

from cli import sonomap
from runtime_model import dark_onnx

FRAMES = 2
TOKEN = "0a1b2c3d"  # 4 random bytes in hex, as the writer names them
WAIT_S = 60


def test_the_next_replay_deletes_a_killed_runs_staged_file_only(tmp_path):
    clip = tmp_path / "clip.mp4"
    sonomap("make-clip", "--out", clip, "--frames", FRAMES, "--size", "320x180", "--noise", 0)
    out = tmp_path / "out [1].mp4"  # glob characters in the name are taken literally
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(gone.stdout)  # that process has exited
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = tmp_path / f".{out.name}.{dead_pid}.{TOKEN}.partial"
        live = tmp_path / f".{out.name}.{running.pid}.{TOKEN}.partial"
        # another output's: not this run's business; and a name whose "pid" no process can have
        other = tmp_path / f".other.mp4.{dead_pid}.{TOKEN}.partial"
        no_pid = tmp_path / f".{out.name}.{'9' * 20}.{TOKEN}.partial"
        for staged in (dead, live, other, no_pid):
            staged.write_bytes(b"\x00" * 16)
        sonomap("replay", clip, "--model", dark_onnx(), "--out", out)
        assert not dead.exists()
        assert live.exists() and other.exists() and no_pid.exists()
        assert out.stat().st_size > 0
    finally:
        running.kill()
        running.wait(WAIT_S)
