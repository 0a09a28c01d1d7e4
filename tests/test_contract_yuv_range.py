"""Only limited-range yuv420p takes the YUV fast path: its luma map (16..235 -> 0..255) would darken
a full-range frame (VP9 and AV1 decode full range as plain yuv420p), so those frames take the BGR
path and the model sees the image that was encoded, as training's preprocessing sees it.

Real clips written and decoded with PyAV, read through the runtime's own source.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from edge_runtime import yuv
from edge_runtime.preprocess import to_gray
from edge_runtime.roi import Roi
from edge_runtime.sources.opener import open_source

SAMPLE = Path(__file__).resolve().parent / "data" / "busi" / "images" / "malignant_002.png"
SIZE = (160, 120)  # (width, height): even, small
FULL_RANGE, LIMITED_RANGE = 2, 1  # FFmpeg's AVCOL_RANGE_JPEG / AVCOL_RANGE_MPEG
TOLERANCE = 1.5  # mean |gray - encoded image|, lossless coding and the YUV round trip's rounding


def image() -> np.ndarray:
    return cv2.resize(cv2.imread(str(SAMPLE), cv2.IMREAD_GRAYSCALE), SIZE)


def write_clip(path: Path, codec: str, color_range: int, options: dict) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv420p"
        stream.codec_context.color_range = color_range
        stream.codec_context.options = options
        for _ in range(2):
            frame = av.VideoFrame.from_ndarray(image(), format="gray")
            frame = frame.reformat(format="yuv420p", dst_color_range=color_range)
            frame.color_range = color_range
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def first_frame_and_model_input(clip: Path):
    """The runtime source's first frame and the gray pixels the inference stage cuts from it."""
    source = open_source(str(clip))
    try:
        frame = next(iter(source))
    finally:
        source.close()
    full = Roi(0, 0, SIZE[0], SIZE[1])
    gray = yuv.gray_roi(frame.i420, full) if isinstance(frame, yuv.YuvFrame) else to_gray(frame.image)
    return frame, gray


def test_a_full_range_yuv420p_clip_takes_the_bgr_path_and_the_model_sees_the_encoded_image(tmp_path):
    clip = write_clip(tmp_path / "full.webm", "libvpx-vp9", FULL_RANGE, {"lossless": "1"})
    with av.open(str(clip)) as container:
        decoded = next(container.decode(video=0))
    assert decoded.format.name == "yuv420p" and int(decoded.color_range) == FULL_RANGE
    assert yuv.from_av(decoded) is None
    frame, gray = first_frame_and_model_input(clip)
    assert not isinstance(frame, yuv.YuvFrame)
    assert np.abs(gray.astype(int) - image()).mean() < TOLERANCE


def test_a_limited_range_clip_keeps_the_yuv_path(tmp_path):
    clip = write_clip(tmp_path / "limited.mp4", "libx264", LIMITED_RANGE, {"qp": "0"})
    frame, gray = first_frame_and_model_input(clip)
    assert isinstance(frame, yuv.YuvFrame)
    assert np.abs(gray.astype(int) - image()).mean() < TOLERANCE
