"""A live recording keeps real time: each frame is stamped at its capture time, so a session whose
display showed fewer frames than were captured (a slow AI, drops) plays back as long as it lasted, not
squeezed to frames / fps. Its keyframes come at least once a second of that time (a crash loses at
most about a second of the fragmented mp4). A replay's frames keep their place at frame / fps. Real
PyAV/libx264 files, decoded back; a real live run on the synthetic source with a slow ONNX Runtime AI."""

from __future__ import annotations

import time

import av
import numpy as np
from runtime_model import dark_onnx

from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_runtime.config import build_config
from edge_runtime.frames import Observer
from edge_runtime.manifest import load_manifest
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.sinks.mp4 import Mp4Sink

CAPTURED_AT = [50.0, 50.2, 50.2, 50.45, 52.95, 53.0, 54.6]  # a repeated time and a 2.5 s gap
FPS = 30


def decoded_times(path) -> list[tuple[float, bool]]:
    """(seconds, keyframe) of each frame of the file, in order."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return [(float(f.pts * stream.time_base), f.key_frame) for f in c.decode(stream)]


def write(path, timed: bool) -> None:
    sink = Mp4Sink(path, fps=FPS, timed=timed)
    for i, at in enumerate(CAPTURED_AT):
        sink.write(np.full((48, 64, 3), 20 * i, np.uint8), at)
    sink.close()
    assert sink.error is None


def test_a_timed_recording_puts_each_frame_at_its_capture_time(tmp_path):
    write(tmp_path / "live.mp4", timed=True)
    times = decoded_times(tmp_path / "live.mp4")
    seconds = [t for t, _ in times]
    assert len(times) == len(CAPTURED_AT)
    assert all(
        b > a for a, b in zip(seconds, seconds[1:], strict=False)
    )  # a repeated capture time still moves on
    expected = [at - CAPTURED_AT[0] for at in CAPTURED_AT]
    assert np.allclose(seconds, expected, atol=0.001), seconds
    keys = [t for t, key in times if key]  # a second past the last keyframe: a new one
    assert np.allclose(keys, [0.0, 2.95, 4.6], atol=0.001), keys


def test_an_untimed_recording_places_frames_at_the_frame_rate(tmp_path):
    write(tmp_path / "replay.mp4", timed=False)
    seconds = [t for t, _ in decoded_times(tmp_path / "replay.mp4")]
    assert np.allclose(seconds, [i / FPS for i in range(len(CAPTURED_AT))], atol=0.001), seconds


class Slow(OnnxRuntimeBackend):
    def __init__(self):
        super().__init__(dark_onnx(), load_manifest(dark_onnx()), device="cpu")

    def infer(self, gray):
        time.sleep(0.2)
        return super().infer(gray)


class Times(Observer):
    def __init__(self):
        self.captured = []

    def on_frame(self, frame, prediction, rendered, stats):
        self.captured.append(frame.timestamp)


def test_a_live_session_that_drops_frames_is_recorded_in_real_time(tmp_path):
    out = tmp_path / "rec.mp4"
    config = build_config(
        {
            "source": {"input": "synthetic", "fps": FPS, "width": 640, "height": 360},
            "inference": {"model": str(dark_onnx())},
            "live": {"mode": "strict", "duration_s": 1.5},
            "sinks": {"video": str(out)},
        }
    )
    times = Times()
    summary = Pipeline(config, observers=[times], backend=Slow()).run()
    assert summary["drops"] > summary["frames"]  # the display showed fewer frames than came in
    recorded = decoded_times(out)
    assert len(recorded) == summary["frames"] == len(times.captured)
    span = times.captured[-1] - times.captured[0]
    assert span > 1.0 and abs(recorded[-1][0] - span) < 0.01, (recorded[-1][0], span)
