"""Mask style: paint each shown class in its colour over its pixels, with its outer contour.

Input: the class styles (:mod:`edge_runtime.render.styles`), a class-id mask at ROI size and the
fade (the tint's alpha and the contour's brightness are scaled by it). Output: the ROI painted in
place, in a BGR region (:meth:`MaskPainter.paint`) or in the I420 planes of the decoder
(:meth:`MaskPainter.paint_i420`, blended by :func:`edge_runtime.yuv.blend_mask`). Only each class's
bounding box is touched, so the cost scales with the lesion, not the 1080p screen. The heat-map
style is :mod:`edge_runtime.render.heatmap`. The style's legend (:func:`draw_legend`): one colour
swatch and class name per shown class, in the bottom-left corner of the region given (the overlay
lifts it clear of a HUD row in the ROI), sized by the ROI's height.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_runtime import yuv
from edge_runtime.render import banners, hudrow
from edge_runtime.render.styles import ClassStyle
from edge_runtime.roi import Roi

CONTOUR_PX = 2  # visible at 1080p, thin enough not to hide the lesion's edge
LEGEND_FONT = cv2.FONT_HERSHEY_SIMPLEX
# the legend keeps as far from the ROI's edges as banner text
LEGEND_MARGIN_PX = banners.TEXT_MARGIN_PX
LEGEND_FULL_SIZE_ROI_PX = 600  # ROIs at least this tall get the full-size legend
LEGEND_SWATCH_PX = 16  # a colour patch about the HUD text's height at full size
MIN_SWATCH_PX = 6  # smaller swatches no longer show their colour
LEGEND_GAP_PX = 6  # between a swatch and its name, and between legend rows
LEGEND_TEXT_LIFT_PX = 2  # the name's baseline sits this far above the swatch's bottom
WHITE = (255, 255, 255)


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


def legend_scale(roi_h: int) -> tuple[int, float]:
    """(swatch side in pixels, text scale): scaled to the ROI so a 240-line DICOM cine keeps most of
    its image visible."""
    k = min(1.0, max(hudrow.MIN_HUD_SCALE / hudrow.HUD_SCALE, roi_h / LEGEND_FULL_SIZE_ROI_PX))
    return max(MIN_SWATCH_PX, int(LEGEND_SWATCH_PX * k)), hudrow.HUD_SCALE * k


def legend_size(styles: list[ClassStyle], roi_h: int) -> tuple[int, int]:
    """(width, height) of the legend's box in the ROI's bottom-left corner."""
    swatch, scale = legend_scale(roi_h)
    text_w = max((cv2.getTextSize(s.name, LEGEND_FONT, scale, 1)[0][0] for s in styles), default=0)
    rows_h = len(styles) * (swatch + LEGEND_GAP_PX)
    return (
        LEGEND_MARGIN_PX + swatch + LEGEND_GAP_PX + text_w + LEGEND_MARGIN_PX,
        LEGEND_MARGIN_PX + rows_h + LEGEND_TEXT_LIFT_PX,
    )


def draw_legend(region: np.ndarray, styles: list[ClassStyle], roi_h: int) -> None:
    """The legend in ``region``'s bottom-left corner, sized for a ROI ``roi_h`` tall."""
    swatch, scale = legend_scale(roi_h)
    y = region.shape[0] - LEGEND_MARGIN_PX - swatch
    for style in styles:
        x = LEGEND_MARGIN_PX
        cv2.rectangle(region, (x, y), (x + swatch, y + swatch), style.bgr, -1)
        name_at = (x + swatch + LEGEND_GAP_PX, y + swatch - LEGEND_TEXT_LIFT_PX)
        cv2.putText(region, style.name, name_at, LEGEND_FONT, scale, WHITE, 1, cv2.LINE_AA)
        y -= swatch + LEGEND_GAP_PX
