"""Where a prediction goes in the image a viewer has: the input frame's OpenIGTLink geometry, and an
ROI-sized plane pasted into a plane of the whole image.

Input: a frame (from ``igtl://`` with its own geometry and transforms, or from any other source) and
an ROI-sized plane. Output: the geometry dict :class:`edge_runtime.igtl.sink.IgtlObserver` builds its
messages from; the full-size plane. Files: none.
"""

from __future__ import annotations

import time

import numpy as np

from edge_runtime.frames import DEFAULT_DEVICE, Frame
from edge_runtime.igtl.geometry import GEOMETRY_REFUSED_KEY


def paste(full_shape: tuple[int, int], roi, plane: np.ndarray) -> np.ndarray:
    """An ROI-sized plane -> a zero image of ``full_shape`` with the plane at the ROI."""
    if plane.shape == tuple(full_shape):
        return plane
    if roi is None:
        raise ValueError(f"prediction of size {plane.shape} for a {full_shape} frame but no ROI given")
    x, y, w, h = (roi.x, roi.y, roi.w, roi.h) if hasattr(roi, "x") else (int(v) for v in roi)
    if plane.shape != (h, w):
        raise ValueError(f"prediction of size {plane.shape} does not match ROI {w}x{h}")
    out = np.zeros(full_shape, plane.dtype)
    out[y : y + h, x : x + w] = plane
    return out


def geometry(frame: Frame) -> dict:
    """Layout, matrix, coordinate system, device and timestamp of the input frame; frames
    from non-IGTL sources get an axis-aligned matrix with their mm scale (1 mm if unknown). An IGTL
    frame whose geometry was refused gets ``matrix`` None and ``fault`` saying why (never sent)."""
    meta = frame.meta or {}
    height, width = frame.image.shape[:2]
    if meta.get(GEOMETRY_REFUSED_KEY):  # an IGTL image whose own geometry was refused: no pose to send
        return {
            "layout": tuple(meta.get("igtl_layout") or (1, height, width)),
            "matrix": None,
            "fault": str(meta[GEOMETRY_REFUSED_KEY]),
            "system": meta.get("igtl_coordinate_system", "ras"),
            "device": meta.get("device") or DEFAULT_DEVICE,
            "timestamp": float(meta.get("igtl_timestamp") or time.time()),
            "transforms": meta.get("transforms") or {},
        }
    if "ijk_to_world" in meta and "igtl_layout" in meta:
        return {
            "layout": tuple(meta["igtl_layout"]),
            "matrix": np.asarray(meta["ijk_to_world"]),
            "system": meta.get("igtl_coordinate_system", "ras"),
            "device": meta.get("device") or DEFAULT_DEVICE,
            "timestamp": float(meta["igtl_timestamp"]),
            "transforms": meta.get("transforms") or {},
        }
    mm = float(meta.get("mm_per_pixel") or 1.0)
    return {
        "layout": (1, height, width),
        "matrix": np.diag([mm, mm, 1.0, 1.0]),
        "system": "ras",
        "device": meta.get("device") or DEFAULT_DEVICE,
        "timestamp": time.time() - (time.monotonic() - frame.timestamp),
        "transforms": meta.get("transforms") or {},
    }
