"""Real sample frames for parity checks and selfcheck (no torch: selfcheck runs on the cart).

Input: a folder of 8-bit images (default: the vendored BUSI sample ``tests/data/busi/images``
of a source checkout, else the four frames packaged with the default model, so an installed
cart without the source tree can still run ``sonomap selfcheck``). Output: ``[(id, gray uint8 (H, W)), ...]`` sorted by name.

A frame's id is its position in the folder's sorted image list and the start of its file's sha256
(``#3 sha256:1f2e...``), never its file name: the ids go into ``MODEL.parity.json``, which ships with
the model, and a frame file may be named after a patient.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

import edge_runtime
from edge_runtime.errors import InputError
from edge_runtime.source_kinds import IMAGE_SUFFIXES

DEFAULT_FRAMES = Path(__file__).resolve().parents[1] / "tests" / "data" / "busi" / "images"
PACKAGED_FRAMES = Path(edge_runtime.__file__).resolve().parent / "models" / "default" / "samples"
READ_FLAGS = cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH
ID_SHA256_CHARS = 16  # of the file's sha256 in a frame id: enough to find the file, short to read


def default_frames_dir(candidates: tuple[Path, ...] = (DEFAULT_FRAMES, PACKAGED_FRAMES)) -> Path:
    """The first sample folder that exists: the source checkout's, then the packaged one."""
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise InputError(
        f"sample frames not found in {', '.join(map(str, candidates))}; "
        "pass --frames DIR with a few ultrasound images"
    )


def load_frames(
    frames_dir: str | Path | None = None, limit: int | None = None
) -> list[tuple[str, np.ndarray]]:
    """Read up to ``limit`` (>= 1) gray frames; spread the pick over the sorted list so a small
    limit still mixes benign and malignant images. Ids: see the module doc (no file names)."""
    if limit is not None and limit < 1:
        raise InputError(f"frames to compare must be at least 1, got {limit}")
    folder = Path(frames_dir) if frames_dir is not None else default_frames_dir()
    if not folder.is_dir():
        raise InputError(f"--frames {folder}: not a directory")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise InputError(f"--frames {folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    picked = range(len(paths))
    if limit is not None and limit < len(paths):
        step = len(paths) / limit
        picked = [int(i * step) for i in range(limit)]
    frames = []
    for index in picked:
        path = paths[index]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{path}: unreadable ({exc.strerror or exc})") from exc
        # any depth as stored: IMREAD_GRAYSCALE alone shifts a 16-bit image down to its top 8 bits,
        # so 12-bit data comes out nearly black and parity would be judged on empty frames
        gray = cv2.imdecode(np.frombuffer(data, np.uint8), READ_FLAGS) if data else None
        if gray is None:
            raise InputError(f"{path}: not a readable image")
        if gray.dtype != np.uint8:
            raise InputError(
                f"{path}: a {gray.dtype.itemsize * 8}-bit image ({gray.dtype}); parity frames must be 8-bit, "
                "as the cart's capture delivers them: convert the folder to 8-bit images first"
            )
        frames.append((frame_id(index, data), gray))
    return frames


def frame_id(index: int, data: bytes) -> str:
    """``#INDEX sha256:PREFIX``: the frame's place in the sorted folder and its file's hash, no name."""
    return f"#{index} sha256:{hashlib.sha256(data).hexdigest()[:ID_SHA256_CHARS]}"


def fit_frame(
    gray: np.ndarray, roi: tuple[int, int] | None, max_hw: tuple[int, int] | None = None
) -> np.ndarray:
    """Bring a frame to what the model accepts: the fixed ROI size, or within the dynamic
    range's maximum (scaled down keeping aspect)."""
    if roi is not None:
        if gray.shape != tuple(roi):
            gray = cv2.resize(gray, (roi[1], roi[0]), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(gray)
    if max_hw is not None and (gray.shape[0] > max_hw[0] or gray.shape[1] > max_hw[1]):
        scale = min(max_hw[0] / gray.shape[0], max_hw[1] / gray.shape[1])
        size = (max(1, int(gray.shape[1] * scale)), max(1, int(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(gray)
