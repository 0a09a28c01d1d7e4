"""Expected yield before the fire: the cancer fraction of the band the fire will sample.

Input per frame: the detector's small top-hat image (:meth:`.fire.FireDetector.small_tophat`),
the ROI scale and the prediction. Output: a :class:`YieldBand` (band polygon in ROI pixels and
the predicted cancer fraction inside it), or None when no needle is in place.

The needle in place is the longest straight oblique echo (probabilistic Hough on the top-hat's
bright pixels, at least ``ACQUIRE_SHAFT_MM`` long, then ``TRACK_SHAFT_MM`` while it stays put) that
*appeared during the session* and *enters
from the ROI's border*: a ligament or specular reflector was there from the start (each pixel's
lowest top-hat so far is kept), and a needle comes in through the skin at the image edge. Limits:
with a moving probe every echo has been absent at some time, so only the border test remains; a
needle already in place when capture starts is taken for anatomy. The axis is refined through the
echo's core, the tip is the echo's deep end (followed past dim stretches). The band is the gauge's
notch placed where the throw will carry it (:func:`.devices.band_along_tip`), the core's width across; the fraction is
the share of the prediction's cancer pixels inside it, at ROI resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_runtime.biopsy.devices import GAUGE_DEFAULTS, THROW_MM, band_along_tip
from edge_runtime.biopsy.needle_fit import CORE_LEVEL, sample_band

ACQUIRE_SHAFT_MM = 9.0  # a needle is first taken only on this much new straight echo...
TRACK_SHAFT_MM = 8.0  # ...then followed on this much, while its tip stays within TRACK_MM
TRACK_MM = 3.0
CONFIRM_UPDATES = 2  # shown once found in this many updates in a row (a passing tissue edge is not)
NEEDLE_LEVEL = 90  # top-hat grey levels: metal echo (~150-210); tissue edges stay below
BORDER_MM = 1.5  # an echo end this close to the ROI edge is the entry
HOUGH_GAP_MM = 1.0
MIN_ANGLE_DEG, MAX_ANGLE_DEG = 5.0, 80.0
ACROSS_MM = 2.5  # axis refinement: the echo's core within this of the Hough segment
LOW_SHARE = 0.55  # the echo is followed beyond the segment while above this share of NEEDLE_LEVEL
GAP_MM = 1.0  # ... across dim gaps up to this long
TIP_WINDOW_MM = 3.0  # the tip is sought this far either side of the segment's end
STEP_PX = 0.5  # profiles are sampled every half pixel along the needle
TIP_STEP_PX = 0.25  # ...and every quarter pixel around the tip
ENTRY_QUANTILE = 0.2  # the dimmest fifth of the echo from the border to the segment must still be needle
AXIS_SPAN = (0.1, 0.9)  # the axis is fitted on the segment's middle: its ends are the least certain
MIN_AXIS_ROWS = 5  # fewer rows with an echo core than this: keep the Hough axis
FIT_LINE_EPS = 0.01  # cv2.fitLine's radius and angle accuracy
TIP_LEVEL = 0.5  # the tip is where the echo falls to this share of the shaft's level
HALF_PX = 0.5  # pixel centres: a small-image point maps to the ROI through its centre
SUBPIXEL_BITS = 4  # polygons are drawn at 1/16 pixel (OpenCV's shift): the band does not jump by whole pixels
SUBPIXEL = 1 << SUBPIXEL_BITS


@dataclass
class YieldBand:
    polygon: np.ndarray  # 4x2 float, ROI pixels
    fraction: float  # predicted cancer fraction of the band, 0..1
    tip: tuple[float, float]  # the needle tip now (ROI pixels)


def find_needle(
    th: np.ndarray, mm: float, floor: np.ndarray | None = None, min_shaft_mm: float = ACQUIRE_SHAFT_MM
) -> tuple[np.ndarray, np.ndarray] | None:
    """(entry, tip) in small-image pixels of the needle in place, or None. ``floor``: the lowest
    top-hat each pixel has had this session; echo that was always there is not a needle."""
    bright = (th > NEEDLE_LEVEL).astype(np.uint8) * 255
    gained = None if floor is None else cv2.subtract(th, floor).astype(np.float32)
    segs = cv2.HoughLinesP(
        bright,
        1,
        np.pi / 360,
        threshold=int(min_shaft_mm / mm),
        minLineLength=min_shaft_mm / mm,
        maxLineGap=HOUGH_GAP_MM / mm,
    )
    if segs is None:
        return None
    h, w = th.shape
    best, best_len = None, 0.0
    for x0, y0, x1, y1 in segs.reshape(-1, 4).astype(float):
        angle = np.degrees(np.arctan2(abs(y1 - y0), abs(x1 - x0)))
        if not MIN_ANGLE_DEG <= angle <= MAX_ANGLE_DEG:
            continue
        a, b = np.array([x0, y0]), np.array([x1, y1])
        entry, tip = (a, b) if a[1] < b[1] else (b, a)  # the needle comes in from the shallower end
        if not _reaches_border(th, entry, (entry - tip) / np.linalg.norm(entry - tip), mm):
            continue
        if gained is not None and not _mostly_new(gained, entry, tip):
            continue
        length = float(np.hypot(*(tip - entry)))
        if length > best_len:
            best, best_len = (entry, tip), length
    return best


class YieldTracker:
    """Per session (one ROI): remembers each pixel's lowest top-hat, so that an echo present
    since the start (a ligament, a reflector) is never taken for the needle."""

    def __init__(
        self,
        scale: tuple[float, float],
        mm_per_px: float,
        cancer_class: int,
        gauge: int,
        throw_mm: float = THROW_MM,
    ):
        self.scale, self.mm_per_px, self.cancer_class, self.gauge, self.throw_mm = (
            scale,
            mm_per_px,
            cancer_class,
            gauge,
            throw_mm,
        )
        self.floor: np.ndarray | None = None

        self.last: YieldBand | None = None
        self.streak = 0  # consecutive updates that found the needle

    def update(self, th: np.ndarray, mask: np.ndarray | None) -> YieldBand | None:
        """Acquire a needle on strict evidence, then keep it on weaker evidence while its tip stays
        put (its echo dims as it passes bright tissue); shown from the CONFIRM_UPDATES-th update in a
        row. Tissue edges under a moving probe rarely pass the strict test twice running."""
        self.floor = th.copy() if self.floor is None else cv2.min(self.floor, th)
        args = (
            th,
            self.scale,
            self.mm_per_px,
            mask,
            self.cancer_class,
            self.gauge,
            self.throw_mm,
            self.floor,
        )
        band = expected_yield(*args)
        if band is None and self.last is not None:
            band = expected_yield(*args, min_shaft_mm=TRACK_SHAFT_MM)
            if (
                band is not None
                and np.hypot(*np.subtract(band.tip, self.last.tip)) * self.mm_per_px > TRACK_MM
            ):
                band = None
        self.last = band
        self.streak = self.streak + 1 if band is not None else 0
        return band if self.streak >= CONFIRM_UPDATES else None


def _mostly_new(gained: np.ndarray, entry: np.ndarray, tip: np.ndarray) -> bool:
    """Whether most of the segment's echo was absent at some time this session (a ligament never was)."""
    length = float(np.linalg.norm(tip - entry))
    d = (tip - entry) / length
    along = sample_band(gained, entry, d, np.arange(0, length, STEP_PX), np.zeros(1))[:, 0]
    return float(np.median(along)) > LOW_SHARE * NEEDLE_LEVEL


