"""Test helper: tiny H.264 clips written with PyAV (a white bar moving across black), a folder of
PNG screens (noise in a black frame), and every frame of a video file decoded to BGR (what a viewer
of a recording sees)."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

BAR_PX = 8
SIZE = (64, 48)  # (W, H)


def write_bar_clip(path: Path, frames: int, step: int, fps: int = 10) -> Path:
    """``frames`` frames of a bar moving ``step`` px a frame, libx264 in an mp4."""
    width, height = SIZE
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            img = np.zeros((height, width, 3), np.uint8)
            img[:, i * step : i * step + BAR_PX] = 255
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def write_noise_clip(
    path: Path,
    frames: int,
    height: int,
    width: int,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    **options,
) -> Path:
    """``frames`` frames of seeded RGB noise at 30 fps, encoded with ``codec`` in ``pix_fmt``; ``options``:
    the container's (e.g. ``movflags="faststart"``, the index in front as cameras and editors write MP4)."""
    with av.open(str(path), "w", format="mp4", options=options) as out:
        stream = out.add_stream(codec, rate=30)
        stream.height, stream.width, stream.pix_fmt = height, width, pix_fmt
        for i in range(frames):
            image = np.random.default_rng(i).integers(0, 256, (height, width, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_noise_screens(folder: Path, frames: int) -> Path:
    """``frames`` PNG screens ``000.png``... in a new ``folder``: 480x360, noise (seed 0) inside a
    black border, so the ROI is found and the model infers on every one."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(frames):
        image = np.zeros((360, 480, 3), np.uint8)
        image[40:320, 60:420] = rng.integers(40, 200, (280, 360, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{i:03d}.png"), image)
    return folder


def decode(path: Path) -> list[np.ndarray]:
    """Every frame of the video at ``path`` as BGR (H, W, 3) uint8, in order."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(c.streams.video[0])]
