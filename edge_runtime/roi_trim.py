"""Cutting off what closing joined to the image at the edges of a detected region (the header's text).

Auto-detection (:func:`edge_runtime.roi.detect_roi`) closes gaps so that an image's speckle becomes one
region; text printed closer than the closing kernel joins it. Input: the region's gray box, its content
pixels (and those of them past H.264's ringing) and the screen's background (level, floor). Output: the
box less the bands of rows (columns) at its edges that a row (column) of background parts from the rest
and that are no image (:func:`trim_box`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from edge_runtime.likeness import image_black, image_likeness

# A band of rows (columns) at the detected region's edge that background parts from the rest, less
# than this fraction of the screen's height (width), is a line or two of text, not the image, even
# when it is dense enough to pass for one: a scanner's text lines measure about 3 % of the screen's
# height (the GE screen in pydicom's examples_jpeg2k.dcm, make-clip's patient line).
MIN_IMAGE_BAND_FRACTION = 0.1
# Through H.264 no row between a text line and the image is background alone: the codec rings around
# both, within its transform blocks. A row (column) then parts them when none of its pixels lies past
# the ringing (the ``strong`` mask) and its content pixels are sparse: under this share of its span
# from the first to the last (ringing measured 2 % to 37 % of it between the patient line or the
# caption and the vendored BUSI images; an image's rows, dim depth included, 90 % or more).
SPARSE_FRACTION = 0.5
# Such a looser parting cuts only a text line: a band thinner than MIN_IMAGE_BAND_FRACTION holding
# pixels this many grey levels past the background (scanners draw text to be read, 220 on
# tests/roi_screens.py's screens, up to 255 through H.264), not a sector's dim depth or flank.
TEXT_CONTRAST = 96
# The image's own columns (rows) are past the ringing along at least this share of the box's height
# (width): a linear image's along 0.8 of it, a fan's middle too, a text line's or label's a few percent.
IMAGE_LINE_FRACTION = 0.5
# The SPARSE_FRACTION test parts text from the image only where a row's (column's) content spans at
# least an H.264 macroblock (16 px; the codec's transform blocks lie within one): ringing around one edge
# stays in the blocks that edge crosses, so a narrower cluster fills its own span whether it is image or
# ringing (the specks above a fan's narrow top corner that kept a video-range fan joined to the patient
# line above it). It only parts: where no text line is cut, the edge stays where any cluster reaches.
MIN_DENSE_SPAN_PX = 16
Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive ends)


class Judged(NamedTuple):
    """What a band is judged against: the screen's background level and floor, the image's own black
    (:func:`edge_runtime.likeness.image_black`) and the screen's (H, W)."""

    level: int
    floor: int
    black: int
    screen: tuple[int, int]


def trim_box(
    gray: np.ndarray,
    own: np.ndarray,
    strong: np.ndarray,
    box: Rect,
    background: tuple[int, int],
    screen: tuple[int, int],
) -> Rect:
    """``box`` (x0, y0, x1, y1) of the largest region of the gray screen ``gray``, less what closing
    joined to the image at its edges, such as the scanner's header text. A band of rows (or columns)
    at an edge of the box, parted from the rest by a whole row (column) free of the region's content
    pixels (``own``: True for content), is cut when it is thinner than MIN_IMAGE_BAND_FRACTION of the
    ``screen`` (H, W) or does not look like an image (:data:`edge_runtime.likeness.TO_DECIDE`, against
    the screen's ``background``: (level, floor) as :func:`edge_runtime.roi.screen_background` gives);
    rows, then columns, until nothing more is cut. A band is judged across the whole box, not over its
    own extent, over which a line of text is as bright as an image. An image's rows hold content,
    however narrow it is (a sector's apex), so an image is not split into bands: only an edge of it that
    a whole row of background parts from the rest (a few rows of dim depth) can go with the text.
    Nothing is cut when no band is image-like (the whole region is then judged as before).

    Then the same again with rows (columns) that H.264's ringing fills parting too (``strong``: the
    content pixels past the ringing; SPARSE_FRACTION), cutting only text lines (TEXT_CONTRAST): a
    looser parting would otherwise split dim depth off the image as well."""
    # The image's own black below a grey UI is the whole region's, not each band's: a band of the
    # image's dark depth, or text, is judged against the same black as the rest of the image.
    level, floor = background
    x0, y0, x1, y1 = box
    judged = Judged(level, floor, image_black(gray[y0:y1, x0:x1], level, floor), screen)
    for ringing in (False, True):
        while True:
            trimmed = _trim_bands(gray, own, strong, box, judged, rows=True, ringing=ringing)
            trimmed = _trim_bands(gray, own, strong, trimmed, judged, rows=False, ringing=ringing)
            if trimmed == box:
                break
            box = trimmed
    return box


