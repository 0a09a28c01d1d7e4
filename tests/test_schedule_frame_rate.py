"""Both schedules take a clip's own frame rate (the source's ``fps``) over the 30 fps default: a replay
of a 10 fps clip records at 10 fps and lasts as long as the clip; ``sonomap live`` plays it at 10 frames
a second. Real PyAV clips and a real ONNX Runtime backend (the test model)."""

from __future__ import annotations

import av
import numpy as np
from runtime_model import dark_onnx

from edge_runtime.config import build_config
from edge_runtime.frames import Observer
from edge_runtime.pipeline.graph import Pipeline

FPS, FRAMES = 10, 15


def ten_fps_clip(path) -> None:
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        stream = c.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for _ in range(FRAMES):
            image = np.zeros((240, 320, 3), np.uint8)
            image[20:220, 30:290] = rng.integers(40, 200, (200, 260, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                c.mux(packet)
        for packet in stream.encode():
            c.mux(packet)


class Times(Observer):
    def __init__(self):
        self.captured = []

    def on_frame(self, frame, prediction, rendered, stats):
        self.captured.append(frame.timestamp)


def config(clip, out):
    return build_config(
        {
            "source": {"input": str(clip)},
            "inference": {"model": str(dark_onnx())},
            "sinks": {"video": str(out)},
        }
    )


def test_a_replay_records_at_the_clips_frame_rate(tmp_path):
    clip, out = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    ten_fps_clip(clip)
    Pipeline(config(clip, out)).run()
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert stream.average_rate == FPS and sum(1 for _ in c.decode(stream)) == FRAMES
        assert abs(c.duration / 1e6 - FRAMES / FPS) < 0.05


def test_live_plays_a_clip_at_its_frame_rate(tmp_path):
    clip = tmp_path / "clip.mp4"
    ten_fps_clip(clip)
    times = Times()
    pipeline = Pipeline(config(clip, tmp_path / "rec.mp4"), observers=[times])
    pipeline.live_schedule = True
    pipeline.run()
    span = times.captured[-1] - times.captured[0]
    assert abs(span - (FRAMES - 1) / FPS) < 0.15, span  # 0.47 s at the 30 fps default
