"""Sinks: crash-safe fragmented mp4, the window under a real Xvfb server, no-display errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import av
import numpy as np
import pytest
from runtime_model import dark_onnx

from edge_runtime.config import build_config
from edge_runtime.errors import SonomapError
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.sinks.mp4 import Mp4Sink

FPS = 30
MAX_LOSS_S = 2.0


def test_fragmented_mp4_survives_a_crash(tmp_path):
    """Kill the writer with SIGKILL (no close, no trailer): at most ~1 s of frames is lost."""
    out = tmp_path / "crash.mp4"
    code = textwrap.dedent(f"""
        import os, signal, time
        import numpy as np
        from edge_runtime.sinks.mp4 import Mp4Sink
        sink = Mp4Sink({str(out)!r}, fps={FPS})
        for i in range(100):
            sink.write(np.full((120, 160, 3), i * 2 % 255, np.uint8))
        while sink.frames < 100:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    with av.open(str(out)) as c:
        frames = sum(1 for _ in c.decode(c.streams.video[0]))
    assert 100 - frames <= MAX_LOSS_S * FPS, f"only {frames} of 100 frames readable after a crash"
    assert frames >= 60


def test_an_odd_sized_frame_is_recorded_whole_with_a_black_edge_added(tmp_path):
    """yuv420p needs even sizes: the recorder pads a 161x121 frame to 162x122 instead of cutting
    the image's last row and column off."""
    frame = np.full((121, 161, 3), 60, np.uint8)
    frame[-1, :] = frame[:, -1] = 250  # the image's last row and column, bright
    sink = Mp4Sink(str(tmp_path / "odd.mp4"), fps=FPS)
    for _ in range(3):
        sink.write(frame)
    sink.close()
    with av.open(str(tmp_path / "odd.mp4")) as c:
        decoded = next(c.decode(c.streams.video[0])).to_ndarray(format="gray")
    assert decoded.shape == (122, 162)
    assert decoded[120, 8:150].mean() > 200 and decoded[8:110, 160].mean() > 200  # kept, not cut
    assert decoded[121, 8:150].mean() < 40 and decoded[8:110, 161].mean() < 40  # the added edge


def test_window_sink_under_xvfb(xvfb_display, tmp_path):
    env = dict(os.environ, DISPLAY=xvfb_display)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_runtime.cli",
            "live",
            "--source",
            "synthetic",
            "--model",
            str(dark_onnx()),
            "--width",
            "640",
            "--height",
            "360",
            "--duration",
            "2",
            "--fullscreen",
            "--summary",
            str(tmp_path / "s.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    import json

    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["frames"] >= 10 and summary["latency_ms"]["sinks"]["n"] == summary["frames"]


def test_window_without_display_is_a_clean_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_runtime.cli",
            "live",
            "--source",
            "synthetic",
            "--model",
            str(dark_onnx()),
            "--width",
            "320",
            "--height",
            "180",
            "--duration",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 2 and "--headless" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("block", [True, False])
def test_full_disk_stops_the_recorder_without_raising_into_the_display(block):
    """/dev/full fails every write with ENOSPC, like a recordings disk that filled up."""
    import numpy as np

    from edge_runtime.errors import SonomapError
    from edge_runtime.sinks.mp4 import Mp4Sink

    sink = Mp4Sink("/dev/full", fps=FPS, block=block)
    frame = np.zeros((64, 64, 3), np.uint8)
    for _ in range(40):
        try:
            sink.write(frame)
        except SonomapError:
            break  # the pipeline counts this as a sink error and keeps displaying
    sink.close()
    assert sink.error is not None


@pytest.mark.timeout(60)
def test_close_leaves_a_recorder_stuck_on_a_hung_disk_behind(monkeypatch):
    """A recorder whose writes hang, as on a hung disk (it waits on an event: an mp4 recorder opening
    a FIFO blocked the whole test process here, timeouts included). A live recorder drops what its queue cannot hold, and
    close() gives up after CLOSE_TIMEOUT_S instead of waiting for room in the queue for ever. When
    the disk comes back, the writer writes what was queued and finalises."""
    import threading
    import time

    from edge_runtime.sinks import threaded

    class HungDisk(threaded.ThreadedWriter):
        def __init__(self):
            self.stuck, self.disk_back, self.finished = (
                threading.Event(),
                threading.Event(),
                threading.Event(),
            )
            self.written: list[int] = []
            super().__init__("hung", block=False)

        def _write_now(self, n: int) -> None:
            self.stuck.set()
            self.disk_back.wait()
            self.written.append(n)

        def _finish(self) -> None:
            self.finished.set()

    close_timeout_s = 0.5
    monkeypatch.setattr(threaded, "CLOSE_TIMEOUT_S", close_timeout_s)
    sink = HungDisk()
    sink.submit(0)
    assert sink.stuck.wait(timeout=30)  # the writer hangs on its first item
    extra = 4
    for n in range(1, 1 + threaded.QUEUE_FRAMES + extra):
        sink.submit(n)
    assert sink.dropped == extra  # the queue is full
    started = time.monotonic()
    sink.close()
    assert time.monotonic() - started < 10 * close_timeout_s  # gave up: waiting would never end
    assert not sink.finished.is_set()
    sink.disk_back.set()
    assert sink.finished.wait(timeout=30), "the writer never finalised once the disk came back"
    assert sink.written == list(range(1 + threaded.QUEUE_FRAMES))  # what was queued, in order


def test_an_output_that_cannot_open_stops_the_capture_thread_before_the_error(monkeypatch):
    """The window cannot open without a display: the run ends with that error, and the capture
    thread reading the source has ended by then, so the process never exits with it inside native
    code (an abort at exit, 'terminate called without an active exception', once under load)."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    config = build_config(
        {
            "source": {"input": "synthetic", "fps": 30, "width": 320, "height": 180},
            "inference": {"model": str(dark_onnx())},
            "sinks": {"window": True},
            "live": {"duration_s": 5},
        }
    )
    with pytest.raises(SonomapError, match="no display"):
        Pipeline(config).run()
    assert not [t.name for t in threading.enumerate() if t.name == "capture"]