def _parting(
    own: np.ndarray,
    strong: np.ndarray,
    box: Rect,
    rows: bool,
    ringing: bool,
    min_span: int = MIN_DENSE_SPAN_PX,
) -> np.ndarray:
    """bool per row (``rows``, else per column) of ``box``: whether it holds the image or text, i.e.
    does not part bands: any content pixel (``own``), or with ``ringing`` any pixel past the ringing
    (``strong``) or content filling SPARSE_FRACTION of its span, when that span is ``min_span`` or more."""
    x0, y0, x1, y1 = box
    lines = own[y0:y1, x0:x1] if rows else own[y0:y1, x0:x1].T
    count = np.count_nonzero(lines, axis=1)
    if not ringing:
        return count > 0
    span = lines.shape[1] - np.argmax(lines[:, ::-1], axis=1) - np.argmax(lines, axis=1)
    across = strong[y0:y1, x0:x1] if rows else strong[y0:y1, x0:x1].T
    # Only across the image's own columns (rows): those past the ringing along most of the box. Text
    # beside the image (a depth scale's first label), under a patient line wider than the image, would
    # otherwise fill the rows that part that line from the image.
    dense = np.count_nonzero(across, axis=0) >= IMAGE_LINE_FRACTION * across.shape[0]
    occupied = np.count_nonzero(across[:, dense], axis=1) > 0
    return occupied | ((count > SPARSE_FRACTION * span) & (span >= min_span))


def _trim_bands(
    gray: np.ndarray,
    own: np.ndarray,
    strong: np.ndarray,
    box: Rect,
    judged: Judged,
    rows: bool,
    ringing: bool,
) -> Rect:
    """:func:`trim_box`'s cut along one axis (``rows``: bands of rows, else of columns), parted as
    :func:`_parting` says."""
    x0, y0, x1, y1 = box
    thinnest = MIN_IMAGE_BAND_FRACTION * judged.screen[0 if rows else 1]
    start = y0 if rows else x0
    occupied = _parting(own, strong, box, rows, ringing)
    marks = np.diff(np.concatenate(([0], occupied.astype(np.int8), [0])))
    bands = list(zip(np.flatnonzero(marks == 1).tolist(), np.flatnonzero(marks == -1).tolist(), strict=True))

    def looks(band: tuple[int, int]) -> bool:
        a, b = start + band[0], start + band[1]
        part = gray[a:b, x0:x1] if rows else gray[y0:y1, a:b]
        if ringing:
            return b - a >= thinnest
        likeness = image_likeness(part, judged.level, floor=judged.floor, black=judged.black)
        return b - a >= thinnest and not likeness

    first = next((i for i, band in enumerate(bands) if looks(band)), None)
    if first is None:
        return box
    last = next(i for i in range(len(bands) - 1, first - 1, -1) if i == first or looks(bands[i]))
    if ringing:  # only text lines go, with what lies beyond them: the rest is the image's dim edge
        text = [
            i for i, band in enumerate(bands) if not looks(band) and _bright(gray, box, band, judged, rows)
        ]
        first = max((i + 1 for i in text if i < first), default=0)
        last = min((i - 1 for i in text if i > last), default=len(bands) - 1)
        # A line or two of text, not a fan's depth that dark rows split into thin bright bands.
        if bands[first][0] > thinnest:
            first = 0
        if len(occupied) - bands[last][1] > thinnest:
            last = len(bands) - 1
    # To the image's own bands, not to the box's ends: after the other axis was cut (the header), the
    # box still spans what only that cut part reached (a patient line wider than the image), and a
    # margin kept there would take in the grey bar or TGC curve drawn beside the image.
    low, high = start + bands[first][0], start + bands[last][1]
    if ringing:  # where no text line went, as far as a cluster of any span reaches: MIN_DENSE_SPAN_PX
        held = np.flatnonzero(_parting(own, strong, box, rows, ringing, min_span=0))  # parts text only
        low = start + int(held[0]) if first == 0 else low
        high = start + int(held[-1]) + 1 if last == len(bands) - 1 else high
    return (x0, low, x1, high) if rows else (low, y0, high, y1)


def _bright(gray: np.ndarray, box: Rect, band: tuple[int, int], judged: Judged, rows: bool) -> bool:
    """Whether the ``band`` of rows (``rows``, else columns, from the ``box``'s start) holds a pixel
    TEXT_CONTRAST past the background: text, drawn to be read."""
    x0, y0, x1, y1 = box
    a, b = ((y0 if rows else x0) + end for end in band)
    part = gray[a:b, x0:x1] if rows else gray[y0:y1, a:b]
    return int(part.max()) >= judged.level + TEXT_CONTRAST
