"""RTSP input: FFmpeg's RTSP client (through PyAV) against an RTSP server on loopback
(tests/rtsp_server.py: H.264 over RTP interleaved in TCP, as the runtime requests)."""

from __future__ import annotations

import json
import os
import subprocess
import time

import av
import numpy as np
import pytest
from cli import sonomap
from loopback import SONOMAP
from rtsp_server import RtspServer
from runtime_model import dark_onnx

from edge_runtime.errors import InputError
from edge_runtime.roi import Roi
from edge_runtime.sources.opener import open_source
from edge_runtime.sources.reconnect import ResilientSource
from edge_runtime.sources.synthetic import ScreenSimulator, default_image

SCREEN = (640, 360)
FPS = 30
CLIP_FRAMES = 30
LIVE_SECONDS = 4.0
MIN_LIVE_FRAMES = 45  # 4 s at 30 fps, less ~1 s of RTSP set-up and stream probing
ROI_TOLERANCE_PX = 6


@pytest.fixture(scope="module")
def screen():
    sim = ScreenSimulator(default_image(), screen_w=SCREEN[0], screen_h=SCREEN[1])
    return sim, [sim.frame(i) for i in range(CLIP_FRAMES)]


def test_rtsp_source_delivers_the_served_frames_in_order(screen):
    sim, frames = screen
    with RtspServer(frames, FPS) as url:
        src = open_source(url)
        assert src.live
        got = []
        for frame in src:
            got.append(frame)
            if len(got) == CLIP_FRAMES:
                break
        src.close()
    assert [f.index for f in got] == list(range(CLIP_FRAMES))
    assert got[0].image.shape == (SCREEN[1], SCREEN[0], 3)
    # The picture survives H.264 + RTP: each received frame is closest to the frame sent at its position.
    for k in (0, 9, 29):
        errors = [np.abs(got[k].image.astype(np.int16) - f).mean() for f in frames]
        assert int(np.argmin(errors)) == k and errors[k] < 6.0


def test_live_cli_from_rtsp_overlays_and_records(screen, tmp_path):
    """`sonomap live --source rtsp://...`: the real command, with the service's reconnecting source."""
    sim, frames = screen
    with RtspServer(frames, FPS) as url:
        sonomap(
            "live",
            "--source",
            url,
            "--headless",
            "--duration",
            LIVE_SECONDS,
            "--model",
            dark_onnx(),
            "--record",
            tmp_path / "rec.mp4",
            "--summary",
            tmp_path / "s.json",
        )
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["frames"] >= MIN_LIVE_FRAMES and summary["inferred"] > MIN_LIVE_FRAMES // 3
    roi, expected = Roi(*summary["roi"]), sim.roi
    assert (
        max(
            abs(roi.x - expected.x), abs(roi.y - expected.y), abs(roi.w - expected.w), abs(roi.h - expected.h)
        )
        <= ROI_TOLERANCE_PX
    )
    with av.open(str(tmp_path / "rec.mp4")) as c:
        assert sum(1 for _ in c.decode(c.streams.video[0])) >= MIN_LIVE_FRAMES - 5


def test_rtsp_server_gone_then_back_shows_no_signal_then_recovers(screen):
    """The service's source: the stream dies (encoder box rebooted), NO SIGNAL frames keep the
    display alive, and the stream is picked up again when the server returns on the same port."""
    _, frames = screen
    server = RtspServer(frames, FPS)
    url = server.__enter__()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    src = ResilientSource(lambda: open_source(url), url, initial_backoff_s=0.2)
    states, restarted = [], None
    deadline = time.monotonic() + 60
    try:
        for frame in src:
            states.append(bool(frame.meta.get("no_signal")))
            real = states.count(False)
            if real == 10 and restarted is None and not states[-1]:
                server.stop()
                restarted = False
            if restarted is False and states[-1] and states.count(True) >= 3:
                server = RtspServer(frames, FPS, port=port)
                server.__enter__()
                restarted = True
            if restarted and not states[-1] and real >= 20:
                break
            assert time.monotonic() < deadline, f"no recovery: {states[-20:]}"
    finally:
        src.close()
        server.stop()
    first_gap = states.index(True)
    assert not any(states[:first_gap]) and states[-1] is False and states.count(False) >= 20


def test_refused_rtsp_is_one_line_error_naming_the_url():
    with RtspServer([np.zeros((64, 64, 3), np.uint8)], FPS) as url:
        pass  # the port is closed again: nothing listens there now
    with pytest.raises(InputError, match="rtsp://127.0.0.1"):
        list(open_source(url))


def test_live_at_a_terminal_on_a_refused_stream_is_one_line_not_endless_no_signal():
    """The stream connects on its first read, not when opened: at a terminal that refusal is the
    same one-line error as a capture device that cannot be opened (under systemd it is waited for)."""
    with RtspServer([np.zeros((64, 64, 3), np.uint8)], FPS) as url:
        pass  # the port is closed again: nothing listens there now
    argv = [*SONOMAP, "live", "--source", url, "--headless", "--duration", "30", "--model", str(dark_onnx())]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, env={**os.environ, "NOTIFY_SOCKET": ""}
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sonomap live: error: {url}: "), result.stderr[-2000:]
    assert "before its first frame" in lines[0] and "NO SIGNAL" not in result.stderr
