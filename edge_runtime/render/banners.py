"""Banners: the full-width warning lines at the top of the ROI (AI STALLED, AI LOADING, AI LAGGING,
NO SIGNAL, a capture toast).

Input: the banners as ``(level, text)`` pairs (level ``error``, ``warning`` or ``info``) and the ROI's
width and height in pixels. Output: :func:`layout` gives the :class:`Line` list (each line's rows in
the ROI, colour, font scale and the text as it fits), :func:`height` the rows they take from the ROI's
top, and :func:`draw` paints them onto the ROI's BGR pixels: the BGR path's crop of the ROI, or the
YUV path's box of exactly that height (:func:`edge_runtime.yuv.bgr_box`), so both paths show the same.

Two rules pull against each other: the AI's state must always be visible, and the overlay must never
hide the ultrasound image. So a ROI keeps each banner on its own full-size line (today's look on a
scanner screen) only while all of them together take at most :data:`MAX_COVERAGE` of its height.
Beyond that the lines (and their font) get lower, down to a height whose text still reads
(:data:`MIN_BANNER_PX`); when even then not all fit, the most severe banners keep their own lines and
the rest share the last one, joined with :data:`JOINER` and in its most severe level's colour. Text
wider than the ROI shrinks down to the minimum scale and is then cut with :data:`ELLIPSIS`: a line
that visibly ends is better than one that silently runs off the edge.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

from edge_runtime.render.hudrow import MIN_HUD_SCALE

FONT = cv2.FONT_HERSHEY_SIMPLEX
BANNER_PX = 34  # one full-size line: BANNER_SCALE text with room above and below
BANNER_SCALE = 0.7  # larger than the HUD's 0.6: a banner is a warning
BANNER_THICKNESS = 2  # bold: a banner must read at a glance
BANNER_BASELINE_PX = 10  # on a full-size line the baseline sits this far above its bottom edge
TEXT_MARGIN_PX = 8  # the text keeps this far from the ROI's left and right edges
MIN_SCALE = MIN_HUD_SCALE  # the smallest text that still reads (a 240-line DICOM cine)
# the lowest line: one that holds MIN_SCALE text as a full-size line holds BANNER_SCALE text
MIN_BANNER_PX = math.ceil(BANNER_PX * MIN_SCALE / BANNER_SCALE)
MAX_COVERAGE = 0.15  # all banners together take at most this share of the ROI's height
FIT_TRIES = 8  # text width is not linear in the scale (stroke width): re-measure this often at most
JOINER = " | "  # between banners sharing a line
ELLIPSIS = "..."  # ends a cut text
# red, amber, grey: the usual alarm colours, none of them a colour the overlay paints
BANNER_BGR = {"error": (0, 0, 200), "warning": (0, 140, 230), "info": (90, 90, 90)}
SEVERITY = ("error", "warning", "info")  # most severe first; an unknown level counts as info
WHITE = (255, 255, 255)


class Line(NamedTuple):
    y0: int  # first row, from the ROI's top
    height: int  # rows
    bgr: tuple[int, int, int]
    text: str  # as drawn: cut with ELLIPSIS when it did not fit
    scale: float


def layout(banners: list[tuple[str, str]], roi_w: int, roi_h: int) -> list[Line]:
    """The lines ``banners`` are drawn as on a ``roi_w`` x ``roi_h`` ROI (empty: nothing to draw)."""
    if not banners or roi_w <= 0 or roi_h <= 0:
        return []
    budget = int(MAX_COVERAGE * roi_h)
    # as many lines as fit the budget at a legible height; at least one: a banner is never dropped
    count = next((k for k in range(len(banners), 0, -1) if budget // k >= MIN_BANNER_PX), 1)
    line_px = min(BANNER_PX, roi_h, max(MIN_BANNER_PX, budget // count))
    line_scale = BANNER_SCALE * line_px / BANNER_PX
    room = roi_w - 2 * TEXT_MARGIN_PX
    lines = []
    for i, group in enumerate(_groups(banners, count)):
        level = min((lv for lv, _ in group), key=_rank)
        scale, text = _fit(JOINER.join(text for _, text in group), room, line_scale)
        lines.append(Line(i * line_px, line_px, BANNER_BGR.get(level, BANNER_BGR["info"]), text, scale))
    return lines


def height(lines: list[Line]) -> int:
    """Rows the lines take from the ROI's top."""
    return lines[-1].y0 + lines[-1].height if lines else 0


def draw(region: np.ndarray, lines: list[Line]) -> None:
    """Paint ``lines`` onto ``region``, whose top-left pixel is the ROI's (it may be cut below them)."""
    for line in lines:
        y1 = line.y0 + line.height
        cv2.rectangle(region, (0, line.y0), (region.shape[1] - 1, y1 - 1), line.bgr, -1)
        if not line.text:
            continue
        # a lower line lifts its baseline by as much less, so the text stays centred in it
        baseline = y1 - round(BANNER_BASELINE_PX * line.height / BANNER_PX)
        cv2.putText(
            region,
            line.text,
            (TEXT_MARGIN_PX, baseline),
            FONT,
            line.scale,
            WHITE,
            BANNER_THICKNESS,
            cv2.LINE_AA,
        )


def _rank(level: str) -> int:
    return SEVERITY.index(level) if level in SEVERITY else len(SEVERITY) - 1


def _groups(banners: list[tuple[str, str]], count: int) -> list[list[tuple[str, str]]]:
    """``count`` groups, one a line. All fit: one banner a line, in the given order. Else the most
    severe keep their own lines and the rest share the last, so a cut end loses the least severe."""
    if count >= len(banners):
        return [[b] for b in banners]
    ordered = sorted(banners, key=lambda b: _rank(b[0]))  # stable: same level keeps its order
    return [[b] for b in ordered[: count - 1]] + [ordered[count - 1 :]]


def _width(text: str, scale: float) -> int:
    return cv2.getTextSize(text, FONT, scale, BANNER_THICKNESS)[0][0]


def _fit(text: str, room: int, line_scale: float) -> tuple[float, str]:
    """(scale, text) that fits ``room`` pixels: shrunk from ``line_scale`` down to MIN_SCALE at
    most, then cut with ELLIPSIS (nothing at all where even that does not fit)."""
    full_w = _width(text, BANNER_SCALE)
    scale = line_scale if full_w <= 0 else min(line_scale, BANNER_SCALE * room / full_w)
    scale = max(MIN_SCALE, scale)
    for _ in range(FIT_TRIES):
        width = _width(text, scale)
        if width <= room or scale <= MIN_SCALE:
            break
        scale = max(MIN_SCALE, scale * room / width)
    if _width(text, scale) <= room:
        return scale, text
    # the longest start of the text that fits with the ellipsis (binary search on its length)
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _width(text[:mid].rstrip() + ELLIPSIS, scale) <= room:
            lo = mid
        else:
            hi = mid - 1
    cut = text[:lo].rstrip() + ELLIPSIS
    return scale, cut if _width(cut, scale) <= room else ""
