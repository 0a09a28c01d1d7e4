"""The HUD row: sonomap's status line and the AI state badge, drawn on every rendered frame.

Input: the frame width, the ROI, the HUD values (None when ``overlay.hud`` is off) and the AI's
state (:class:`edge_runtime.aistate.AiStatus`). Output: a :class:`Row` layout, drawn by
:func:`draw` onto the frame (BGR path) or onto a patch pasted into the I420 planes (YUV path).

Layout: ``[RESEARCH USE ONLY | fps | latency | backend][AI STATE detail]``: the HUD text on dark,
then the badge in its state's colour, the row ending at the ROI's right edge. It sits above the ROI
when the screen has room there (nothing of the ultrasound is covered), else in the ROI's
bottom-right corner. The badge is drawn even when the HUD is off, and on a frame too narrow for both
the HUD text gives way: the AI's state is never hidden.
"""

from __future__ import annotations

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


def layout(frame_w: int, roi: Roi, hud: dict | None, ai: AiStatus | None) -> Row | None:
    """Where the row goes on this frame; None when there is nothing to draw."""
    text = None if hud is None else hud_text(hud)
    label = None if ai is None else ai.label
    if text is None and label is None:
        return None
    scale, room = HUD_SCALE, max(1, frame_w - 2 * MARGIN_PX)
    while True:
        (tw, th), _ = cv2.getTextSize(text or "", FONT, scale, 1)
        (bw, bh), _ = cv2.getTextSize(label or "", FONT, scale, BADGE_THICKNESS)
        hud_w = tw + 2 * ROW_PAD_PX if text else 0
        width = hud_w + (bw + 2 * ROW_PAD_PX if label else 0)
        if width <= room:
            break
        if scale > MIN_HUD_SCALE:  # small frames (DICOM cine): shrink to stay whole
            scale = max(MIN_HUD_SCALE, scale * room / width)
        elif text is not None and label is not None:
            text = None  # still too wide: the AI state is what must stay on screen
        else:
            break
    height = max(th, bh) + 2 * ROW_PAD_PX + DESCENDER_PX
    x1 = min(roi.x + roi.w, frame_w - MARGIN_PX)
    x0 = max(0, x1 - width)
    above = roi.y >= height + 2 * MARGIN_PX
    y1 = roi.y - MARGIN_PX if above else roi.y + roi.h - MARGIN_PX
    return Row(
        text, label, None if ai is None else ai.state, scale, (x0, max(0, y1 - height), x0 + width, y1), hud_w
    )


def draw(out: np.ndarray, row: Row, ox: int = 0, oy: int = 0) -> None:
    """Draw ``row`` onto ``out``, whose top-left pixel is frame pixel (ox, oy)."""
    x0, y0, x1, y1 = row.box
    x0, y0, x1, y1 = x0 - ox, y0 - oy, x1 - ox, y1 - oy
    baseline = y1 - ROW_PAD_PX - DESCENDER_PX
    if row.text:
        cv2.rectangle(out, (x0, y0), (x0 + row.hud_w - 1, y1 - 1), DARK, -1)
        cv2.putText(out, row.text, (x0 + ROW_PAD_PX, baseline), FONT, row.scale, WHITE, 1, cv2.LINE_AA)
    if row.label:
        cv2.rectangle(out, (x0 + row.hud_w, y0), (x1 - 1, y1 - 1), AI_BADGE_BGR.get(row.state, DARK), -1)
        cv2.putText(
            out,
            row.label,
            (x0 + row.hud_w + ROW_PAD_PX, baseline),
            FONT,
            row.scale,
            AI_BADGE_TEXT_BGR.get(row.state, WHITE),
            BADGE_THICKNESS,
            cv2.LINE_AA,
        )
