"""Test helper: render a screen through both of the overlay's drawing paths (BGR :meth:`Overlay.render`
and the decoder's I420 planes, :meth:`Overlay.render_i420`), for tests that measure rendered pixels."""

from __future__ import annotations

import cv2
import numpy as np

from edge_runtime.render.overlay import Overlay
from edge_runtime.roi import Roi

PATHS = ("bgr", "i420")


def draw(
    path: str, overlay: Overlay, screen: np.ndarray, roi: Roi, **kwargs
) -> tuple[np.ndarray, np.ndarray]:
    """(raw, rendered) as BGR; the I420 path's raw frame is the screen after the same 4:2:0 round trip."""
    if path == "bgr":
        return screen, overlay.render(screen, roi, None, **kwargs)
    i420 = cv2.cvtColor(screen, cv2.COLOR_BGR2YUV_I420)
    raw = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
    out = overlay.render_i420(i420, roi, None, **kwargs)
    return raw, cv2.cvtColor(out, cv2.COLOR_YUV2BGR_I420)
