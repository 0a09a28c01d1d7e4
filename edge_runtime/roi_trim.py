"""Cutting off what closing joined to the image at the edges of a detected region (the header's text).

Auto-detection (:func:`edge_runtime.roi.detect_roi`) closes gaps so that an image's speckle becomes one
region; text printed closer than the closing kernel joins it. Input: the region's gray box, its content
pixels and the screen's background (level, floor). Output: the box less the bands of rows (columns) at
its edges that a whole row (column) of background parts from the rest and that are no image
(:func:`trim_box`).
"""

from __future__ import annotations

import numpy as np

from edge_runtime.likeness import image_black, image_likeness

# A band of rows (columns) at the detected region's edge that background parts from the rest, less
# than this fraction of the screen's height (width), is a line or two of text, not the image, even
# when it is dense enough to pass for one: a scanner's text lines measure about 3 % of the screen's
# height (the GE screen in pydicom's examples_jpeg2k.dcm, make-clip's patient line).
MIN_IMAGE_BAND_FRACTION = 0.1
Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive ends)


def trim_box(
    gray: np.ndarray, own: np.ndarray, box: Rect, background: tuple[int, int], screen: tuple[int, int]
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
    Nothing is cut when no band is image-like (the whole region is then judged as before)."""
    # The image's own black below a grey UI is the whole region's, not each band's: a band of the
    # image's dark depth, or text, is judged against the same black as the rest of the image.
    level, floor = background
    x0, y0, x1, y1 = box
    judged = level, floor, image_black(gray[y0:y1, x0:x1], level, floor)
    while True:
        trimmed = _trim_bands(gray, own, box, judged, screen, rows=True)
        trimmed = _trim_bands(gray, own, trimmed, judged, screen, rows=False)
        if trimmed == box:
            return box
        box = trimmed


def _trim_bands(
    gray: np.ndarray,
    own: np.ndarray,
    box: Rect,
    judged: tuple[int, int, int],
    screen: tuple[int, int],
    rows: bool,
) -> Rect:
    """:func:`trim_box`'s cut along one axis (``rows``: bands of rows, else of columns); ``judged``:
    (level, floor, black) as :func:`edge_runtime.likeness.image_likeness` takes them."""
    x0, y0, x1, y1 = box
    level, floor, black = judged
    thinnest = MIN_IMAGE_BAND_FRACTION * screen[0 if rows else 1]
    start = y0 if rows else x0
    occupied = np.count_nonzero(own[y0:y1, x0:x1], axis=1 if rows else 0)
    marks = np.diff(np.concatenate(([0], (occupied > 0).astype(np.int8), [0])))
    bands = list(zip(np.flatnonzero(marks == 1).tolist(), np.flatnonzero(marks == -1).tolist(), strict=True))

    def looks(band: tuple[int, int]) -> bool:
        a, b = start + band[0], start + band[1]
        part = gray[a:b, x0:x1] if rows else gray[y0:y1, a:b]
        return b - a >= thinnest and not image_likeness(part, level, floor=floor, black=black)

    first = next((i for i, band in enumerate(bands) if looks(band)), None)
    if first is None:
        return box
    last = next(i for i in range(len(bands) - 1, first - 1, -1) if i == first or looks(bands[i]))
    # To the image's own bands, not to the box's ends: after the other axis was cut (the header), the
    # box still spans what only that cut part reached (a patient line wider than the image), and a
    # margin kept there would take in the grey bar or TGC curve drawn beside the image.
    low, high = start + bands[first][0], start + bands[last][1]
    return (x0, low, x1, high) if rows else (low, y0, high, y1)
