"""The HUD row: sonomap's status line and the AI state badge, drawn on every rendered frame.

Input: the frame's size, the ROI, the HUD values (None when ``overlay.hud`` is off) and the AI's
state (:class:`edge_runtime.aistate.AiStatus`). Output: a :class:`Row` layout, drawn by
:func:`draw` onto the frame (BGR path) or onto a patch pasted into the I420 planes (YUV path).

Layout: ``[RESEARCH USE ONLY | fps | latency | backend][AI STATE detail]``: the HUD text on dark,
then the badge in its state's colour, the row ending at the ROI's right edge. It sits above the ROI
when the screen has room there (nothing of the ultrasound is covered), else below it, else in the
ROI's bottom-right corner, no wider than the ROI (the legends then move up above it:
:func:`rows_in_roi`). The badge is drawn even when the HUD is off, and the AI's state is never
hidden or cut: on a frame too small for the row (a DICOM cine, a thumbnail) the row gives way in
this order until it fits: the text shrinks to MIN_HUD_SCALE, the HUD text goes, the badge's detail
goes, the margins and padding shrink to TIGHT_MARGIN_PX / TIGHT_PAD_PX, and last the badge's label
alone shrinks below MIN_HUD_SCALE (to MIN_BADGE_SCALE at most). Its colour still tells the state
when its words are too small to read. From 52 x 16 pixels every state's label keeps MIN_HUD_SCALE; a
smaller frame (down to about 20 x 8) still shows the whole badge, its label smaller.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import cv2
import numpy as np

from edge_runtime.aistate import AiStatus
from edge_runtime.roi import Roi

RESEARCH_NOTICE = "RESEARCH USE ONLY"
FONT = cv2.FONT_HERSHEY_SIMPLEX
HUD_SCALE = 0.6  # about 13 px tall text: reads from the operator's distance at 1080p
MIN_HUD_SCALE = 0.3  # the smallest that still reads (a 240-line DICOM cine)
MARGIN_PX = 8  # between the row and the ROI / the frame's edge
ROW_PAD_PX = 6  # padding around the row's text
DESCENDER_PX = 2  # room under the baseline for g, p, y
TIGHT_MARGIN_PX = 0  # a tiny frame: the badge touches the frame's edge rather than lose its label
TIGHT_PAD_PX = 2  # a tiny frame: keeps the label's anti-aliased edge off the badge's edge
MIN_BADGE_SCALE = 0.1  # the badge's label alone may shrink this far below MIN_HUD_SCALE (colour still reads)
WHITE = (255, 255, 255)
DARK = (20, 20, 20)
# One colour per state, told apart at a glance and after H.264's 4:2:0 chroma subsampling.
AI_BADGE_BGR = {
    "ON": (0, 150, 0),
    "LOADING": (200, 110, 0),
    "STALLED": (0, 170, 255),
    "ERROR": (0, 0, 210),
    "OFF": (150, 40, 150),
}  # OFF: violet, not a grey an ultrasound image also has
AI_BADGE_TEXT_BGR = {"STALLED": DARK}  # dark text on amber; white on the others
BADGE_THICKNESS = 2  # bold: the state must read at a glance


class Row(NamedTuple):
    text: str | None  # HUD text (None: HUD off)
    label: str | None  # badge text (None: no AI state given)
    state: str | None
    scale: float
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) of the whole row, frame pixels, exclusive
    hud_w: int  # width of the HUD part; the badge is the rest
    pad: int = ROW_PAD_PX  # around the text: less on a tiny frame


def hud_text(hud: dict) -> str:
    parts = [RESEARCH_NOTICE]
    if hud.get("rec"):  # the live recorder's state: REC, REC PAUSED: disk low, REC FAILED
        parts.append(str(hud["rec"]))
    if "fps" in hud:  # 0 until two frames are timed: "--", not a rate that reads as a stall
        parts.append(f"{hud['fps']:.1f} fps" if hud["fps"] > 0 else "-- fps")
    if "latency_ms" in hud:
        parts.append(f"AI {hud['latency_ms']:.0f} ms")
    if hud.get("mask_age_ms") is not None:
        parts.append(f"mask age {hud['mask_age_ms']:.0f} ms")
    if "backend" in hud:
        parts.append(str(hud["backend"]))
    return "  |  ".join(parts)


def layout(frame_w: int, frame_h: int, roi: Roi, hud: dict | None, ai: AiStatus | None) -> Row | None:
    """Where the row goes on this frame; None when there is nothing to draw. Above the ROI when the
    screen has room there, else below it, else (an image filling the frame: a DICOM cine, a still)
    in the ROI's bottom-right corner, kept within the ROI's width so it covers as little as it can."""
    text = None if hud is None else hud_text(hud)
    label = None if ai is None else ai.label
    short = None if ai is None else replace(ai, detail="").label
    if text is None and label is None:
        return None
    bottom = roi.y + roi.h
    fit = _fit(text, label, short, frame_w, frame_h)
    height, margin = fit.height, fit.margin
    x1 = min(roi.x + roi.w, frame_w - margin)
    if roi.y >= height + 2 * margin:  # above: nothing of the ultrasound is covered
        y1 = roi.y - margin
    elif frame_h - bottom >= height + 2 * margin:  # below, as clear of the image
        y1 = bottom + margin + height
    else:  # in the ROI's corner, no wider or taller than the ROI allows
        fit = _fit(text, label, short, roi.w, roi.h)
        height, margin = fit.height, fit.margin
        x1 = roi.x + roi.w - margin
        y1 = bottom - margin
    x0 = max(0, x1 - fit.width)
    box = (x0, max(0, y1 - height), min(frame_w, x0 + fit.width), y1)
    return Row(fit.text, fit.label, None if ai is None else ai.state, fit.scale, box, fit.hud_w, fit.pad)


class _Fit(NamedTuple):
    text: str | None
    label: str | None
    scale: float
    margin: int
    pad: int
    hud_w: int
    width: int
    height: int


def _fit(text: str | None, label: str | None, short: str | None, room_w: int, room_h: int) -> _Fit:
    """The row's text, scale and size that fit ``room_w`` x ``room_h`` (margins included), giving way
    in the order the module docstring gives: the badge's label is the last to shrink, never dropped."""
    scale, margin, pad = HUD_SCALE, MARGIN_PX, ROW_PAD_PX
    while True:
        hud_w, width, height = _size(text, label, scale, pad)
        inner_w, inner_h = max(1, room_w - 2 * margin), max(1, room_h - 2 * margin)
        if width <= inner_w and height <= inner_h:
            break
        shrink = min(inner_w / width, inner_h / height)  # below 1: one side does not fit
        if scale > MIN_HUD_SCALE:  # small frames (DICOM cine): shrink to stay whole
            scale = max(MIN_HUD_SCALE, scale * shrink)
        elif text is not None and label is not None:
            text = None  # still too wide: the AI state is what must stay on screen
        elif label is not None and label != short:
            label = short
        elif margin > TIGHT_MARGIN_PX or pad > TIGHT_PAD_PX:
            margin, pad = TIGHT_MARGIN_PX, TIGHT_PAD_PX
        elif label is not None and scale > MIN_BADGE_SCALE:
            scale = max(MIN_BADGE_SCALE, scale * shrink)
        else:
            break  # a frame smaller than the smallest badge: drawn cut to the frame
    return _Fit(text, label, scale, margin, pad, hud_w, width, height)


