"""bench on clips the pipeline takes but libx264's 4:2:0 cannot encode as they are: an odd-sized clip
(641x361, 4:4:4) is measured (its naive loop drops the last row and column), and a 1x1 clip is one line
naming the file and frame, exit 2. Both ended in a traceback from the naive loop's encoder. Real clips
written by PyAV."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
from cli import sonomap
from runtime_model import dark_onnx


def _clip(path, height: int, width: int, codec: str, pix_fmt: str) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=Fraction(30))
        stream.height, stream.width, stream.pix_fmt = height, width, pix_fmt
        for i in range(6):
            image = np.random.default_rng(i).integers(0, 256, (height, width, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _bench(clip):
    return sonomap(
        "bench", clip, "--model", dark_onnx(), "--frames", 4, "--rounds", 1, "--live-seconds", 0, check=False
    )


def test_an_odd_sized_clip_is_measured(tmp_path):
    clip = tmp_path / "odd.mp4"
    _clip(clip, 361, 641, "libx264", "yuv444p")
    run = _bench(clip)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert (
        "naive sequential loop: " in run.stdout and "ratio pipeline / naive loop throughput" in run.stdout
    ), run.stdout


def test_a_clip_below_the_minimum_size_is_one_line(tmp_path):
    clip = tmp_path / "one.mp4"
    _clip(clip, 1, 1, "libx264rgb", "rgb24")
    run = _bench(clip)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert run.stderr.strip().splitlines()[-1] == (
        f"sonomap bench: error: {clip}: frame 0 is 1x1, smaller than the minimum 16x16"
    )
