"""Heat-map overlay style: the (calibrated) cancer probability as a colour ramp.

``overlay.style: heatmap`` paints every ROI pixel whose probability is at least
:data:`HEAT_FLOOR` with a perceptually uniform ramp (OpenCV's viridis: lightness rises
monotonically, readable by colour-blind viewers), blended at the overlay alpha, and draws the
threshold contour (probability >= overlay threshold, the pixels the mask style would paint: parts
the manifest's mask filter drops stay tinted, at most just under the threshold's colour, but get no
contour) on top in white. Below the floor nothing is painted, so the ultrasound stays visible where
the model sees nothing. A vertical colour bar in the ROI's bottom-left corner labels the ramp in
probability units (floor, threshold, 1.0); it is blended as the heat is, at the same alpha over
:data:`REFERENCE_GREY`, so a colour on the image matches the bar where the tissue under it is mid-grey.

Inputs: the probability at the ROI's size, quantised to uint8 levels (level = round(255 * p),
:func:`levels`), so it travels through the pipeline like a mask, with the contour carried in it
(:func:`contour_on`: the levels at or above the threshold's are exactly the contoured pixels); the
BGR ROI region to draw on.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_runtime import yuv

COLORMAP = cv2.COLORMAP_VIRIDIS
LEVELS = 255  # uint8 levels per unit probability
HEAT_FLOOR = 0.1  # below this probability nothing is painted (raised for some models: floor_for)
PLATEAU_STEP = 0.005  # calibration-curve knots closer than this in probability are one flat run
CONTOUR_BGR = (255, 255, 255)
CONTOUR_PX = 2  # the mask style's contour width
BAR_W, BAR_H = 14, 120  # colour bar at full size (scaled with the ROI like the mask legend)
MIN_BAR_W, MIN_BAR_H = 6, 40  # smaller, the ramp no longer reads
BAR_MARGIN = 8  # the mask legend's margin (mask.LEGEND_MARGIN_PX)
TICK_PX = 4  # tick mark length, right of the bar
TICK_LABEL_GAP_PX = 6  # from the bar's right edge to a tick label
LABEL_DROP_PX = 4  # a label's baseline sits this far below its tick: the tick points at its middle
TITLE_LINE_PX = 14  # the title's line above the bar
TEXT_BGR = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_SCALE = 0.45  # tick labels and title at full size; small, the bar is a legend
WIDEST_LABEL = "0.50"  # tick labels are p to two decimals: all this wide
FULL_SIZE_ROI_PX = 600  # ROIs at least this tall get the full-size bar (as overlay's legend)
MIN_SCALE = 0.5  # below half size the tick labels no longer read
TITLE = "P(cancer)"
BACKING_KEEP = 0.35  # the legend's box keeps this much of the image behind it
# The bar is the ramp blended at the heat's alpha over this grey (the middle of the 8-bit range): an
# opaque bar would match no colour the blended heat can draw. Darker tissue draws a probability darker.
REFERENCE_GREY = 128
_RAMP = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], COLORMAP)  # (256, 1, 3) BGR


def levels(prob: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Probability (any size, float) -> uint8 levels at ``shape`` (H, W), bilinear."""
    if prob.shape != shape:
        prob = cv2.resize(prob, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(prob * LEVELS + 0.5, 0, LEVELS).astype(np.uint8)


def level_of(p: float) -> int:
    return int(np.clip(round(p * LEVELS), 0, LEVELS))


def at_least(heat: np.ndarray, level: int) -> np.ndarray:
    """uint8 0/255 where ``heat >= level`` (:func:`edge_runtime.yuv.compare_scalar`: a heat map that
    paints one pixel must not end a live run)."""
    return yuv.compare_scalar(heat, level, cv2.CMP_GE)


def floor_for(manifest, threshold: float) -> float:
    """The lowest probability the heat map paints for this model: :data:`HEAT_FLOOR`, or just above
    the lowest flat run of its calibration curve. A curve fitted on the decision band gives the
    pixels the network calls tissue the cancer rate of missed lesion parts near a lesion (a plateau
    around 0.2); painting that would tint nearly the whole image (~90 % of the far background on the
    shipped model), hiding the ultrasound and saying nothing. Only flat runs below the threshold
    count (a curve saturating near 1.0 must not hide everything under the cut-off); never above it."""
    curve = manifest.calibration_curve
    prob = curve["prob"] if curve else []
    pairs = zip(prob, prob[1:], strict=False)
    flat = [a for a, b in pairs if a > 0 and b - a < PLATEAU_STEP and b < threshold]
    floor = max(HEAT_FLOOR, (level_of(min(flat)) + 1) / LEVELS) if flat else HEAT_FLOOR
    return min(floor, threshold)


def contour_on(heat: np.ndarray, inside: np.ndarray, threshold: float) -> np.ndarray:
    """Levels whose pixels at or above the threshold's level are exactly ``inside`` (non-zero: the
    mask cut from the float probability, after the manifest's mask filter), so the contour drawn from
    them is that mask. Pixels outside it (a part the filter drops, or within half a level under the
    threshold) are held one level under it; pixels inside it at least at it. In place."""
    top = level_of(threshold)
    outside = inside == 0
    heat[outside & (heat >= top)] = max(top - 1, 0)
    heat[~outside & (heat < top)] = top
    return heat


def draw_heat(
    region: np.ndarray,
    heat: np.ndarray,
    threshold: float,
    alpha: float,
    fade: float = 1.0,
    floor: float = HEAT_FLOOR,
) -> None:
    """Blend the ramp over pixels at or above the floor, then the threshold contour; in place.
    ``fade`` (0..1) dims both, as the mask style does when a prediction goes stale."""
    alpha = alpha * fade
    shown = at_least(heat, level_of(floor))
    x, y, w, h = cv2.boundingRect(shown)
    if w == 0 or h == 0 or alpha <= 0.0:
        return
    sub, hsub, msub = region[y : y + h, x : x + w], heat[y : y + h, x : x + w], shown[y : y + h, x : x + w]
    work = np.ascontiguousarray(sub)
    tinted = cv2.addWeighted(work, 1.0 - alpha, cv2.applyColorMap(hsub, COLORMAP), alpha, 0.0)
    cv2.copyTo(tinted, msub, work)
    inside = at_least(hsub, level_of(threshold))
    contours, _ = cv2.findContours(inside, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    colour = tuple(int(c * fade) for c in CONTOUR_BGR)
    cv2.drawContours(work, contours, -1, colour, CONTOUR_PX, cv2.LINE_8)
    sub[...] = work


def _scale(roi_h: int) -> float:
    return min(1.0, max(MIN_SCALE, roi_h / FULL_SIZE_ROI_PX))


def legend_size(roi_h: int) -> tuple[int, int]:
    """(width, height) of the colour-bar box in the ROI's bottom-left corner."""
    k = _scale(roi_h)
    text_w = cv2.getTextSize(TITLE, FONT, LABEL_SCALE * k, 1)[0][0]
    label_w = cv2.getTextSize(WIDEST_LABEL, FONT, LABEL_SCALE * k, 1)[0][0]
    width = BAR_MARGIN + max(int(BAR_W * k) + TICK_LABEL_GAP_PX + label_w, text_w) + BAR_MARGIN
    return width, int(BAR_H * k) + 3 * BAR_MARGIN + int(TITLE_LINE_PX * k)


def bar_box(region_h: int, roi_h: int | None = None) -> tuple[int, int, int, int]:
    """(x0, y0, width, height) of the colour bar in a region ``region_h`` tall (the ROI's bottom-left
    corner), sized for an ROI ``roi_h`` tall (default: the region's height)."""
    k = _scale(region_h if roi_h is None else roi_h)
    bw, bh = max(MIN_BAR_W, int(BAR_W * k)), max(MIN_BAR_H, int(BAR_H * k))
    return BAR_MARGIN, region_h - BAR_MARGIN - bh, bw, bh


def tick_row(p: float, y0: int, bh: int, floor: float) -> int:
    """The bar's row showing probability ``p``: 1.0 at the top row ``y0``, the floor at the bottom."""
    return int(round(y0 + (1.0 - p) / (1.0 - floor) * (bh - 1)))


def draw_legend(
    region: np.ndarray,
    threshold: float,
    roi_h: int | None = None,
    floor: float = HEAT_FLOOR,
    alpha: float = 1.0,
) -> None:
    """Colour bar from the floor (bottom) to 1.0 (top), ticks at floor, threshold and 1.0; the ramp
    blended at ``alpha`` (the heat's) over :data:`REFERENCE_GREY`, as :func:`draw_heat` blends it."""
    k = _scale(region.shape[0] if roi_h is None else roi_h)
    x0, y0, bw, bh = bar_box(region.shape[0], roi_h)
    scale = LABEL_SCALE * k
    title_h = cv2.getTextSize(TITLE, FONT, scale, 1)[0][1]
    if y0 - BAR_MARGIN - title_h < 0 or x0 + bw >= region.shape[1]:
        return  # ROI too small for a legend whose title (the unit) can be read
    lw, lh = legend_size(region.shape[0] if roi_h is None else roi_h)
    top = max(0, region.shape[0] - lh)
    backing = region[top:, : min(lw, region.shape[1])]
    backing[...] = (backing * BACKING_KEEP).astype(np.uint8)  # darkened so the labels read on any image
    ramp_levels = np.linspace(1.0, floor, bh)  # top = 1.0
    ramp = np.ascontiguousarray(_RAMP[[level_of(p) for p in ramp_levels]])  # (bh, 1, 3)
    bar = cv2.addWeighted(np.full_like(ramp, REFERENCE_GREY), 1.0 - alpha, ramp, alpha, 0.0)
    region[y0 : y0 + bh, x0 : x0 + bw] = bar
    for p in (floor, threshold, 1.0):
        ty = tick_row(p, y0, bh, floor)
        cv2.line(region, (x0 + bw, ty), (x0 + bw + TICK_PX, ty), TEXT_BGR, 1)
        label_at = (x0 + bw + TICK_LABEL_GAP_PX, ty + int(LABEL_DROP_PX * k))
        cv2.putText(region, f"{p:.2f}", label_at, FONT, scale, TEXT_BGR, 1, cv2.LINE_AA)
    cv2.putText(region, TITLE, (x0, y0 - BAR_MARGIN), FONT, scale, TEXT_BGR, 1, cv2.LINE_AA)


def heat_box(heat: np.ndarray, floor: float = HEAT_FLOOR) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the painted pixels in ROI coordinates (empty box when none)."""
    x, y, w, h = cv2.boundingRect(at_least(heat, level_of(floor)))
    return x, y, x + w, y + h


def draw_heat_i420(
    i420: np.ndarray,
    roi,
    heat: np.ndarray,
    threshold: float,
    alpha: float,
    fade: float,
    floor: float = HEAT_FLOOR,
) -> None:
    """:func:`draw_heat` in place on an I420 frame: only the painted pixels' box is converted."""
    x0, y0, x1, y1 = heat_box(heat, floor)
    with yuv.bgr_box(i420, (roi.x + x0, roi.y + y0, roi.x + x1, roi.y + y1)) as box:
        if box is not None:
            draw_heat(box, heat[y0:y1, x0:x1], threshold, alpha, fade, floor)


def draw_legend_i420(
    i420: np.ndarray, roi, threshold: float, floor: float = HEAT_FLOOR, alpha: float = 1.0, lift: int = 0
) -> None:
    """:func:`draw_legend` in place on an I420 frame, in the ROI's bottom-left corner (``lift`` rows
    above it: those of the HUD row when it sits in the ROI)."""
    lw, lh = legend_size(roi.h)
    bottom = roi.y + roi.h - lift
    top = max(roi.y, bottom - lh)  # never above the ROI: the scanner's own screen is not ours
    with yuv.bgr_box(i420, (roi.x, top, roi.x + min(lw, roi.w), bottom)) as box:
        if box is not None:
            draw_legend(box, threshold, roi.h, floor, alpha)
