"""Capture-card screens built around a real ultrasound image, with the truth of where everything is.

A scanner's screen as a capture card sees it: a dark background (black, video-range black 16 or a
dark grey UI), header lines (institution, the patient line) above the image, a column of acquisition
settings to its left, a grey bar, a TGC curve and a depth scale to its right, a caption under it and a
menu bar (flat grey panel with labels) at the bottom. The image is a real one (BUSI, pydicom's
ultrasound DICOMs), drawn as a linear probe's rectangle or cut to a curvilinear probe's fan.

Output of :func:`screen`: the BGR screen and :class:`Truth`: the image's content mask (its pixels
brighter than the background: what a ROI must not cut) and the UI mask (every pixel the annotations
drew: what a ROI must not take in). :func:`score` compares a ROI with them.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_LEVEL = 220
IMAGE_HEIGHT_FRACTION = 0.62  # of the screen's height, as a scanner's image area
PATIENT_LINE = "DOE^JANE  ID 1234567  DOB 1970-01-01"
HEADER = ("ST MARY HOSP  L12-5  BREAST", PATIENT_LINE)
SETTINGS = ("Gen", "THI", "FR 28", "Gn 52", "DR 66", "MI 0.9", "TIS 0.2")
CAPTION = "LT BREAST 2 O'CLOCK 3CM FN"
MENU = ("Freeze", "Depth", "Gain", "Focus", "Zoom", "Page 1/3")
MENU_LEVEL = 48  # the menu bar's flat grey
BAR_LEVELS = (0, 255)  # the grey bar's ramp, top to bottom
FAN_HALF_ANGLE_DEG = 35.0  # a curvilinear probe's half field of view
FAN_APEX_FRACTION = 0.25  # the arc's radius at the skin line, as a share of the fan's depth
TEXT_SCALE_PER_PX = 1 / 1400  # font scale per screen pixel of width
GAP_FRACTION = 0.012  # annotations this far from the image (share of the screen's height)
CONTENT_MARGIN = 6  # an image pixel this much over the background is content (as roi.BACKGROUND_MARGIN)
VIDEO_BLACK, VIDEO_SPAN = 16, 219  # limited-range video: black 16, white 235
CUT_TOL_PX = 3  # a ROI may cut this much of the content's box (its anti-aliased rim, H.264)


class Truth(NamedTuple):
    content: np.ndarray  # bool (H, W): the image's pixels brighter than the background
    ui: np.ndarray  # bool (H, W): every pixel an annotation drew
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of ``content`` (exclusive ends)
    patient: np.ndarray | None = None  # bool (H, W): the pixels the patient line drew (part of ``ui``)


def fan_width(height: int) -> int:
    """The width of the box of a fan ``height`` deep (:func:`fan_mask`)."""
    half = math.radians(FAN_HALF_ANGLE_DEG)
    inner = FAN_APEX_FRACTION * height
    return int(round(2 * (height + inner * math.cos(half)) * math.sin(half)))


def fan_mask(height: int, width: int) -> np.ndarray:
    """bool (height, width): a curvilinear probe's fan in its box: the apex above the box, the skin
    line an arc whose ends touch the box's top, the deepest point its bottom."""
    half = math.radians(FAN_HALF_ANGLE_DEG)
    inner = FAN_APEX_FRACTION * height
    apex_y = -inner * math.cos(half)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    dx, dy = xs + 0.5 - width / 2, ys + 0.5 - apex_y
    r, angle = np.hypot(dx, dy), np.abs(np.arctan2(dx, dy))
    return (angle <= half) & (r >= inner) & (r <= height - apex_y)


def _text(canvas: np.ndarray, ui: np.ndarray, text: str, org, scale: float, level=TEXT_LEVEL) -> int:
    """Draw ``text`` on the gray ``canvas`` and the ``ui`` mask; its height in pixels."""
    thick = max(1, int(round(scale * 2)))
    cv2.putText(canvas, text, org, FONT, scale, int(level), thick, cv2.LINE_AA)
    cv2.putText(ui, text, org, FONT, scale, 1, thick + 2, cv2.LINE_8)
    (_, h), base = cv2.getTextSize(text, FONT, scale, thick)
    return h + base


