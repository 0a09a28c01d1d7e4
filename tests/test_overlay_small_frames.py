"""Small frames (a 240-line DICOM cine, a thumbnail): the banners must not hide the ultrasound image
and the AI badge must stay whole, in both drawing paths (BGR :meth:`Overlay.render` and the decoder's
I420 planes, :meth:`Overlay.render_i420`). Every check is measured on rendered pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from overlay_screens import PATHS, draw

from edge_runtime.aistate import AiStatus
from edge_runtime.config_schema import OverlayConfig
from edge_runtime.render.hudrow import AI_BADGE_BGR
from edge_runtime.render.overlay import BANNER_BGR, Overlay
from edge_runtime.roi import Roi

MAX_BANNER_COVERAGE = 0.15  # the banners may cover at most this share of the ROI's rows
CHANGED_LEVELS = 24  # a pixel changed by more than this was drawn over (not a 4:2:0 rounding)
DRAWN_ROW_SHARE = 0.5  # a row with this share of its pixels drawn over is covered
I420_COLOUR_TOLERANCE = 40  # a colour after the 4:2:0 round trip, within this per channel
EDGE_PX = 3  # the banner text must end at least this far from the ROI's right edge
MIN_BADGE_PIXELS = 30  # a badge you can see: at least this many pixels of its colour
INK_LEVELS = 60  # label text: its luma this far from the badge colour's (white or dark on colour)
LUMA_BGR = np.array([0.114, 0.587, 0.299])
THREE_BANNERS = [
    ("error", "AI STALLED: no answer for 3.2 s - raw ultrasound only"),
    ("warning", "AI LAGGING: overlay is 900 ms old"),
    ("info", "BIOPSY 2 CAPTURED"),
]
LONG_BANNER = [("error", "AI STALLED: no answer for 12.5 s - raw ultrasound only, check the AI box")]
STATUSES = [
    AiStatus("ON", "40 ms"),
    AiStatus("LOADING", "building engine"),
    AiStatus("STALLED", "3.2 s"),
    AiStatus("ERROR"),
    AiStatus("OFF"),
]
HUD = {"fps": 29.9, "latency_ms": 41, "backend": "onnxruntime cpu"}


def screen_with(ultrasound: np.ndarray, size: tuple[int, int], roi: Roi) -> np.ndarray:
    """A dark screen of ``size`` (h, w) with the BUSI image in ``roi``."""
    canvas = np.full((*size, 3), 12, np.uint8)
    canvas[roi.y : roi.y + roi.h, roi.x : roi.x + roi.w] = cv2.resize(ultrasound, (roi.w, roi.h))
    return canvas


def near(image: np.ndarray, bgr: tuple[int, int, int], path: str) -> np.ndarray:
    """Pixels of colour ``bgr``: exactly in the BGR path, within the 4:2:0 round trip's error in I420."""
    if path == "bgr":
        return np.all(image == bgr, axis=2)
    return np.abs(image.astype(int) - bgr).max(axis=2) <= I420_COLOUR_TOLERANCE


@pytest.mark.parametrize("path", PATHS)
def test_three_banners_cover_at_most_15_percent_of_a_small_roi(dark_manifest, busi_malignant, path):
    roi = Roi(40, 40, 320, 240)  # a 240-line DICOM cine
    overlay = Overlay.from_config(dark_manifest, OverlayConfig(legend=False, hud=False))
    raw, out = draw(path, overlay, screen_with(busi_malignant, (320, 400), roi), roi, banners=THREE_BANNERS)
    drawn = np.abs(roi.crop(out).astype(int) - roi.crop(raw)).max(axis=2) > CHANGED_LEVELS
    covered_rows = np.count_nonzero(drawn.mean(axis=1) >= DRAWN_ROW_SHARE)
    assert 0 < covered_rows <= MAX_BANNER_COVERAGE * roi.h, f"banners cover {covered_rows / roi.h:.1%}"
    # the most severe banner's colour is shown: the stall is not hidden by merging
    assert near(roi.crop(out), BANNER_BGR["error"], path).sum() > roi.w * 5


