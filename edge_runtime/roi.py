"""ROI stage: where the ultrasound image sits on the scanner's screen.

Input: a full BGR screen frame. Output: a :class:`Roi` (x, y, w, h in screen pixels,
plus the mm scale when known) and the cropped view. The ROI is either configured
(``--roi x,y,w,h`` / config ``roi.rect``) or auto-detected once from the first frame:
scanner screens are dark with a bright B-mode sector/rectangle plus small text and
icons, so the largest bright connected region (after closing gaps) is the image.

A screen with no such region (a capture card starting, the probe lifted: all black, or text
only) has no ROI yet: detection returns an *undecided* ROI (:func:`undecided_roi`), never the whole
screen, since the whole screen would keep the patient line burnt into it. An undecided ROI spans
the frame only so that sonomap's own drawing has a place; every pixel of the frame is blanked and
no inference runs on it. Only ``roi.rect: full``, the operator's choice, makes the whole screen
the image.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from edge_runtime.aistate import OFF, AiStatus
from edge_runtime.errors import ConfigError, InputError

# Screen background (black or near-black on scanner UIs) is estimated from the screen's outer
# border; pixels brighter than it by this margin belong to content. Dim sector edges stay in.
BACKGROUND_MARGIN = 4
BORDER_FRACTION = 0.02
MAX_BACKGROUND_LEVEL = 8
# Closing joins the speckle of a B-mode image into one blob while text and scales placed a
# little apart stay separate: the kernel is this fraction of the screen's smaller side.
CLOSE_KERNEL_FRACTION = 0.012
MIN_CLOSE_KERNEL_PX = 3
# A detected region must cover at least this fraction of the screen to count as the image.
MIN_AREA_FRACTION = 0.05
RECT_FIELDS = 4
NO_IMAGE_FOUND = "no ultrasound image found"  # why auto-detection left the ROI undecided
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


def detect_roi(image: np.ndarray) -> Roi:
    """Find the ultrasound image area on a scanner screen (largest bright region); an
    :func:`undecided_roi` ROI when there is none (all dark, or only small text and icons)."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    height, width = gray.shape
    b = max(1, int(BORDER_FRACTION * min(height, width)))
    border = np.concatenate([gray[:b].ravel(), gray[-b:].ravel(), gray[:, :b].ravel(), gray[:, -b:].ravel()])
    background = min(int(np.median(border)), MAX_BACKGROUND_LEVEL)  # image reaching the edges: not background
    fg = (gray > background + BACKGROUND_MARGIN).astype(np.uint8)
    if not fg.any():  # a black screen (card starting, probe lifted): skip the costly closing
        return undecided_roi(width, height, NO_IMAGE_FOUND)
    size = max(MIN_CLOSE_KERNEL_PX, int(round(CLOSE_KERNEL_FRACTION * min(height, width))))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, kernel)
    count, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if count <= 1:
        return undecided_roi(width, height, NO_IMAGE_FOUND)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, area = (int(v) for v in stats[best])
    if area < MIN_AREA_FRACTION * width * height:  # text and icons only: not an image
        return undecided_roi(width, height, NO_IMAGE_FOUND)
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
