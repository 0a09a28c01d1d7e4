"""ROI stage: where the ultrasound image sits on the scanner's screen.

Input: a full BGR (or gray) screen frame. Output: a :class:`Roi` (x, y, w, h in screen pixels,
plus the mm scale when known), the cropped view, and the rectangles outside it that de-identification
blanks (:func:`blank_rects`). The ROI is either configured (``--roi x,y,w,h`` / config ``roi.rect``)
or auto-detected from the frame: scanner screens are a plain background (black, video-range black 16
or a dark grey, measured on the screen's border: :func:`screen_background`) with a B-mode
sector/rectangle plus text, icons and flat grey UI fills. Content is what is brighter than the
background and, on a dark grey UI, the image's own blacks darker than it, by a margin that analogue
capture noise widens (:mod:`edge_runtime.roi_background`). Flat fill is set aside, gaps
are closed, and the largest remaining region, less the text that closing joined to it at its edges
(:func:`edge_runtime.roi_trim.trim_box`), is the image if it looks like one
(:func:`edge_runtime.likeness.image_likeness`).

Image-likeness (:mod:`edge_runtime.likeness`): B-mode speckle, not the flat fill and text of a
scanner's own screens; a region must pass higher thresholds to become the ROI than to stay it.

A screen with no such region (a capture card starting, the probe lifted: all black, text only, a
patient form) has no ROI yet: detection returns an *undecided* ROI (:func:`undecided_roi`), never the
whole screen, since the whole screen would keep the patient line burnt into it. Neither is a region
that reaches all four edges of the frame: with no screen border in sight, nothing tells a cropped
image from a screen whose background was taken for content. An undecided ROI spans the frame only so
that sonomap's own drawing has a place; every pixel of the frame is blanked and no inference runs on
it. Only the operator's choice (``roi.rect: full``, or a rect spanning the frame) or a source whose
frames default to ``full`` (a recorded sequence) makes the whole screen the image.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from edge_runtime.aistate import OFF, AiStatus
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.likeness import image_likeness
from edge_runtime.roi_background import (  # noqa: F401  (screen_background, screen_level: the ROI's API)
    BACKGROUND_MARGIN,
    distinct,
    noise_margin,
    screen_background,
    screen_level,
    widened,
)
from edge_runtime.roi_trim import Rect, trim_box

# Frame.meta key under which the pipeline tags each frame with the ROI it was blanked and drawn for;
# later stages and observers (biopsy capture) read it instead of choosing again.
ROI_META_KEY = "roi"

# A 3x3 neighbourhood spanning at most this many grey levels is flat: UI fill (form fields, header
# bars), never speckle. Digital fill is exactly flat and H.264 moves it by a level; 2 would already
# take smooth patches of an image upscaled 8x (a small BUSI image on a 1080p screen) for fill. Flat
# areas smaller than the closing kernel are left alone; larger ones are set aside with a 1 px rim,
# so that a grey bar's edge does not join the bar to the image beside it.
FLAT_RANGE_LEVELS = 1
# Closing joins the speckle of a B-mode image into one blob while text and scales placed a
# little apart stay separate: the kernel is this fraction of the screen's smaller side.
CLOSE_KERNEL_FRACTION = 0.012
MIN_CLOSE_KERNEL_PX = 3
# A detected region must cover at least this fraction of the screen to count as the image.
MIN_AREA_FRACTION = 0.05
RECT_FIELDS = 4
RIM_KERNEL = np.ones((3, 3), np.uint8)  # a pixel and its 8 neighbours
NO_IMAGE_FOUND = "no ultrasound image found"  # why auto-detection left the ROI undecided
EDGE_TO_EDGE = "bright area fills the frame"
NO_ROI_DETAIL = "no image"  # the AI badge's detail on a frame with an undecided ROI
UNDECIDED_BANNER_LEVEL = "warning"
UNDECIDED_BANNER = "AI OFF: {why} - recordings get a blank screen"


@dataclass(frozen=True)
class Roi:
    x: int
    y: int
    w: int
    h: int
    mm_per_pixel: float | None = None
    # Why no ROI is decided (see the module doc), e.g. "no ultrasound image found"; "" once decided.
    undecided: str = ""

    def crop(self, image: np.ndarray) -> np.ndarray:
        """A view (no copy) of the ROI in ``image``."""
        return image[self.y : self.y + self.h, self.x : self.x + self.w]

    def check_inside(self, width: int, height: int, origin: str = "roi") -> None:
        if (
            self.w <= 0
            or self.h <= 0
            or self.x < 0
            or self.y < 0
            or self.x + self.w > width
            or self.y + self.h > height
        ):
            raise ConfigError(
                f"{origin} {self.x},{self.y},{self.w},{self.h} lies outside the {width}x{height} frame"
            )

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


def parse_roi(text: str | list | tuple | None, origin: str = "--roi") -> Roi | None:
    """``"x,y,w,h"`` or a 4-list -> Roi; None/"auto"/"full" -> None (decided from the frame)."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("", "auto", "full")):
        return None
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        values = [int(float(p)) for p in parts]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: expected x,y,w,h integers, got {text!r}") from exc
    if len(values) != RECT_FIELDS:
        raise ConfigError(f"{origin}: expected 4 values x,y,w,h, got {text!r}")
    x, y, w, h = values
    if w <= 0 or h <= 0 or x < 0 or y < 0:  # before any frame: no frame size makes these fit
        raise ConfigError(
            f"{origin}: x,y must be >= 0 and w,h > 0 (an area of the frame), got {x},{y},{w},{h}"
        )
    return Roi(*values)


