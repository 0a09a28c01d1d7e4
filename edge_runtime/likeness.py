"""Image-likeness: whether a region of a scanner screen holds an ultrasound (B-mode) image.

B-mode speckle makes neighbouring pixels differ nearly everywhere there is tissue; a scanner's own
screens (a patient form's fields, header bars, panels) are flat fill with glyphs on it. Three measures
(:func:`measure`) of an evenly spaced sample, cheap enough for every frame: the share of bright
samples, the textured share of those, and the spread of their grey levels. Thresholds were measured on
the 30 vendored BUSI images rendered by make-clip's simulator (320x180 to 1080p, clean and noisy, also
cut to a sector) and on the screens of tests/test_roi_privacy_detect.py, as PNG and through H.264.

Two sets of thresholds, for hysteresis: a region must pass :data:`TO_DECIDE` to become the ROI, and a
decided ROI stays one while it passes the lower :data:`TO_KEEP`. A dark or low-gain image sits close to
the deciding thresholds (the darkest BUSI image cut to a sector spreads 31 grey levels against 26), and
its measures move by a few levels from frame to frame with the probe; with one threshold it would flip
between decided and undecided (AI off, banner, frames blanked whole) as it moves.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from edge_runtime import yuv
from edge_runtime.frames import Frame

# The sample's smaller side: a 1080p image area is sampled every 8th pixel (about 20 000 pixels, well
# under a millisecond), still dozens of speckle grains across.
WORK_SIDE = 96
# Neighbouring samples that differ by more than this many grey levels are texture. Flat fill stays
# within it even through H.264 (its ringing moves a flat field by a level or two).
TEXTURE_STEP_LEVELS = 2
# Smallest textured share of the bright samples: the BUSI set measures 0.45 or more (0.69 for 99 %
# of its renderings); a patient form's fields measure 0.09, 0.20 at most through H.264.
MIN_TEXTURED_FRACTION = 0.3
# Smallest bright share of the region: tissue covers 0.36 or more of a sector image's bounding box;
# a form's text on black covers 0.14, a lifted probe's black image next to nothing.
MIN_BRIGHT_FRACTION = 0.25
# Smallest spread (10th to 90th percentile) of the bright samples' grey levels: 31 for the darkest
# BUSI image cut to a sector, 57 or more for 95 % of the set; flat fill spreads 0 to 4 levels, and at
# most 22 under analogue noise of 6 levels (which can look textured).
MIN_GREY_SPREAD = 26
# The lower thresholds a decided ROI must keep passing. Hysteresis by a lower threshold rather than
# by N failing frames in a row: a form opened over the image must be blanked on its first frame (with
# N frames, N - 1 frames of it would leave the process), and a threshold costs no state. Each sits
# just above what a screen that is no image measures, so the band is as wide as privacy allows: a
# clean form's fields are 0.20 textured at most (through H.264), text on black covers 0.14, a form
# under analogue noise of 5 levels spreads 21 at most (flat fill under 6 levels: 22, see above). A
# dimmed BUSI image moves by 1 to 3 levels of spread over a dozen frames of a sweep, so 3 levels of
# band hold nearly all of them. The spread cannot tell a form under analogue noise of 6 levels or more
# from a dim image: such a form spreads 23 to 60 and more, past either threshold.
KEEP_TEXTURED_FRACTION = 0.25
KEEP_BRIGHT_FRACTION = 0.2
KEEP_GREY_SPREAD = 23
SPREAD_PERCENTILES = (10, 90)
GREY_LEVELS = 256
MOSTLY_DARK = "mostly dark"
FLAT_FILL = "flat fill and text"
FEW_GREY_LEVELS = "too few grey levels"


class Measures(NamedTuple):
    """What :func:`measure` finds, in samples (counts, so that the thresholds compare as before)."""

    samples: int  # samples looked at (each with its right and lower neighbour)
    bright: int  # of them brighter than the screen's background
    textured: int  # of the bright ones differing from a neighbour by more than TEXTURE_STEP_LEVELS
    spread: int  # grey levels from the 10th to the 90th percentile of the bright ones (0: none)


class Thresholds(NamedTuple):
    bright: float  # smallest bright share of the samples
    textured: float  # smallest textured share of the bright samples
    spread: int  # smallest grey spread of the bright samples


TO_DECIDE = Thresholds(MIN_BRIGHT_FRACTION, MIN_TEXTURED_FRACTION, MIN_GREY_SPREAD)
TO_KEEP = Thresholds(KEEP_BRIGHT_FRACTION, KEEP_TEXTURED_FRACTION, KEEP_GREY_SPREAD)


def sample(region: np.ndarray) -> np.ndarray:
    """An evenly spaced view (no copy) of ``region`` (H, W[, C]) with about WORK_SIDE pixels on its
    smaller side (all of it when smaller)."""
    step = max(1, min(region.shape[:2]) // WORK_SIDE)
    return region[::step, ::step]


def sampled_gray(region: np.ndarray) -> np.ndarray:
    """:func:`sample` of a gray or BGR region, as gray (BGR is converted after sampling: cheap)."""
    picked = sample(region)
    if picked.ndim == 2:
        return picked
    return cv2.cvtColor(np.ascontiguousarray(picked), cv2.COLOR_BGR2GRAY)


def roi_sample(frame: Frame, roi) -> np.ndarray:
    """The ``roi`` (an :class:`edge_runtime.roi.Roi`) of the raw ``frame`` as a gray :func:`sample` (a
    YUV frame's luma as full range), without converting the whole frame: what a decided ROI is
    checked on, every frame."""
    if isinstance(frame, yuv.YuvFrame):
        luma = sample(roi.crop(yuv.planes(frame.i420)[0]))
        return yuv.full_range_luma(np.ascontiguousarray(luma))
    return sampled_gray(roi.crop(frame.image))


def measure(gray: np.ndarray, dark_level: int) -> Measures:
    """The image-likeness :class:`Measures` of the gray region on a screen whose background is at or
    below ``dark_level``. A region already sampled (smaller side under twice WORK_SIDE) is used as it is."""
    picked = sample(gray).astype(np.int16)
    if picked.shape[0] < 2 or picked.shape[1] < 2:
        return Measures(0, 0, 0, 0)
    bright = (picked > dark_level)[:-1, :-1]  # each sample with its right and lower neighbour
    count = int(np.count_nonzero(bright))
    if count == 0:
        return Measures(bright.size, 0, 0, 0)
    right = np.abs(np.diff(picked, axis=1))[:-1, :] > TEXTURE_STEP_LEVELS
    below = np.abs(np.diff(picked, axis=0))[:, :-1] > TEXTURE_STEP_LEVELS
    textured = int(np.count_nonzero((right | below) & bright))
    low, high = _percentiles(picked[:-1, :-1][bright], count)
    return Measures(bright.size, count, textured, high - low)


def image_likeness(gray: np.ndarray, dark_level: int, decided: bool = False) -> str:
    """``""`` when the gray region looks like an ultrasound image on a screen whose background is at or
    below ``dark_level``, else why not. ``decided``: the region is the ROI already, so the lower
    :data:`TO_KEEP` thresholds apply (module doc); a region that is not yet the ROI needs :data:`TO_DECIDE`."""
    limits = TO_KEEP if decided else TO_DECIDE
    found = measure(gray, dark_level)
    if found.bright == 0 or found.bright < limits.bright * found.samples:
        return MOSTLY_DARK
    if found.textured < limits.textured * found.bright:
        return FLAT_FILL
    if found.spread < limits.spread:
        return FEW_GREY_LEVELS
    return ""


def _percentiles(levels: np.ndarray, count: int) -> tuple[int, int]:
    """The SPREAD_PERCENTILES of ``count`` grey ``levels`` (0-255), from their histogram: several
    times faster than sorting them, which matters on every frame."""
    cumulative = np.cumsum(np.bincount(levels, minlength=GREY_LEVELS))
    low, high = (int(np.searchsorted(cumulative, p / 100 * count)) for p in SPREAD_PERCENTILES)
    return low, high
