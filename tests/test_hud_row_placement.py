"""Where the HUD row goes when the screen has no room above the ROI: below it when there is room
there, else in the ROI's bottom-right corner no wider than the ROI, with the legend (mask swatches or
heat-map colour bar) lifted clear of it. Before, the row was laid out across the whole frame's width
in the ROI's bottom rows, over the deep image, the legend and the colour bar's labels. Measured on
rendered pixels, in both drawing paths (BGR and the decoder's I420 planes), on a real BUSI image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from overlay_screens import PATHS, draw

from edge_runtime.aistate import AiStatus
from edge_runtime.config_schema import OverlayConfig
from edge_runtime.render import hudrow
from edge_runtime.render.hudrow import AI_BADGE_BGR
from edge_runtime.render.overlay import Overlay
from edge_runtime.roi import Roi

STYLES = ("mask", "heatmap")
HUD = {"fps": 29.9, "latency_ms": 41, "backend": "onnxruntime cpu"}
ON = AiStatus("ON", "40 ms")
I420_TOLERANCE = 40  # a colour after the 4:2:0 round trip, within this per channel
CHANGED_LEVELS = 24  # a pixel changed by more than this was drawn over (not a 4:2:0 rounding)
MIN_BADGE_PIXELS = 30
LEGEND_KEPT = 0.97  # share of the legend's pixels still seen with the row on screen (I420 rounding)


def render(path: str, overlay: Overlay, screen: np.ndarray, roi: Roi, ai: AiStatus | None = ON):
    """(raw, rendered) with the HUD values and ``ai``'s badge (None: no badge)."""
    return draw(path, overlay, screen, roi, hud=HUD, ai=ai)


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b).max(axis=2) > CHANGED_LEVELS


@pytest.mark.parametrize("path", PATHS)
def test_with_room_below_but_not_above_the_row_goes_below_and_the_image_is_untouched(
    dark_manifest, busi_malignant, path
):
    screen = np.full((300, 400, 3), 12, np.uint8)
    roi = Roi(20, 0, 360, 240)  # the image touches the top: 60 rows of the scanner's screen below it
    screen[:240, 20:380] = cv2.resize(busi_malignant, (360, 240))
    overlay = Overlay.from_config(dark_manifest, OverlayConfig(legend=False))
    raw, out = render(path, overlay, screen, roi)
    assert not changed(roi.crop(out), roi.crop(raw)).any(), "the HUD row drew over the image"
    badge = np.abs(out[240:].astype(int) - AI_BADGE_BGR["ON"]).max(axis=2) <= I420_TOLERANCE
    assert badge.sum() >= MIN_BADGE_PIXELS, "the AI badge is not below the image"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("style", STYLES)
def test_a_frame_filling_image_keeps_the_row_in_its_corner_and_the_legend_whole(
    dark_manifest, busi_malignant, path, style
):
    # a DICOM cine's screen: the image fills the frame's height, a dark band beside it (even sizes: I420)
    h, w = (n // 2 * 2 for n in busi_malignant.shape[:2])
    screen = np.full((h, w + 150, 3), 12, np.uint8)
    roi = Roi(90, 0, w, h)
    screen[:, 90 : 90 + w] = busi_malignant[:h, :w]
    raw, out = render(path, Overlay.from_config(dark_manifest, OverlayConfig(style=style)), screen, roi)
    _, no_legend = render(
        path, Overlay.from_config(dark_manifest, OverlayConfig(style=style, legend=False)), screen, roi
    )
    alone = Overlay.from_config(dark_manifest, OverlayConfig(style=style, hud=False))
    _, legend_alone = render(path, alone, screen, roi, ai=None)  # no HUD text, no badge: the legend only
    row = hudrow.layout(screen.shape[1], screen.shape[0], roi, HUD, ON)
    x0, y0, x1, y1 = row.box
    assert roi.x <= x0 and x1 <= roi.x + roi.w and y1 <= roi.y + roi.h, f"row {row.box} leaves the ROI {roi}"
    outside = np.ones(screen.shape[:2], bool)
    outside[roi.y : roi.y + roi.h, roi.x : roi.x + roi.w] = False
    assert not changed(out, raw)[outside].any(), "the row is drawn off the image"
    # the legend's pixels, with the row on screen and alone: as many seen (lifted, not covered)
    legend, whole = changed(out, no_legend), changed(legend_alone, raw)
    assert whole.sum() > 0 and not legend[y0:y1, x0:x1].any()
    assert legend.sum() >= LEGEND_KEPT * whole.sum(), (
        f"the HUD row hides {1 - legend.sum() / whole.sum():.0%} of the legend"
    )
