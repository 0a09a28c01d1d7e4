"""The needle tip and shaft on the full-resolution post-fire ROI, from the fire detector's seed.

Input: gray ROI (uint8), mm per pixel, a seed axis (point + unit direction pointing deeper) and a
tip estimate, all in ROI pixels. Output: :class:`NeedleFit` (tip, a shaft point SHAFT_POINT_MM
behind it, the angle below the horizontal); :class:`NoEcho`, with the reason, when no echo edge
lies along the seed.

Runs on the case writer's thread (tens of milliseconds at 1080p is fine there):
1. across the axis, the centroid of the echo's bright core (above 60 % of the way from the
   row's median to its peak, so the fainter reverberation copies below do not pull it) on every
   sample of the shaft behind the tip; a robust line through them is the refined axis;
2. along that axis, the tip is where the echo falls through half-way between the shaft's level
   and the tissue beyond the tip, interpolated to a fraction of a pixel (the echo ends at the tip).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

ACROSS_HALF_MM = 3.0  # wider than the echo (14G: 2.1 mm), so a row's median is tissue
CORE_LEVEL = 0.6  # share of median -> peak that belongs to the echo's core
FIT_BACK_MM = (2.0, 20.0)  # shaft stretch behind the tip used for the axis
SEARCH_MM = 6.0  # the tip estimate is good to a few small-image pixels
CENTRE_HALF_MM = 0.4  # along-axis brightness: this close to the axis
SMOOTH_MM = 0.3
SHAFT_LEVEL_MM = (2.0, 12.0)  # shaft brightness measured here behind the tip
BEYOND_MM = (2.0, 6.0)  # tissue brightness measured here beyond the tip
SHAFT_POINT_MM = 10.0
REFINE_ITERATIONS = 2
MIN_STEP = 20.0  # grey levels: shaft minus tissue, below this there is no echo edge
MIN_AXIS_ROWS = 5  # fewer rows with an echo core than this: keep the axis as it was
FIT_LINE_EPS = 0.01  # cv2.fitLine's radius and angle accuracy


class NoEcho(Exception):
    """No needle echo ends along the seed axis; the message says what was measured."""


@dataclass
class NeedleFit:
    tip: tuple[float, float]
    shaft: tuple[float, float]
    angle_deg: float

    def to_dict(self) -> dict:
        return {
            "tip": [round(v, 2) for v in self.tip],
            "shaft": [round(v, 2) for v in self.shaft],
            "angle_deg": round(self.angle_deg, 3),
        }


def sample_band(
    img: np.ndarray, origin: np.ndarray, d: np.ndarray, s: np.ndarray, o: np.ndarray
) -> np.ndarray:
    """``img`` sampled (bilinear) at ``origin + s*d + o*n``: rows along ``d`` (offsets ``s``), columns
    across it (offsets ``o``, ``n`` = ``d`` turned +90 degrees)."""
    n = np.array([-d[1], d[0]])
    mx = (origin[0] + s[:, None] * d[0] + o[None, :] * n[0]).astype(np.float32)
    my = (origin[1] + s[:, None] * d[1] + o[None, :] * n[1]).astype(np.float32)
    return cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _axis(img: np.ndarray, tip: np.ndarray, d: np.ndarray, px_mm: float) -> tuple[np.ndarray, np.ndarray]:
    s = -np.arange(FIT_BACK_MM[0], FIT_BACK_MM[1], px_mm) / px_mm
    o = np.arange(-ACROSS_HALF_MM / px_mm, ACROSS_HALF_MM / px_mm + 1)
    prof = sample_band(img, tip, d, s, o)
    med, peak = np.median(prof, axis=1, keepdims=True), prof.max(axis=1, keepdims=True)
    w = np.clip(prof - (med + CORE_LEVEL * (peak - med)), 0, None)
    ok = w.sum(axis=1) > 0
    if ok.sum() < MIN_AXIS_ROWS:
        return tip, d
    cen = (w[ok] * o[None, :]).sum(axis=1) / w[ok].sum(axis=1)
    n = np.array([-d[1], d[0]])
    pts = tip[None, :] + s[ok, None] * d[None, :] + cen[:, None] * n[None, :]
    vx, vy, x0, y0 = cv2.fitLine(
        pts.astype(np.float32), cv2.DIST_HUBER, 0, FIT_LINE_EPS, FIT_LINE_EPS
    ).ravel()
    d_new = np.array([vx, vy], float) * (1 if vy >= 0 else -1)
    p = np.array([x0, y0], float)
    return p + float((tip - p) @ d_new) * d_new, d_new  # the tip estimate projected on the new axis


def _tip(img: np.ndarray, start: np.ndarray, d: np.ndarray, px_mm: float) -> np.ndarray:
    """Half-way crossing of the echo's end near ``start`` (measured around ``start``; the caller
    repeats it around the answer, so an estimate a few millimetres off converges)."""
    s = np.arange(-SHAFT_LEVEL_MM[1], SEARCH_MM + BEYOND_MM[1], px_mm) / px_mm
    o = np.arange(-CENTRE_HALF_MM / px_mm, CENTRE_HALF_MM / px_mm + 1)
    along = sample_band(img, start, d, s, o).mean(axis=1)
    k = max(int(round(SMOOTH_MM / px_mm)), 1)
    along = np.convolve(along, np.ones(k) / k, mode="same")
    mm = s * px_mm
    shaft = float(np.median(along[(mm >= -SHAFT_LEVEL_MM[1]) & (mm <= -SHAFT_LEVEL_MM[0])]))
    beyond = float(np.median(along[(mm >= BEYOND_MM[0]) & (mm <= BEYOND_MM[1])]))
    if shaft - beyond < MIN_STEP:
        raise NoEcho(
            f"shaft {shaft - beyond:.0f} grey levels above the tissue beyond the tip (< {MIN_STEP:.0f})"
        )
    mid = 0.5 * (shaft + beyond)
    first = int(np.searchsorted(mm, -SHAFT_LEVEL_MM[0]))
    below = np.nonzero(along[first:] < mid)[0]  # the first fall below half-way past the shaft stretch
    if len(below) == 0:
        raise NoEcho("the echo never falls to half-way beyond the tip")
    j = first + int(below[0])
    frac = (along[j - 1] - mid) / max(along[j - 1] - along[j], 1e-6)
    return start + (s[j - 1] + float(np.clip(frac, 0, 1)) * (s[j] - s[j - 1])) * d


def fit_needle(gray: np.ndarray, mm_per_px: float, point, direction, tip) -> NeedleFit:
    """Refine the detector's seed on the full-resolution ROI (see module docstring); raises
    :class:`NoEcho` when no echo edge lies along it."""
    img = cv2.GaussianBlur(gray, (0, 0), 1.0).astype(np.float32)
    px_mm = float(mm_per_px)
    d = np.asarray(direction, float)
    d = d / np.linalg.norm(d)
    t = np.asarray(tip, float)
    for _ in range(REFINE_ITERATIONS):
        t, d = _axis(img, t, d, px_mm)
        for _ in range(REFINE_ITERATIONS):
            t = _tip(img, t, d, px_mm)
    h, w = gray.shape[:2]
    back = min(SHAFT_POINT_MM / px_mm, _inside_length(t, -d, w, h))
    shaft = t - d * back
    angle = float(np.degrees(np.arctan2(abs(d[1]), abs(d[0]))))
    return NeedleFit((float(t[0]), float(t[1])), (float(shaft[0]), float(shaft[1])), angle)


def _inside_length(p: np.ndarray, u: np.ndarray, w: int, h: int) -> float:
    """How far from ``p`` along ``u`` stays inside the image."""
    limits = []
    for k, size in ((0, w - 1), (1, h - 1)):
        if u[k] > 1e-9:
            limits.append((size - p[k]) / u[k])
        elif u[k] < -1e-9:
            limits.append(-p[k] / u[k])
    return max(min(limits) if limits else 0.0, 1.0)
