"""Whether an auto-detected ROI still frames the ultrasound image: the image still reaches its edges.

Auto-detection (:func:`edge_runtime.roi.detect_roi`) gives the image's bounding box, so a rectangular
image reaches every side of its ROI. A scanner that changes its layout without changing the frame size
(the image zoomed out or shrunk by a depth change, a dual view, the image moved) leaves the old ROI
holding part of the image and the screen around it, header text and patient line included; the
image-likeness check (:mod:`edge_runtime.likeness`) still passes, since much of the region is image.

Input: the gray sample of the ROI that the likeness check reads (:func:`edge_runtime.likeness.roi_sample`)
and the screen's background level. Output: per side, whether its edge band is image (:func:`filled_sides`,
measured when the ROI is chosen), and later why the ROI no longer frames the image (:func:`emptied`): a
side that was image when the ROI was chosen and whose band is now background. The band's median is
looked at, not its bright share: text on black and analogue noise on the background both leave the
median at the background, while tissue (even with a shadow over part of the band) keeps it above.
The band is looked at only where the image lay when the ROI was chosen (its footprint: the convex hull
of the image's content, the whole ROI for a rectangular image): a curvilinear probe's fan fills only
part of each side's band (the arc at the bottom, its flanks at the sides), the rest being the screen's
background, so over the whole band the median is background and the side was never checked. The fan
stays where the scanner draws it while the probe moves, so its footprint stays image.
A side the image did not fill when chosen (a dark depth, a side the fan barely touches) is never checked, so a
probe moving over the same image area never makes the ROI be chosen again; nor is any side while the
ROI as a whole has lost much of its brightness (the gain turned down dims its edges with the rest:
whether it is still an image is the likeness check's to say, with its hysteresis).
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

# The band along each side that is looked at: this share of the sample's side across it (at least one
# sample row or column), deep enough that the thin frame scanners draw around the image is not all of it.
EDGE_BAND_FRACTION = 0.04
# A side's band is image when its median is at least this many grey levels above the background level;
# the value likeness.FLAT_MIN_CONTRAST takes for "clearly brighter than the background".
FILLED_CONTRAST = 20
SIDES = ("top", "bottom", "left", "right")
# The ROI's brightness: this percentile of its sample, above the background level. An image that still
# covers a quarter of the old ROI after a layout change keeps it; a gain turned down lowers it.
BRIGHTNESS_PERCENTILE = 75
# The sides are checked only while the ROI keeps at least this share of the brightness it had when chosen.
KEPT_BRIGHTNESS = 0.5


# A side's footprint must cover at least this share of its band to be checked: a fan's side band that
# only its tip touches (a few samples) says nothing reliable about where the image is.
MIN_FOOTPRINT_FRACTION = 0.1


class Edges(NamedTuple):
    """What an auto-detected ROI looked like when chosen: the sides the image filled, in SIDES order,
    its brightness (BRIGHTNESS_PERCENTILE, above the background level) and its footprint (bool, the
    sample's shape: where the image lay; None: the whole sample)."""

    filled: tuple[bool, ...]
    brightness: float
    footprint: np.ndarray | None = None


def footprint(sample: np.ndarray, level: int) -> np.ndarray:
    """bool mask of the gray ``sample`` (H, W): the convex hull of its pixels clearly brighter than the
    background (FILLED_CONTRAST over ``level``): a rectangular image's whole box, a fan's outline. A
    speck of text left in a corner can only widen it toward the whole box, i.e. toward the check made
    on a rectangle."""
    bright = np.ascontiguousarray(sample >= level + FILLED_CONTRAST, dtype=np.uint8)
    points = cv2.findNonZero(bright)
    mask = np.zeros(sample.shape[:2], np.uint8)
    if points is not None:
        cv2.fillConvexPoly(mask, cv2.convexHull(points), 1)
    return mask.astype(bool)


def _bands(shape: tuple[int, ...]) -> tuple[tuple[slice, slice], ...]:
    """Each side's band of a sample of ``shape`` (H, W), in SIDES order, as (rows, columns) slices."""
    height, width = shape[:2]
    rows = max(1, int(round(EDGE_BAND_FRACTION * height)))
    cols = max(1, int(round(EDGE_BAND_FRACTION * width)))
    every = slice(None)
    return (
        (slice(0, rows), every),
        (slice(height - rows, height), every),
        (every, slice(0, cols)),
        (every, slice(width - cols, width)),
    )


def _band_medians(sample: np.ndarray, where: np.ndarray | None) -> tuple[float | None, ...]:
    """The median grey level of each side's band of the gray ``sample`` (H, W), in SIDES order, over
    the band's part inside ``where`` (None: all of it); None for a side whose part is under
    MIN_FOOTPRINT_FRACTION of its band."""
    medians = []
    for band in _bands(sample.shape):
        values = sample[band]
        if where is not None:
            inside = where[band]
            values = (
                values[inside] if np.count_nonzero(inside) >= MIN_FOOTPRINT_FRACTION * inside.size else None
            )
        medians.append(None if values is None else float(np.median(values)))
    return tuple(medians)


def _brightness(sample: np.ndarray, level: int) -> float:
    return float(np.percentile(sample, BRIGHTNESS_PERCENTILE)) - level


def filled_sides(sample: np.ndarray, level: int) -> Edges:
    """The :class:`Edges` of the ROI whose gray ``sample`` this is, on a screen whose background is at
    or below ``level``: measured when the ROI is chosen."""
    where = footprint(sample, level)
    medians = _band_medians(sample, where)
    filled = tuple(median is not None and median >= level + FILLED_CONTRAST for median in medians)
    return Edges(filled, _brightness(sample, level), where)


def emptied(sample: np.ndarray, level: int, edges: Edges | None) -> str:
    """``""`` while the image still reaches every side it filled (``edges``, from :func:`filled_sides`;
    None: nothing to check) or the ROI has dimmed as a whole, else why not, naming the sides whose band
    (within the footprint) is now background (at or below ``level``)."""
    if edges is None or _brightness(sample, level) < KEPT_BRIGHTNESS * edges.brightness:
        return ""
    where = edges.footprint
    if where is not None and where.shape != sample.shape[:2]:  # another sampling: look at whole bands
        where = None
    gone = [
        side
        for side, was, median in zip(SIDES, edges.filled, _band_medians(sample, where), strict=True)
        if was and median is not None and median <= level
    ]
    return f"the image left its {', '.join(gone)} edge(s): the screen's layout changed" if gone else ""