def undecided_roi(width: int, height: int, why: str) -> Roi:
    """The ROI of a ``width`` x ``height`` frame on which no image area is decided, and why: the whole
    frame is blanked and the AI does not run (module doc)."""
    return Roi(0, 0, width, height, undecided=why)


def undecided_status(status: AiStatus) -> AiStatus:
    """The AI state drawn on a frame with an undecided ROI: OFF, saying so (not the operator's
    choice), so that a blank or raw screen never reads as "no cancer"."""
    return replace(status, state=OFF, detail=NO_ROI_DETAIL)


def undecided_banner(roi: Roi) -> tuple[str, str]:
    """(level, text) of the banner on a frame with an undecided ROI: why, and that outputs are blank."""
    return UNDECIDED_BANNER_LEVEL, UNDECIDED_BANNER.format(why=roi.undecided)


def content_mask(gray: np.ndarray, background: tuple[int, int], kernel: np.ndarray) -> np.ndarray:
    """uint8 mask (1: content) of the pixels outside the ``background`` (level, floor): brighter than
    its level or darker than its floor; flat UI fill (FLAT_RANGE_LEVELS) larger than ``kernel`` is not
    content."""
    level, floor = background
    _, bright = cv2.threshold(gray, level, 1, cv2.THRESH_BINARY)
    if floor > 0:  # areas darker than a grey UI, not the specks its analogue noise dips below the floor
        _, dark = cv2.threshold(gray, floor - 1, 1, cv2.THRESH_BINARY_INV)
        bright = cv2.bitwise_or(bright, cv2.morphologyEx(dark, cv2.MORPH_OPEN, RIM_KERNEL))
    spread = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, RIM_KERNEL)
    _, flat = cv2.threshold(spread, FLAT_RANGE_LEVELS, 1, cv2.THRESH_BINARY_INV)
    fill = cv2.morphologyEx(cv2.bitwise_and(bright, flat), cv2.MORPH_OPEN, kernel)
    return cv2.subtract(bright, cv2.dilate(fill, RIM_KERNEL))


