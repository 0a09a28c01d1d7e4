"""Automatic needle detection in the post-fire ultrasound image.

Input: 8-bit gray image and its mm per pixel. Output: ``NeedleDetection`` with the tip, a
second shaft point, the shaft angle and a contrast score; raises InputError when nothing
needle-like is found.

Method (the needle echo is a straight bright line, thinner than a few mm, deeper copies of it
form a fainter reverberation tail, and it ends at the tip):
1. white top-hat with a disk wider than any needle: keeps thin bright structures, drops
   tissue brightness and the shadow below;
2. a sparse Radon transform (line integrals over the brightest top-hat pixels) over oblique
   angles gives candidate lines (peaks with non-maximum suppression);
3. each candidate is refined (perpendicular centroids of the echo, robust line fit) and scored
   by its strongest continuous echo run: a long faint tissue layer sums high in Radon space
   but is broken along its length, the needle is not; reverberation copies are fainter;
4. tip: along the fitted line, the deep end of the strongest bright run (runs above the Otsu
   level are joined across stretches above half of it, because the echo dims where the tissue
   above it is bright), at the half-contrast crossing.
Steps 3 and 4 are :mod:`registration.needle_fit`; this module finds the candidates, keeps the
best fit and checks its contrast.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.stats import median_abs_deviation

from edge_runtime.errors import InputError
from registration.needle_fit import MAX_ANGLE_DEG, MIN_ANGLE_DEG, MIN_RUN_MM, CandidateRejected, fit_line

TOPHAT_DIAMETER_MM = 4.0
KEEP_TOP_FRACTION = 0.04  # Radon over the brightest 4 % of top-hat pixels
ANGLE_STEP_DEG = 0.5
SHAFT_POINT_MM = 10.0
SHAFT_POINT_MAX_FRACTION = 0.8  # keep the shaft point on the visible echo
CANDIDATES = 8  # Radon peaks examined as needle candidates
NMS_ANGLE_DEG = 4.0
NMS_SEPARATION_MM = 3.0
MIN_CONTRAST = 3.0  # echo vs the tissue above it, in robust top-hat spreads
SIDE_OFFSET_MM = 2.5
SPREAD_FLOOR = 1.0  # grey levels added to the robust spread, so a flat image scores 0, not inf


@dataclass
class NeedleDetection:
    tip: tuple[float, float]
    shaft: tuple[float, float]
    entry: tuple[float, float]
    angle_deg: float  # shaft angle below the horizontal, 0..90
    contrast: float

    def to_dict(self) -> dict:
        return {
            "tip": [round(v, 2) for v in self.tip],
            "shaft": [round(v, 2) for v in self.shaft],
            "entry": [round(v, 2) for v in self.entry],
            "angle_deg": round(self.angle_deg, 3),
            "contrast": round(self.contrast, 2),
        }


def _tophat(gray: np.ndarray, mmpp: float) -> np.ndarray:
    d = max(int(round(TOPHAT_DIAMETER_MM / mmpp)) | 1, 3)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))
    g = cv2.GaussianBlur(gray, (0, 0), 1.0).astype(np.float32)
    return cv2.morphologyEx(g, cv2.MORPH_TOPHAT, k)


def _radon_candidates(th: np.ndarray, smooth_px: float, sep_px: float) -> list[tuple[float, float]]:
    """(theta, r) of the strongest oblique lines (r = -x sin(theta) + y cos(theta)), best first."""
    thr = np.quantile(th, 1.0 - KEEP_TOP_FRACTION)
    ys, xs = np.nonzero(th > max(thr, 1e-3))
    if len(ys) < 10:
        raise InputError("no bright line structure found")
    wts = th[ys, xs].astype(np.float64)
    diag = int(np.hypot(*th.shape)) + 2
    angles = np.concatenate(
        [
            np.arange(MIN_ANGLE_DEG, MAX_ANGLE_DEG + 1e-9, ANGLE_STEP_DEG),
            np.arange(180 - MAX_ANGLE_DEG, 180 - MIN_ANGLE_DEG + 1e-9, ANGLE_STEP_DEG),
        ]
    )
    width = max(int(round(smooth_px)), 1)
    acc = np.empty((len(angles), 2 * diag + 1))
    for k, a in enumerate(angles):
        t = np.deg2rad(a)
        r = -xs * np.sin(t) + ys * np.cos(t)
        hist = np.bincount(np.round(r + diag).astype(np.int64), weights=wts, minlength=2 * diag + 1)
        acc[k] = np.convolve(hist, np.ones(width) / width, mode="same")
    out = []
    for _ in range(CANDIDATES):  # greedy peaks with non-maximum suppression in (angle, r)
        k, i = np.unravel_index(int(np.argmax(acc)), acc.shape)
        if acc[k, i] <= 0:
            break
        out.append((float(np.deg2rad(angles[k])), float(i - diag)))
        near = np.abs(angles - angles[k]) < NMS_ANGLE_DEG
        acc[near, max(i - int(sep_px), 0) : i + int(sep_px) + 1] = 0
    return out


def _contrast(th: np.ndarray, p0, d, s0: float, s1: float, mmpp: float) -> float:
    """Echo minus the tissue just above it (shallower side; the deeper side has the tail),
    in units of the image's robust top-hat spread."""
    n = np.array([-d[1], d[0]])
    if n[1] > 0:
        n = -n  # point to the shallower side
    s = np.linspace(s0, s1, 64)
    centre = cv2.remap(th, *(np.float32(p0[i] + s * d[i])[None, :] for i in (0, 1)), cv2.INTER_LINEAR)
    off = SIDE_OFFSET_MM / mmpp
    side = cv2.remap(
        th, *(np.float32(p0[i] + s * d[i] + off * n[i])[None, :] for i in (0, 1)), cv2.INTER_LINEAR
    )
    spread = float(median_abs_deviation(th, axis=None, scale="normal")) + SPREAD_FLOOR  # robust sigma
    return float(np.median(centre - side)) / spread


