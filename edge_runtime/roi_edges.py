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
A side the image did not fill when chosen (a sector's corners, a dark depth) is never checked, so a
probe moving over the same image area never makes the ROI be chosen again; nor is any side while the
ROI as a whole has lost much of its brightness (the gain turned down dims its edges with the rest:
whether it is still an image is the likeness check's to say, with its hysteresis).
"""

from __future__ import annotations

from typing import NamedTuple

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


class Edges(NamedTuple):
    """What an auto-detected ROI looked like when chosen: the sides the image filled, in SIDES order,
    and its brightness (BRIGHTNESS_PERCENTILE, above the background level)."""

    filled: tuple[bool, ...]
    brightness: float


def _band_medians(sample: np.ndarray) -> tuple[float, ...]:
    """The median grey level of each side's band of the gray ``sample`` (H, W), in SIDES order."""
    height, width = sample.shape[:2]
    rows = max(1, int(round(EDGE_BAND_FRACTION * height)))
    cols = max(1, int(round(EDGE_BAND_FRACTION * width)))
    bands = (sample[:rows], sample[height - rows :], sample[:, :cols], sample[:, width - cols :])
    return tuple(float(np.median(band)) for band in bands)


def _brightness(sample: np.ndarray, level: int) -> float:
    return float(np.percentile(sample, BRIGHTNESS_PERCENTILE)) - level


def filled_sides(sample: np.ndarray, level: int) -> Edges:
    """The :class:`Edges` of the ROI whose gray ``sample`` this is, on a screen whose background is at
    or below ``level``: measured when the ROI is chosen."""
    filled = tuple(median >= level + FILLED_CONTRAST for median in _band_medians(sample))
    return Edges(filled, _brightness(sample, level))


def emptied(sample: np.ndarray, level: int, edges: Edges | None) -> str:
    """``""`` while the image still reaches every side it filled (``edges``, from :func:`filled_sides`;
    None: nothing to check) or the ROI has dimmed as a whole, else why not, naming the sides whose band
    is now background (at or below ``level``)."""
    if edges is None or _brightness(sample, level) < KEPT_BRIGHTNESS * edges.brightness:
        return ""
    gone = [
        side
        for side, was, median in zip(SIDES, edges.filled, _band_medians(sample), strict=True)
        if was and median <= level
    ]
    return f"the image left its {', '.join(gone)} edge(s): the screen's layout changed" if gone else ""