def rows_in_roi(row: Row | None, roi: Roi) -> int:
    """How many of the ROI's bottom rows the HUD row covers (0 when it sits above or below the ROI)."""
    if row is None or row.box[3] <= roi.y or row.box[1] >= roi.y + roi.h:
        return 0
    return roi.y + roi.h - row.box[1]


def _size(text: str | None, label: str | None, scale: float, pad: int) -> tuple[int, int, int]:
    """(HUD part's width, row's width, row's height) in pixels."""
    (tw, th), _ = cv2.getTextSize(text or "", FONT, scale, 1)
    (bw, bh), _ = cv2.getTextSize(label or "", FONT, scale, BADGE_THICKNESS)
    hud_w = tw + 2 * pad if text else 0
    width = hud_w + (bw + 2 * pad if label else 0)
    return hud_w, width, max(th, bh) + 2 * pad + DESCENDER_PX


def draw(out: np.ndarray, row: Row, ox: int = 0, oy: int = 0) -> None:
    """Draw ``row`` onto ``out``, whose top-left pixel is frame pixel (ox, oy)."""
    x0, y0, x1, y1 = row.box
    x0, y0, x1, y1 = x0 - ox, y0 - oy, x1 - ox, y1 - oy
    baseline = y1 - row.pad - DESCENDER_PX
    if row.text:
        cv2.rectangle(out, (x0, y0), (x0 + row.hud_w - 1, y1 - 1), DARK, -1)
        cv2.putText(out, row.text, (x0 + row.pad, baseline), FONT, row.scale, WHITE, 1, cv2.LINE_AA)
    if row.label:
        cv2.rectangle(out, (x0 + row.hud_w, y0), (x1 - 1, y1 - 1), AI_BADGE_BGR.get(row.state, DARK), -1)
        cv2.putText(
            out,
            row.label,
            (x0 + row.hud_w + row.pad, baseline),
            FONT,
            row.scale,
            AI_BADGE_TEXT_BGR.get(row.state, WHITE),
            BADGE_THICKNESS,
            cv2.LINE_AA,
        )