def detect_needle(
    gray: np.ndarray, mm_per_px: tuple[float, float], where: str = "ultrasound"
) -> NeedleDetection:
    mmpp = float(np.mean(mm_per_px))
    th = _tophat(gray, mmpp)
    try:
        cands = _radon_candidates(th, 1.0 / mmpp, NMS_SEPARATION_MM / mmpp)
    except InputError as exc:
        raise InputError(
            f"{where}: needle auto-detection failed ({exc}); give needle.tip and needle.shaft"
        ) from exc
    # the needle is the candidate with the strongest *continuous* echo, not the longest faint line
    g = cv2.GaussianBlur(gray, (0, 0), 1.0).astype(np.float32)
    fits, rejected = [], {}
    for t, r in cands:
        try:
            fits.append(fit_line(th, g, t, r, mmpp))
        except CandidateRejected as exc:
            rejected[str(exc)] = rejected.get(str(exc), 0) + 1
    if not fits:
        why = "; ".join(f"{n} x {reason}" for reason, n in sorted(rejected.items()))
        raise InputError(
            f"{where}: needle auto-detection found no echo longer than {MIN_RUN_MM} mm ({why}); "
            "give needle.tip and needle.shaft"
        )
    best = max(fits, key=lambda f: f.score)
    p0, d = best.p0, best.d
    contrast = _contrast(th, p0, d, best.s0, best.tip_s, mmpp)
    if contrast < MIN_CONTRAST:
        raise InputError(
            f"{where}: needle auto-detection: echo contrast {contrast:.1f} too low; "
            "give needle.tip and needle.shaft"
        )
    tip = p0 + best.tip_s * d
    entry = p0 + best.s0 * d
    shaft = tip - d * min(SHAFT_POINT_MM / mmpp, (best.tip_s - best.s0) * SHAFT_POINT_MAX_FRACTION)
    angle = float(np.degrees(np.arctan2(abs(d[1]), abs(d[0]))))
    return NeedleDetection(
        tuple(map(float, tip)), tuple(map(float, shaft)), tuple(map(float, entry)), angle, contrast
    )