def screen(
    image: np.ndarray, size=(1280, 720), background=0, sector=False, video_range=False
) -> tuple[np.ndarray, Truth]:
    """The BGR screen of ``size`` (W, H) with the gray ``image`` on it (module doc) and its Truth: the
    background's grey level, the image as a fan (``sector``) or a rectangle, and the whole screen in
    video range (black at VIDEO_BLACK, as a capture card that takes limited range as full gives it)."""
    width, height = size
    canvas = np.full((height, width), background, np.uint8)
    ui = np.zeros((height, width), np.uint8)
    ih = int(IMAGE_HEIGHT_FRACTION * height)
    iw = fan_width(ih) if sector else int(round(image.shape[1] * ih / image.shape[0]))
    iw = min(iw, int(0.62 * width))
    picture = cv2.resize(image, (iw, ih), interpolation=cv2.INTER_AREA)
    x0, y0 = (width - iw) // 2, int(0.16 * height)
    area = canvas[y0 : y0 + ih, x0 : x0 + iw]
    inside = fan_mask(ih, iw) if sector else np.ones((ih, iw), bool)
    area[inside] = picture[inside]
    content = np.zeros((height, width), bool)
    content[y0 : y0 + ih, x0 : x0 + iw] = inside & (picture > background + CONTENT_MARGIN)
    gap, scale = max(2, int(GAP_FRACTION * height)), width * TEXT_SCALE_PER_PX
    line_y = y0 - gap
    patient = np.zeros((height, width), np.uint8)
    for text in reversed(HEADER):  # bottom line first, upwards
        h = _text(canvas, patient if text == PATIENT_LINE else ui, text, (x0, line_y), scale)
        line_y -= h + gap
    ui |= patient
    text_x, text_y = max(2, x0 - int(0.11 * width)), y0 + 2 * gap
    for text in SETTINGS:
        text_y += _text(canvas, ui, text, (text_x, text_y), 0.8 * scale) + gap
    bar_x, bar_w = x0 + iw + 2 * gap, max(4, int(0.01 * width))
    ramp = np.linspace(*BAR_LEVELS, ih // 2).astype(np.uint8)[:, None]
    canvas[y0 : y0 + ih // 2, bar_x : bar_x + bar_w] = ramp
    ui[y0 : y0 + ih // 2, bar_x : bar_x + bar_w] = 1
    tgc_x = bar_x + bar_w + 2 * gap
    ys = np.linspace(y0, y0 + ih, 12)
    pts = np.int32([[tgc_x + gap * (1 + math.sin(i)), y] for i, y in enumerate(ys)])
    cv2.polylines(canvas, [pts], False, TEXT_LEVEL, 1, cv2.LINE_AA)
    cv2.polylines(ui, [pts], False, 1, 3)
    scale_x = tgc_x + 4 * gap
    for k in range(5):
        y = y0 + k * (ih - 1) // 4
        cv2.line(canvas, (scale_x, y), (scale_x + gap, y), TEXT_LEVEL, 1)
        cv2.line(ui, (scale_x, y), (scale_x + gap, y), 1, 3)
        _text(canvas, ui, str(k), (scale_x + 2 * gap, y + gap // 2), 0.6 * scale)
    _text(canvas, ui, CAPTION, (x0, y0 + ih + 3 * gap), scale)
    menu_top = height - int(0.06 * height)
    canvas[menu_top:] = MENU_LEVEL
    ui[menu_top:] = 1
    step = width // len(MENU)
    for i, text in enumerate(MENU):
        _text(canvas, ui, text, (i * step + gap, height - gap), 0.8 * scale)
    if video_range:
        canvas = (VIDEO_BLACK + canvas.astype(np.float32) * VIDEO_SPAN / 255).round().astype(np.uint8)
    ui_mask = (ui > 0) & ~content
    ys_, xs_ = np.nonzero(content)
    box = (int(xs_.min()), int(ys_.min()), int(xs_.max()) + 1, int(ys_.max()) + 1)
    truth = Truth(content, ui_mask, box, (patient > 0) & ~content)
    return cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR), truth


class Score(NamedTuple):
    undecided: bool
    cut_px: int  # the most the ROI cuts into the content's box on any side (0: none)
    cut_fraction: float  # the content's share outside the ROI
    ui_pixels: int  # annotation pixels inside the ROI
    patient_pixels: int = 0  # of them, the patient line's


def score(roi, truth: Truth) -> Score:
    """How the (x, y, w, h) ``roi`` (an undecided one scores as such) frames the image of ``truth``."""
    if roi.undecided:
        return Score(True, 0, 1.0, 0, 0)
    x0, y0, x1, y1 = roi.x, roi.y, roi.x + roi.w, roi.y + roi.h
    bx0, by0, bx1, by1 = truth.box
    cut = max(0, x0 - bx0, y0 - by0, bx1 - x1, by1 - y1)
    total = int(np.count_nonzero(truth.content))
    kept = int(np.count_nonzero(truth.content[y0:y1, x0:x1]))
    ui = int(np.count_nonzero(truth.ui[y0:y1, x0:x1]))
    patient = 0 if truth.patient is None else int(np.count_nonzero(truth.patient[y0:y1, x0:x1]))
    return Score(False, cut, 1 - kept / total, ui, patient)


# How sonomap's own recordings encode (edge_runtime/sinks/mp4.py with the live preset): what a scanner's
# RTSP stream or recorded clip looks like after the same lossy path.
H264_PRESET, H264_CRF = "veryfast", 23


def h264(bgr: np.ndarray, preset: str = H264_PRESET, crf: int = H264_CRF) -> np.ndarray:
    """The BGR screen ``bgr`` after a real H.264 round trip (PyAV/libx264, yuv420p: a keyframe, as a
    stream's or a clip's first frame), decoded back to BGR."""
    import av

    height, width = bgr.shape[:2]
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.options = {"preset": preset, "crf": str(crf)}
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    packets = list(encoder.encode(av.VideoFrame.from_ndarray(i420, format="yuv420p")))
    packets += list(encoder.encode(None))
    decoder = av.CodecContext.create("h264", "r")
    frames = [f for p in packets for f in decoder.decode(p)] + list(decoder.decode(None))
    return cv2.cvtColor(frames[0].to_ndarray(format="yuv420p"), cv2.COLOR_YUV2BGR_I420)


def noisy(bgr: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """The BGR screen ``bgr`` through an analogue capture path: Gaussian noise of ``sigma`` grey levels
    on every pixel, the UI and the background as much as the image (the same on the three channels)."""
    gray = bgr[:, :, 0].astype(np.float32)
    gray += np.random.default_rng(seed).normal(0, sigma, gray.shape).astype(np.float32)
    return cv2.cvtColor(np.clip(np.round(gray), 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
