"""Image-likeness: whether a region of a scanner screen holds an ultrasound (B-mode) image.

B-mode speckle makes neighbouring pixels differ nearly everywhere there is tissue; a scanner's own
screens (a patient form's fields, header bars, panels) are flat fill with glyphs on it. Four measures
(:func:`measure`) of an evenly spaced sample, cheap enough for every frame: the share of bright
samples, the textured share of those, the spread of their grey levels, and the flat share. Analogue
capture noise makes flat fill look textured and spreads its grey levels, so the first three pass a
noisy form; the flat share looks at block means of the sample instead, over which the noise averages
out while speckle and tissue keep them varied: the share of them within a few levels of their
commonest level, which a form's fields fill. Thresholds were measured on the 30 vendored BUSI images
rendered by make-clip's simulator (320x180 to 1080p, clean and noisy, also cut to a sector) and on the
screens of tests/test_roi_privacy_detect.py (its form also with fields from grey 30 to 220 under
analogue noise of 2 to 8 levels), as PNG and through H.264.

On a dark grey UI the image keeps its own black, darker than the screen around it: the caller gives
the ``floor`` below which a pixel is not the UI's background either. Below it, samples in dark areas
(not specks of noise) brighter than the region's own black (:func:`image_black`) count as bright, as
they would on a black screen, and the flat share looks above that black; the UI's own level stays
background. A black or video-range screen has no floor (0), so nothing changes there.

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
# from a dim image: such a form spreads 23 to 60 and more, past either threshold; the flat share can.
KEEP_TEXTURED_FRACTION = 0.25
KEEP_BRIGHT_FRACTION = 0.2
KEEP_GREY_SPREAD = 23
# The flat share: the sample is averaged over blocks of FLAT_BLOCK x FLAT_BLOCK samples (noise of 8
# levels shrinks to 2.7 in a block mean), and only blocks bright in every sample count (text on black
# and an image's dark edge make mixed blocks). Their commonest level is looked for only more than
# FLAT_MIN_CONTRAST levels above the dark level (about 26 above the screen's background): dark tissue
# (an acoustic shadow) is as flat as fill, and an image dark in its depth would otherwise measure up
# to 0.59 (BUSI cut to a sector; 66 renderings over 0.4); a form's fields from grey 30 up are found.
# The share is of the bright blocks within FLAT_TOLERANCE_LEVELS of that level (noise of 8 levels
# keeps about 80 % of a flat field's blocks within it).
FLAT_BLOCK = 3
FLAT_TOLERANCE_LEVELS = 3
FLAT_MIN_CONTRAST = 20
# Largest flat share: every BUSI rendering (4 350: the native images, and 6 frames across the sweep
# at 4 sizes, clean and noisy, rectangle and sector, as PNG and at 2 sizes through H.264) measures
# 0.31 at most, 0.22 for 99 % of them (median 0.08); dimmed until the spread fails, 0.37 at most. The
# form (fields 30 to 220, noise 2 to 8 levels, PNG and H.264, 320x180 to 1080p, as detection's region
# or in a decided ROI: 1 053 screens) measures 0.52 or more, 0.56 for 99 % of it (median 0.75); under
# noise of 10 levels 0.43 or more (never decided, kept by a few).
MAX_FLAT_FRACTION = 0.4
KEEP_FLAT_FRACTION = 0.45  # the band: 0.07 under the flattest form, 0.08 over the flattest dim image
# The region's own black, on a screen with a floor (a grey UI): looked for only when at least this share
# of its samples lies in areas darker than the floor (an image's anechoic areas and depth: the BUSI set
# has 17 % of its pixels under 24 in the median image), and taken as the level a quarter of those
# samples lie at or below, not their darkest: a form's dark fields under analogue noise are then their
# own black and mostly not bright, as a black screen's noise is not (their darkest percent, 2.3 noise
# sigmas under the field, made noisy dark fields bright and a dark-field form an image), while an
# image's dark areas have a quarter of their samples near its black (the median instead left 3 more of
# the 248 BUSI fans on a grey UI mostly dark, and 2 echo frames).
MIN_BLACK_FRACTION = 0.01
IMAGE_BLACK_PERCENTILE = 25
# Samples this many grey levels over that black are bright: as roi.BACKGROUND_MARGIN over a black screen.
IMAGE_BLACK_MARGIN = 6
AREA_KERNEL = np.ones((3, 3), np.uint8)  # an area, not a speck: a sample and its 8 neighbours
SPREAD_PERCENTILES = (10, 90)
GREY_LEVELS = 256
MOSTLY_DARK = "mostly dark"
FLAT_FILL = "flat fill and text"
FEW_GREY_LEVELS = "too few grey levels"
ONE_FLAT_LEVEL = "mostly one flat grey level"
# A fixed ROI (roi.rect, ``full``, a source's default) is the operator's and never judged by the
# thresholds above, but on a frame where it holds one plain level (a lifted probe's black, a capture
# card's blank screen, a scanner's flat blue standby) it holds no image: the AI must not read ON over it.
# Plain: the 1st to 99th percentile of the sample within PLAIN_SPREAD_LEVELS. Measured: every one of
# the 248 BUSI images spreads 134 levels or more; a plain screen under analogue noise of 6 grey levels
# spreads 28 at most (13 on black, which clips the noise), of 8 levels 37 (not caught).
PLAIN_SPREAD_LEVELS = 30
PLAIN_PERCENTILES = (1, 99)
PLAIN = "one plain grey level"


class Measures(NamedTuple):
    """What :func:`measure` finds, in samples and blocks (counts, so that the thresholds compare as
    before)."""

    samples: int  # samples looked at (each with its right and lower neighbour)
    bright: int  # of them not the screen's background: brighter, or on a grey UI darker (module doc)
    textured: int  # of the bright ones differing from a neighbour by more than TEXTURE_STEP_LEVELS
    spread: int  # grey levels from the 10th to the 90th percentile of the bright ones (0: none)
    blocks: int = 0  # FLAT_BLOCK blocks of the sample bright in every sample
    flat: int = 0  # of them within FLAT_TOLERANCE_LEVELS of their commonest level (FLAT_MIN_CONTRAST)


class Thresholds(NamedTuple):
    bright: float  # smallest bright share of the samples
    textured: float  # smallest textured share of the bright samples
    spread: int  # smallest grey spread of the bright samples
    flat: float  # largest flat share of the bright blocks


TO_DECIDE = Thresholds(MIN_BRIGHT_FRACTION, MIN_TEXTURED_FRACTION, MIN_GREY_SPREAD, MAX_FLAT_FRACTION)
TO_KEEP = Thresholds(KEEP_BRIGHT_FRACTION, KEEP_TEXTURED_FRACTION, KEEP_GREY_SPREAD, KEEP_FLAT_FRACTION)


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


def measure(gray: np.ndarray, dark_level: int, floor: int = 0, black: int | None = None) -> Measures:
    """The image-likeness :class:`Measures` of the gray region on a screen whose background lies from
    ``floor`` to ``dark_level`` (floor 0: a black screen, nothing below it). ``black``: the dark level of
    the image's own tissue below a grey UI's floor (:func:`image_black`; None: measured on this region).
    A region already sampled (smaller side under twice WORK_SIDE) is used as it is."""
    levels = np.ascontiguousarray(sample(gray))
    picked = levels.astype(np.int16)
    if picked.shape[0] < 2 or picked.shape[1] < 2:
        return Measures(0, 0, 0, 0)
    lit, tissue = levels > dark_level, dark_level  # tissue: the level the flat share looks above
    if floor > 0:
        dark = _dark_areas(levels, floor)
        own = _black_of(levels, dark, dark_level, floor) if black is None else black
        if own < floor:  # the image's own black lies below the UI: its tissue above that is bright
            lit, tissue = lit | (dark & (levels > own)), own
    bright = lit[:-1, :-1]  # each sample with its right and lower neighbour
    count = int(np.count_nonzero(bright))
    if count == 0:
        return Measures(bright.size, 0, 0, 0)
    right = np.abs(np.diff(picked, axis=1))[:-1, :] > TEXTURE_STEP_LEVELS
    below = np.abs(np.diff(picked, axis=0))[:, :-1] > TEXTURE_STEP_LEVELS
    textured = int(np.count_nonzero((right | below) & bright))
    low, high = _percentiles(picked[:-1, :-1][bright], count)
    return Measures(bright.size, count, textured, high - low, *_flat_blocks(levels, lit, tissue))


def image_black(gray: np.ndarray, dark_level: int, floor: int) -> int:
    """The dark level of the image's own tissue in the gray region, on a screen whose background lies
    from ``floor`` to ``dark_level``: its dark areas' IMAGE_BLACK_PERCENTILE level plus
    IMAGE_BLACK_MARGIN (module doc), or ``dark_level`` when it has no black of its own below the floor
    (a black screen's floor 0 included)."""
    if floor <= 0:
        return dark_level
    levels = np.ascontiguousarray(sample(gray))
    return _black_of(levels, _dark_areas(levels, floor), dark_level, floor)


def _dark_areas(levels: np.ndarray, floor: int) -> np.ndarray:
    """bool mask of the uint8 sample ``levels``: the areas darker than ``floor``, not the specks a grey
    UI's analogue noise dips below it (a sample and its 8 neighbours, AREA_KERNEL)."""
    return cv2.morphologyEx((levels < floor).view(np.uint8), cv2.MORPH_OPEN, AREA_KERNEL).view(bool)


def _black_of(levels: np.ndarray, below: np.ndarray, dark_level: int, floor: int) -> int:
    """:func:`image_black` of the sample ``levels`` whose dark areas are ``below``."""
    if np.count_nonzero(below) < MIN_BLACK_FRACTION * levels.size:
        return dark_level
    dark = levels[below]
    cumulative = np.cumsum(np.bincount(dark, minlength=GREY_LEVELS))
    black = int(np.searchsorted(cumulative, IMAGE_BLACK_PERCENTILE / 100 * dark.size)) + IMAGE_BLACK_MARGIN
    return black if black < floor else dark_level


def image_likeness(
    gray: np.ndarray, dark_level: int, decided: bool = False, floor: int = 0, black: int | None = None
) -> str:
    """``""`` when the gray region looks like an ultrasound image on a screen whose background lies from
    ``floor`` (0: a black screen) to ``dark_level``, else why not; ``black`` as :func:`measure` takes
    it. ``decided``: the region is the ROI already, so the lower :data:`TO_KEEP` thresholds apply
    (module doc); a region that is not yet the ROI needs :data:`TO_DECIDE`."""
    limits = TO_KEEP if decided else TO_DECIDE
    found = measure(gray, dark_level, floor, black)
    if found.bright == 0 or found.bright < limits.bright * found.samples:
        return MOSTLY_DARK
    if found.textured < limits.textured * found.bright:
        return FLAT_FILL
    if found.spread < limits.spread:
        return FEW_GREY_LEVELS
    if found.flat > limits.flat * found.blocks:
        return ONE_FLAT_LEVEL
    return ""


def _flat_blocks(levels: np.ndarray, lit: np.ndarray, dark_level: int) -> tuple[int, int]:
    """(bright blocks, flat ones) of the uint8 sample ``levels`` whose bright samples are ``lit`` and
    whose tissue's dark level is ``dark_level``: see FLAT_BLOCK. OpenCV's area resize averages whole
    blocks exactly (a whole-number factor), far cheaper than numpy's reshape and sum (the flat share
    costs about 0.06 ms per frame); a block bright in every sample averages a 0/255 mask of them to
    exactly 255."""
    rows, cols = levels.shape[0] // FLAT_BLOCK, levels.shape[1] // FLAT_BLOCK
    if rows == 0 or cols == 0:
        return 0, 0
    whole = levels[: rows * FLAT_BLOCK, : cols * FLAT_BLOCK]
    means = cv2.resize(whole, (cols, rows), interpolation=cv2.INTER_AREA)
    mask = lit[: rows * FLAT_BLOCK, : cols * FLAT_BLOCK].astype(np.uint8) * np.uint8(GREY_LEVELS - 1)
    lit_blocks = cv2.resize(mask, (cols, rows), interpolation=cv2.INTER_AREA) == GREY_LEVELS - 1
    counts = np.bincount(means[lit_blocks], minlength=GREY_LEVELS)
    start = dark_level + FLAT_MIN_CONTRAST + 1
    if start >= GREY_LEVELS or not counts[start:].any():
        return int(counts.sum()), 0
    mode = start + int(np.argmax(counts[start:]))
    near = counts[max(0, mode - FLAT_TOLERANCE_LEVELS) : mode + FLAT_TOLERANCE_LEVELS + 1]
    return int(counts.sum()), int(near.sum())


def _percentiles(levels: np.ndarray, count: int) -> tuple[int, int]:
    """The SPREAD_PERCENTILES of ``count`` grey ``levels`` (0-255), from their histogram: several
    times faster than sorting them, which matters on every frame."""
    cumulative = np.cumsum(np.bincount(levels, minlength=GREY_LEVELS))
    low, high = (int(np.searchsorted(cumulative, p / 100 * count)) for p in SPREAD_PERCENTILES)
    return low, high


def plain(gray: np.ndarray) -> str:
    """``PLAIN`` when the uint8 gray sample is one plain level (PLAIN_SPREAD_LEVELS from its 1st to its
    99th percentile: no image in it), else ``""``. A histogram, not a sort: it runs on every frame."""
    cumulative = np.cumsum(np.bincount(gray.ravel(), minlength=GREY_LEVELS))
    low, high = (int(np.searchsorted(cumulative, q / 100 * cumulative[-1])) for q in PLAIN_PERCENTILES)
    return PLAIN if high - low <= PLAIN_SPREAD_LEVELS else ""
