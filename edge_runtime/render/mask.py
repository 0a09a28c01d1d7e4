"""Mask style: paint each shown class in its colour over its pixels, with its outer contour.

Input: the class styles (:mod:`edge_runtime.render.styles`), a class-id mask at ROI size and the
fade (the tint's alpha and the contour's brightness are scaled by it). Output: the ROI painted in
place, in a BGR region (:meth:`MaskPainter.paint`) or in the I420 planes of the decoder
(:meth:`MaskPainter.paint_i420`, blended by :func:`edge_runtime.yuv.blend_mask`). Only each class's
bounding box is touched, so the cost scales with the lesion, not the 1080p screen. The heat-map
style is :mod:`edge_runtime.render.heatmap`.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_runtime import yuv
from edge_runtime.render.styles import ClassStyle
from edge_runtime.roi import Roi

CONTOUR_PX = 2  # visible at 1080p, thin enough not to hide the lesion's edge


class MaskPainter:
    """Paints the classes of ``styles`` (class id -> style; the renderer's own dict). Holds its
    colour caches, so no frame allocates a solid-colour image or converts a colour again."""

    def __init__(self, styles: dict[int, ClassStyle]):
        self.styles = styles
        self._solids: dict[tuple[int, int, int], np.ndarray] = {}
        self._yuv_colours: dict[tuple[int, int, int], tuple[int, int, int]] = {}

    def paint(self, region: np.ndarray, mask: np.ndarray, fade: float) -> None:
        """Paint the BGR ``region`` (the ROI of the frame) in place."""
        for class_id, style in self.styles.items():
            if not style.show:
                continue
            m = yuv.class_pixels(mask, class_id)  # 0/255
            x, y, w, h = cv2.boundingRect(m)
            if w == 0 or h == 0:
                continue
            sub, msub = region[y : y + h, x : x + w], m[y : y + h, x : x + w]
            alpha = style.alpha * fade
            work = np.ascontiguousarray(sub)
            tinted = cv2.addWeighted(work, 1.0 - alpha, self._solid(h, w, style.bgr), alpha, 0.0)
            cv2.copyTo(tinted, msub, work)  # masked copy; numpy's copyto(where=) is ~50x slower
            if style.contour:
                contours, _ = cv2.findContours(msub, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
                colour = tuple(int(c * fade) for c in style.bgr)
                cv2.drawContours(work, contours, -1, colour, CONTOUR_PX, cv2.LINE_8)  # AA costs ~10x
            sub[...] = work

    def paint_i420(self, i420: np.ndarray, roi: Roi, mask: np.ndarray, fade: float) -> None:
        """Paint the ROI of an I420 frame ``(H*3/2, W)`` in place: the same look as :meth:`paint`."""
        for class_id, style in self.styles.items():
            if style.show:
                contour = self._yuv(tuple(int(c * fade) for c in style.bgr)) if style.contour else None
                yuv.blend_mask(
                    i420, roi, mask, class_id, self._yuv(style.bgr), style.alpha * fade, contour, CONTOUR_PX
                )

    def _yuv(self, bgr: tuple[int, int, int]) -> tuple[int, int, int]:
        cached = self._yuv_colours.get(bgr)
        if cached is None:
            cached = self._yuv_colours[bgr] = yuv.bgr_to_yuv(bgr)
        return cached

    def _solid(self, h: int, w: int, bgr: tuple[int, int, int]) -> np.ndarray:
        """A cached solid-colour image at least h x w (sliced), so no per-frame allocation."""
        cached = self._solids.get(bgr)
        if cached is None or cached.shape[0] < h or cached.shape[1] < w:
            cached = np.empty((h, w, 3), np.uint8)
            cached[:] = bgr
            self._solids[bgr] = cached
        return cached[:h, :w]