def detect_roi(image: np.ndarray) -> Roi:
    """Find the ultrasound image area on a scanner screen (module doc); an :func:`undecided_roi` ROI,
    saying why, when there is none (all dark, only text and icons, flat fill, no screen border)."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    height, width = gray.shape
    judged = screen_background(gray)  # what image-likeness was measured against
    background = level, floor = widened(judged, noise_margin(gray))
    if int(gray.max()) <= level and int(gray.min()) >= floor:  # a plain screen (card starting, probe
        return undecided_roi(width, height, NO_IMAGE_FOUND)  # lifted): skip the costly steps
    size = max(MIN_CLOSE_KERNEL_PX, int(round(CLOSE_KERNEL_FRACTION * min(height, width))))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    content = content_mask(gray, background, kernel)
    fg = cv2.morphologyEx(content, cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if count <= 1:
        return undecided_roi(width, height, NO_IMAGE_FOUND)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, area = (int(v) for v in stats[best])
    if area < MIN_AREA_FRACTION * width * height:  # text and icons only: not an image
        return undecided_roi(width, height, NO_IMAGE_FOUND)
    if w == width and h == height:
        return undecided_roi(width, height, f"{NO_IMAGE_FOUND}: {EDGE_TO_EDGE}")
    region = labels[y : y + h, x : x + w] == best
    own = np.logical_and(region, content[y : y + h, x : x + w])
    strong = np.logical_and(region, distinct(gray[y : y + h, x : x + w], background))
    box = trim_box(gray[y : y + h, x : x + w], own, strong, (0, 0, w, h), judged, (height, width))
    x0, y0, x1, y1 = box
    if (x0, y0, x1, y1) != (0, 0, w, h):
        x, y, w, h = x + x0, y + y0, x1 - x0, y1 - y0
        if np.count_nonzero(region[y0:y1, x0:x1]) < MIN_AREA_FRACTION * width * height:
            return undecided_roi(width, height, NO_IMAGE_FOUND)
    why = image_likeness(gray[y : y + h, x : x + w], judged[0], floor=judged[1])
    if why:
        return undecided_roi(width, height, f"{NO_IMAGE_FOUND}: {why}")
    return Roi(x, y, w, h)


def resolve_roi(
    config_rect, frame: np.ndarray, mm_per_pixel: float | None = None, origin: str = "roi.rect"
) -> Roi:
    """Configured rect (validated against the frame), the full frame (``full``) or auto-detection,
    which may give an :func:`undecided_roi` ROI."""
    if frame is None or frame.ndim < 2:
        raise InputError("cannot choose a ROI: the first frame is empty")
    height, width = frame.shape[:2]
    roi = config_rect if isinstance(config_rect, Roi) else parse_roi(config_rect, origin)
    if roi is None:
        mode = str(config_rect or "auto").lower()
        roi = Roi(0, 0, width, height) if mode == "full" else detect_roi(frame)
    roi.check_inside(width, height, origin)
    if mm_per_pixel is not None and not roi.undecided:
        roi = replace(roi, mm_per_pixel=float(mm_per_pixel))
    return roi


def clip_box(box, width: int, height: int) -> Rect:
    """An (x, y, w, h) box as the (x0, y0, x1, y1) rectangle of it inside a ``width`` x ``height`` frame."""
    x, y, w, h = (int(v) for v in box)
    return max(0, x), max(0, y), min(width, x + w), min(height, y + h)


def covered_share(boxes, roi: Roi) -> float:
    """The share of ``roi``'s area that the (x, y, w, h) screen ``boxes`` cover together."""
    covered = np.zeros((roi.h, roi.w), bool)
    for x, y, w, h in boxes:
        x0, y0, x1, y1 = clip_box((x - roi.x, y - roi.y, w, h), roi.w, roi.h)
        if x0 < x1 and y0 < y1:  # a box beside the ROI clips to an empty (or negative) extent
            covered[y0:y1, x0:x1] = True
    return float(covered.mean())


def blank_rects(shape: tuple[int, int], roi: Roi, blank=(), keep=()) -> list[Rect]:
    """The rectangles to blank on a screen of ``shape`` (H, W): all but (ROI + ``keep``) - ``blank``.

    The screen is cut into horizontal bands at every box edge; inside a band each row is the same,
    so the runs of blanked columns of its first row are the band's rectangles (a handful per frame
    instead of a per-pixel mask)."""
    height, width = shape
    kept = np.zeros((height, width), bool)
    boxes = [clip_box((roi.x, roi.y, roi.w, roi.h), width, height)]
    boxes += [clip_box(k, width, height) for k in keep]
    for x0, y0, x1, y1 in boxes:
        kept[y0:y1, x0:x1] = True
    cuts = [clip_box(b, width, height) for b in blank]
    for x0, y0, x1, y1 in cuts:
        kept[y0:y1, x0:x1] = False
    edges = sorted({0, height} | {v for b in boxes + cuts for v in (b[1], b[3]) if 0 <= v <= height})
    rects = []
    for top, bottom in zip(edges, edges[1:], strict=False):
        if top >= bottom:
            continue
        change = np.diff(np.concatenate(([1], kept[top].view(np.int8), [1])))
        starts, ends = np.flatnonzero(change == -1), np.flatnonzero(change == 1)
        rects += [(int(s), top, int(e), bottom) for s, e in zip(starts, ends, strict=False)]
    return rects