@pytest.mark.parametrize("path", PATHS)
def test_a_long_banner_on_a_narrow_roi_ends_inside_it(dark_manifest, busi_malignant, path):
    roi = Roi(60, 20, 80, 120)
    overlay = Overlay.from_config(dark_manifest, OverlayConfig(legend=False, hud=False))
    raw, out = draw(path, overlay, screen_with(busi_malignant, (160, 200), roi), roi, banners=LONG_BANNER)
    outside = np.ones(raw.shape[:2], bool)
    outside[roi.y : roi.y + roi.h, roi.x : roi.x + roi.w] = False
    assert np.array_equal(out[outside], raw[outside])  # nothing drawn off the ROI
    region = roi.crop(out)
    colour = near(region, BANNER_BGR["error"], path)
    rows = np.nonzero(colour[:, 0])[0]  # the banner's left margin is plain colour on every row
    assert rows.size > 0
    band = region[rows.min() : rows.max() + 1]
    ink = ~near(band, BANNER_BGR["error"], path)
    assert ink.any()  # the text is drawn
    # and it ends inside the ROI (shrunk, then cut with "..."): the right edge's columns are plain colour
    assert not ink[:, -EDGE_PX:].any(), "the banner text runs off the ROI's edge"


def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma: I420 keeps it at full resolution, so text edges are sharp in both paths."""
    return image.astype(float) @ LUMA_BGR


def badge_is_whole(out: np.ndarray, state: str, path: str) -> str | None:
    """None when the badge of ``state`` is in ``out`` and whole, else what is wrong.

    Whole: its colour is there, its label's ink is inside the box of that colour, and the ink touches
    none of the box's four sides (the padding around the label is there: nothing cut by the frame's
    edge)."""
    colour = near(out, AI_BADGE_BGR[state], path)
    if colour.sum() < MIN_BADGE_PIXELS:
        return f"{state}: badge colour not found"
    ys, xs = np.nonzero(colour)
    box = out[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    ink = np.abs(luma(box) - luma(np.array([[AI_BADGE_BGR[state]]]))[0, 0]) > INK_LEVELS
    if not ink.any():
        return f"{state}: no label in the badge"
    if ink[0].any() or ink[-1].any() or ink[:, 0].any() or ink[:, -1].any():
        return f"{state}: badge cut at the frame's edge (box {xs.min()}..{xs.max()} of {out.shape[1]})"
    return None


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("size", [(48, 64), (80, 100), (16, 48)])
def test_the_badge_is_whole_on_a_tiny_frame_in_every_state(dark_manifest, busi_malignant, path, size):
    h, w = size
    roi = Roi(0, 0, w, h)  # the whole frame is the image: no room above it
    problems = []
    for ai in STATUSES:
        overlay = Overlay.from_config(dark_manifest, OverlayConfig(legend=False))
        _, out = draw(path, overlay, screen_with(busi_malignant, size, roi), roi, hud=HUD, ai=ai)
        problems.append(badge_is_whole(out, ai.state, path))
    assert [p for p in problems if p] == []


@pytest.mark.parametrize("path", PATHS)
def test_a_one_pixel_roi_with_cancer_is_painted_not_a_crash(dark_manifest, path):
    """A 1x1 ROI (a roi.rect typed that small): OpenCV 5 refuses cv2.compare of a scalar with a 1x1
    mask, which would end a live run; the pixel is painted in the cancer colour on both paths."""
    overlay = Overlay.from_config(dark_manifest, OverlayConfig())
    screen = np.full((40, 60, 3), 80, np.uint8)
    roi = Roi(30, 20, 1, 1)
    mask = np.ones((1, 1), np.uint8)
    if path == "bgr":
        out = overlay.render(screen, roi, mask, ai=AiStatus("ON"))
    else:
        i420 = cv2.cvtColor(screen, cv2.COLOR_BGR2YUV_I420)
        out = cv2.cvtColor(overlay.render_i420(i420, roi, mask, ai=AiStatus("ON")), cv2.COLOR_YUV2BGR_I420)
    assert np.abs(out[20, 30].astype(int) - 80).max() > CHANGED_LEVELS // 2