def _reaches_border(th: np.ndarray, entry: np.ndarray, back: np.ndarray, mm: float) -> bool:
    """Whether the echo runs on from ``entry`` (direction ``back``) to the ROI's left, right or top
    edge: within BORDER_MM of it, or over a stretch that stays bright (skin and tissue near the
    surface may have been bright all along, so only the current top-hat counts there)."""
    h, w = th.shape
    limits = [
        t
        for k, size in ((0, w - 1), (1, h - 1))
        for t in (
            ((size - entry[k]) / back[k])
            if back[k] > 1e-9
            else ((-entry[k]) / back[k])
            if back[k] < -1e-9
            else np.inf,
        )
    ]
    reach = min(limits)
    end = entry + reach * back
    if end[1] > h - 1 - BORDER_MM / mm and back[1] >= 0:
        return False  # that would be the deep edge
    if reach * mm <= BORDER_MM:
        return True
    along = sample_band(th.astype(np.float32), entry, back, np.arange(0, reach, STEP_PX), np.zeros(1))[:, 0]
    return float(np.quantile(along, ENTRY_QUANTILE)) > LOW_SHARE * NEEDLE_LEVEL


def refine_needle(
    th: np.ndarray, entry: np.ndarray, tip: np.ndarray, mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """(point on the axis at the tip, unit direction entry -> tip): the Hough segment runs along an
    edge of the echo band; the axis goes through its bright core, and the tip is where the echo
    falls to half the shaft's level."""
    img = th.astype(np.float32)
    d = (tip - entry) / np.linalg.norm(tip - entry)
    length = float(np.linalg.norm(tip - entry))
    s = np.arange(AXIS_SPAN[0] * length, AXIS_SPAN[1] * length, STEP_PX)
    o = np.arange(-np.ceil(ACROSS_MM / mm), np.ceil(ACROSS_MM / mm) + 1)
    prof = sample_band(img, entry, d, s, o)
    med, peak = np.median(prof, axis=1, keepdims=True), prof.max(axis=1, keepdims=True)
    w = np.clip(prof - (med + CORE_LEVEL * (peak - med)), 0, None)
    ok = w.sum(axis=1) > 0
    if ok.sum() >= MIN_AXIS_ROWS:
        n = np.array([-d[1], d[0]])
        cen = (w[ok] * o[None, :]).sum(axis=1) / w[ok].sum(axis=1)
        pts = entry[None, :] + s[ok, None] * d[None, :] + cen[:, None] * n[None, :]
        vx, vy, x0, y0 = cv2.fitLine(
            pts.astype(np.float32), cv2.DIST_HUBER, 0, FIT_LINE_EPS, FIT_LINE_EPS
        ).ravel()
        d_new = np.array([vx, vy], float)
        d = d_new if d_new @ d > 0 else -d_new
        p = np.array([x0, y0], float)
        tip = p + float((tip - p) @ d) * d
    walk = sample_band(img, tip, d, np.arange(0, max(th.shape), STEP_PX), np.zeros(1))[:, 0]
    on = np.nonzero(walk > LOW_SHARE * NEEDLE_LEVEL)[0]  # hysteresis: the echo dims in places
    if len(on):
        gaps = np.nonzero(np.diff(np.concatenate([[0], on])) > GAP_MM / mm / STEP_PX)[0]
        last = on[gaps[0] - 1] if len(gaps) and gaps[0] > 0 else (on[-1] if not len(gaps) else 0)
        tip = tip + STEP_PX * last * d
    along_s = np.arange(-TIP_WINDOW_MM / mm, TIP_WINDOW_MM / mm, TIP_STEP_PX)
    along = sample_band(img, tip, d, along_s, np.zeros(1))[:, 0]
    shaft = float(np.median(along[along_s < -TIP_WINDOW_MM / 2 / mm]))  # the window's far half: shaft
    above = np.nonzero(along > TIP_LEVEL * shaft)[0]
    if len(above):
        tip = tip + along_s[above[-1]] * d
    return tip, d


def band_fraction(poly: np.ndarray, mask: np.ndarray, cancer_class: int) -> float | None:
    """Share of ``cancer_class`` pixels of ``mask`` inside the convex polygon ``poly`` (ROI pixels),
    at ROI resolution, rasterised in the polygon's bounding box only; None when it covers no pixel."""
    h, w = mask.shape[:2]
    x0, y0 = (max(int(np.floor(v)), 0) for v in poly.min(axis=0))
    x1, y1 = min(int(np.ceil(poly[:, 0].max())) + 1, w), min(int(np.ceil(poly[:, 1].max())) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    band = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(
        band, np.round((poly - [x0, y0]) * SUBPIXEL).astype(np.int32), 1, cv2.LINE_8, shift=SUBPIXEL_BITS
    )
    area = int(band.sum())
    if area == 0:
        return None
    return float(((mask[y0:y1, x0:x1] == cancer_class) & (band > 0)).sum()) / area


def expected_yield(
    th: np.ndarray,
    scale: tuple[float, float],
    mm_per_px: float,
    mask: np.ndarray | None,
    cancer_class: int,
    gauge: int,
    throw_mm: float = THROW_MM,
    floor: np.ndarray | None = None,
    min_shaft_mm: float = ACQUIRE_SHAFT_MM,
) -> YieldBand | None:
    """The band and its predicted cancer fraction (see module docstring). ``scale``: ROI px per
    small px; ``mask``: the prediction's class ids at ROI size."""
    mm = mm_per_px * float(np.mean(scale))
    found = find_needle(th, mm, floor, min_shaft_mm)
    if found is None or mask is None:
        return None
    tip, d = refine_needle(th, *found, mm)
    n = np.array([-d[1], d[0]])
    near, far = band_along_tip(gauge, throw_mm)
    half = GAUGE_DEFAULTS[gauge]["width_mm"] / 2
    corners = [tip + (a * d + s * half * n) / mm for a, s in ((near, -1), (far, -1), (far, 1), (near, 1))]
    small_poly = np.array(corners)
    poly = np.stack([(small_poly[:, i] + HALF_PX) * scale[i] - HALF_PX for i in (0, 1)], 1)
    fraction = band_fraction(poly, mask, cancer_class)
    if fraction is None:
        return None
    tip_roi = tuple((tip[i] + HALF_PX) * scale[i] - HALF_PX for i in (0, 1))
    return YieldBand(poly, fraction, (float(tip_roi[0]), float(tip_roi[1])))
