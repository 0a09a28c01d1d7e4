"""The screen's background, as ROI auto-detection (:mod:`edge_runtime.roi`) tells content from it.

Input: a scanner screen (gray or BGR). Output: the background's (level, floor) measured on the
screen's border (:func:`screen_background`: what image-likeness is judged against), how much further
analogue capture noise spreads it (:func:`noise_margin`, :func:`widened`: what content is told from
background by), and the pixels past H.264's ringing (:func:`distinct`: what parts text from the image).
"""

from __future__ import annotations

import cv2
import numpy as np

# Screen background is measured on the screen's outer border (this fraction of its smaller side);
# pixels brighter than it by the margin belong to content (on a dark grey UI, darker ones too). Dim
# sector edges stay in, H.264's ringing and block noise around black stays out: near text, H.264 lifts
# whole blocks of black to 5 grey levels on the full-range Y plane replay detects on (a level above
# their BGR conversion), and with a margin of 4 those blocks joined the patient line to the image
# (tests/test_roi_layout_change.py).
BACKGROUND_MARGIN = 6
BORDER_FRACTION = 0.02
# Analogue capture noise spreads the whole screen, background included: noise of 4 grey levels puts 5 %
# of a black screen's pixels over a margin of 6, and closing joins them into one region with the text
# and the image. Content is then told from background by what the border's noise reaches (this
# percentile of its deviation: 3.3 sigmas, under 1 background pixel in 1 000 beyond it) plus the
# headroom. Image-likeness keeps the margin its thresholds were measured with.
NOISE_PERCENTILE = 99.9
NOISE_HEADROOM_LEVELS = 1
# At most this many levels more: noise of about 6 levels, past which a border is no longer uniform to
# screen_background anyway. A border whose quietest side spreads further is no background at all (an
# image reaching every edge), and widening by it would take tissue for background.
MAX_NOISE_LEVELS = 14
# The border is a plain background when this share of it lies within the margin of its median: a
# black, video-range (16) or grey UI border measures 0.99 or more, an image reaching the border 0.13
# at most (the vendored BUSI images), so a border only partly covered by the image still counts.
UNIFORM_BORDER_FRACTION = 0.6
# When the image reaches the border, the background is the dark level scanners draw, at most this.
MAX_BACKGROUND_LEVEL = 8
# H.264 rings around text: the rows between a header line and the image never hold only background,
# the quietest of them reaching up to 11 grey levels from the background's level (the 30 vendored BUSI
# images on black, video-range and grey screens, linear and sector, veryfast at CRF 23) and joining the
# patient line to the image. A row (column) parts text from the image when none of its pixels lies this
# many levels past the background (beyond the margin).
RINGING_LEVELS = 10
SPECK_KERNEL = np.ones((2, 2), np.uint8)
# A uniform border from this level to GREY_UI_MAX_LEVEL is a dark grey UI, and the image on it keeps
# its own black, darker than the UI: pixels more than the margin below the border's level are content
# too (anechoic tissue, a sector's dim edges), else a dark edge of the image is taken for background
# and cut off. From 24: black and video-range black (16) screens, their analogue noise and H.264's
# ringing around text have nothing of the image below them, and keep only brighter pixels as content.
# Up to 64: scanners' dark UIs; a lighter UI is not looked into (dark text on it would be content).
GREY_UI_MIN_LEVEL = 24
GREY_UI_MAX_LEVEL = 64


def screen_background(image: np.ndarray) -> tuple[int, int]:
    """(level, floor) of the screen ``image`` (gray or BGR): a pixel from ``floor`` to ``level`` is
    background. ``level``: the border's grey level when the border is uniform (black, video-range black,
    a grey UI), else at most MAX_BACKGROUND_LEVEL (the image reaches the border); plus
    BACKGROUND_MARGIN. ``floor``: on a dark grey UI (GREY_UI_MIN_LEVEL to GREY_UI_MAX_LEVEL) its level
    less BACKGROUND_MARGIN, darker pixels being the image's; else 0 (nothing is darker than background).
    What image-likeness is judged against; content is told from background with
    :func:`noise_margin` more."""
    strips = _border(image)
    border = np.concatenate([s.ravel() for s in strips])
    level = int(np.median(border))
    spread = BACKGROUND_MARGIN + _noise(strips)  # a noisy background is as uniform as a clean one
    near = np.count_nonzero(np.abs(border.astype(np.int16) - level) <= spread)
    if near < UNIFORM_BORDER_FRACTION * border.size:
        return min(level, MAX_BACKGROUND_LEVEL) + BACKGROUND_MARGIN, 0
    grey_ui = GREY_UI_MIN_LEVEL <= level <= GREY_UI_MAX_LEVEL
    return level + BACKGROUND_MARGIN, level - BACKGROUND_MARGIN if grey_ui else 0


def _border(image: np.ndarray) -> list[np.ndarray]:
    """The four gray strips (top, bottom, left, right) of the screen ``image``'s border."""
    height, width = image.shape[:2]
    b = max(1, int(BORDER_FRACTION * min(height, width)))
    strips = [image[:b], image[-b:], image[:, :b], image[:, -b:]]
    if image.ndim == 3:  # only the border is converted
        strips = [cv2.cvtColor(np.ascontiguousarray(s), cv2.COLOR_BGR2GRAY) for s in strips]
    return strips


def noise_margin(image: np.ndarray) -> int:
    """How many grey levels past BACKGROUND_MARGIN analogue capture noise spreads the background of the
    screen ``image`` (0 for a clean one, plain or through H.264): NOISE_PERCENTILE of each border
    strip's deviation from its own median, on the quietest strip (noise covers every side alike, while
    text, a menu bar or the image lie on some sides only), plus NOISE_HEADROOM_LEVELS."""
    return _noise(_border(image))


def _noise(strips: list[np.ndarray]) -> int:
    """:func:`noise_margin` of the screen whose border ``strips`` these are."""
    quietest = min(
        float(np.percentile(np.abs(s.astype(np.int16) - int(np.median(s))), NOISE_PERCENTILE)) for s in strips
    )
    extra = max(0, int(np.ceil(quietest)) + NOISE_HEADROOM_LEVELS - BACKGROUND_MARGIN)
    return extra if extra <= MAX_NOISE_LEVELS else 0  # no side is background: the image reaches all


def widened(background: tuple[int, int], extra: int) -> tuple[int, int]:
    """The (level, floor) ``background`` widened by ``extra`` grey levels each way (a floor of 0 stays
    0: nothing is darker than a black screen's background)."""
    level, floor = background
    return level + extra, max(1, floor - extra) if floor > 0 else 0


def screen_level(image: np.ndarray) -> int:
    """The grey level at or below which a pixel of the screen ``image`` is background or, on a dark grey
    UI, darker than it (:func:`screen_background`'s level)."""
    return screen_background(image)[0]


def distinct(gray: np.ndarray, background: tuple[int, int]) -> np.ndarray:
    """bool mask of the gray pixels that differ from the ``background`` (level, floor) by more than
    H.264's ringing can (RINGING_LEVELS past it): what a row or column must lack to part text from the
    image (:func:`edge_runtime.roi_trim.trim_box`)."""
    level, floor = background
    found = gray > level + RINGING_LEVELS
    if floor > 0:
        found |= gray < floor - RINGING_LEVELS
    # Ringing that far out is specks of a pixel or two; text strokes and tissue are areas.
    return cv2.morphologyEx(found.view(np.uint8), cv2.MORPH_OPEN, SPECK_KERNEL).view(bool)
