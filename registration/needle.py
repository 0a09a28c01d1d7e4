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
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_runtime.errors import InputError

TOPHAT_DIAMETER_MM = 4.0
LOW_THRESHOLD = 0.5  # hysteresis: the echo may dim to half where the tissue above is bright
KEEP_TOP_FRACTION = 0.04  # Radon over the brightest 4 % of top-hat pixels
ANGLE_STEP_DEG = 0.5
MIN_ANGLE_DEG, MAX_ANGLE_DEG = 5.0, 75.0  # needle is oblique: not a horizontal layer, not a vertical shadow
PROFILE_HALF_WIDTH_MM = 1.5
SMOOTH_ALONG_MM = 0.6
MIN_RUN_MM = 5.0
BRIDGE_GAP_MM = 1.5
SHAFT_POINT_MM = 10.0
SHAFT_POINT_MAX_FRACTION = 0.8  # keep the shaft point on the visible echo
FIRST_FIT_QUANTILE = 0.6  # before the tip is known, fit the brightest 40 % of the chord
STEP_WINDOW_MM = 2.0  # tip step-edge window
REFINE_ITERATIONS = 3
SHAFT_LEVEL_QUANTILE = 0.8  # shaft brightness: robust to dim stretches and speckle
TIP_LEVEL = 0.9  # a tip step must start from ~the shaft's brightness
CENTRE_HALF_MM = 0.5
FLANK_MM = (1.5, 2.5)  # shallower flank band, beyond the widest (14G, 2.1 mm) shaft
CANDIDATES = 8  # Radon peaks examined as needle candidates
NMS_ANGLE_DEG = 4.0
NMS_SEPARATION_MM = 3.0
MIN_CONTRAST = 3.0  # echo vs the tissue above it, in robust top-hat spreads
SIDE_OFFSET_MM = 2.5


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


def _chord(theta: float, r: float, shape) -> tuple[np.ndarray, np.ndarray]:
    """Point on the line nearest the origin and unit direction pointing deeper (+y)."""
    d = np.array([np.cos(theta), np.sin(theta)])
    if d[1] < 0:
        d = -d
    n = np.array([-np.sin(theta), np.cos(theta)])
    return n * r, d


def _profiles(th: np.ndarray, p0: np.ndarray, d: np.ndarray, half: float):
    """Tophat sampled on a (along s) x (across o) grid over the whole chord through the image."""
    h, w = th.shape
    diag = np.hypot(h, w)
    s = np.arange(-diag, diag, 1.0)
    pts = p0[None, :] + s[:, None] * d[None, :]
    inside = (pts[:, 0] >= 0) & (pts[:, 0] <= w - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= h - 1)
    s = s[inside]
    o = np.arange(-np.ceil(half), np.ceil(half) + 1)
    n = np.array([-d[1], d[0]])
    mx = (p0[0] + s[:, None] * d[0] + o[None, :] * n[0]).astype(np.float32)
    my = (p0[1] + s[:, None] * d[1] + o[None, :] * n[1]).astype(np.float32)
    return s, o, cv2.remap(th, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _otsu(values: np.ndarray) -> float:
    """Two-class threshold of a 1D profile (works whatever share of the chord the echo covers)."""
    v = np.clip(values, 0, None)
    top = float(v.max()) or 1.0
    u8 = np.round(v * (255.0 / top)).astype(np.uint8).reshape(1, -1)
    return float(cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0]) * top / 255.0


def _bright_run(p: np.ndarray, high: float, bridge: int) -> tuple[int, int]:
    """Strongest run above ``high`` (gaps <= bridge bridged; runs joined across dimmer stretches
    that stay above LOW_THRESHOLD * high)."""

    def runs(on):
        out, start = [], None
        for i, v in enumerate(np.append(on, False)):
            if v and start is None:
                start = i
            elif not v and start is not None:
                out.append([start, i - 1])
                start = None
        merged = []
        for r in out:
            if merged and r[0] - merged[-1][1] <= bridge:
                merged[-1][1] = r[1]
            else:
                merged.append(r)
        return merged

    strong = runs(p > high)
    if not strong:
        raise InputError("no bright run along the candidate line")
    joined = [strong[0]]
    for r in strong[1:]:  # join runs whose gap never drops below the low level; ends stay strong
        if p[joined[-1][1] + 1 : r[0]].min() > LOW_THRESHOLD * high:
            joined[-1] = [joined[-1][0], r[1]]
        else:
            joined.append(r)
    return tuple(max(joined, key=lambda r: p[r[0] : r[1] + 1].sum()))


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
    spread = 1.4826 * float(np.median(np.abs(th - np.median(th)))) + 1.0
    return float(np.median(centre - side)) / spread


def _tip_index(along: np.ndarray, i0: int, i1: int, win: int, min_run: int, level: float) -> float:
    """Sub-sample index of the tip: the strongest bright-to-dark step deeper than i0 + min_run.

    Works on raw brightness along the line: the metal echo is the brightest thing on it, so only
    steps from (nearly) the shaft's own level count, which rejects bright tissue that continues
    collinear beyond the tip; a step edge (mean of WIN samples before minus WIN after) is robust
    to speckle.
    """
    c = np.concatenate([[0.0], np.cumsum(along)])
    best, j_best = -np.inf, i1
    for j in range(i0 + min_run, len(along) - 1):
        lo, hi = max(j - win, i0), min(j + win, len(along))
        before = (c[j] - c[lo]) / (j - lo)
        after = (c[hi] - c[j]) / (hi - j)
        if before >= TIP_LEVEL * level and before - after > best:
            best, j_best = before - after, j
    before = along[max(j_best - win, i0) : j_best].mean()
    after = along[j_best : min(j_best + win, len(along))].mean()
    mid = 0.5 * (before + after)
    k = j_best - 1  # last sample of the shaft still above the half-way level, then interpolate
    lo = max(j_best - win // 2, i0)
    while k > lo and along[k] <= mid:
        k -= 1
    while k + 1 < min(j_best + win // 2, len(along) - 1) and along[k + 1] > mid:
        k += 1
    if k + 1 < len(along) and along[k] != along[k + 1]:
        return k + float(np.clip((along[k] - mid) / (along[k] - along[k + 1]), 0, 1))
    return float(k)


def _line_likeness(th: np.ndarray, p0, d, mmpp: float, smooth: int) -> tuple[np.ndarray, np.ndarray]:
    """Along the line: echo on the line minus the tissue just shallower than it.

    Bright tissue beyond the tip is bright above the line too, so it scores low; the shaft is
    a narrow band brighter than what lies above it (the reverberation tail is below, not above).
    """
    s, o, prof = _profiles(th, p0, d, FLANK_MM[1] / mmpp)
    shallow = -1.0 if d[0] > 0 else 1.0  # sign of o pointing to smaller depth (normal = (-dy, dx))
    centre = prof[:, np.abs(o) <= max(CENTRE_HALF_MM / mmpp, 1.0)].mean(axis=1)
    flank_sel = (shallow * o >= FLANK_MM[0] / mmpp) & (shallow * o <= FLANK_MM[1] / mmpp)
    flank = prof[:, flank_sel].mean(axis=1)
    return s, np.convolve(np.clip(centre - flank, 0, None), np.ones(smooth) / smooth, mode="same")


@dataclass(frozen=True)
class LineFit:
    """One candidate refined on its echo: the line (point, unit direction), the echo's start and
    tip along it (pixels from ``p0``), and its score (summed line-likeness x mm)."""

    p0: np.ndarray
    d: np.ndarray
    s0: float
    tip_s: float
    score: float


class CandidateRejected(Exception):
    """A Radon candidate that is not a needle echo; the message says why."""


MIN_PROFILE_SAMPLES = 5  # fewer samples along a chord than this: it barely crosses the image


def _fit_line(th: np.ndarray, gray: np.ndarray, theta: float, r: float, mmpp: float) -> LineFit:
    """Refine one candidate line on its echo (shaft only, once the tip is known).

    Raises :class:`CandidateRejected` naming why the candidate is not a needle echo."""
    p0, d = _chord(theta, r, th.shape)
    half = PROFILE_HALF_WIDTH_MM / mmpp
    smooth = max(int(round(SMOOTH_ALONG_MM / mmpp)), 1)
    win, min_run = max(int(round(STEP_WINDOW_MM / mmpp)), 2), int(MIN_RUN_MM / mmpp)
    shaft = None
    res = None
    for _ in range(REFINE_ITERATIONS):
        s, o, prof = _profiles(th, p0, d, half)
        if len(s) < MIN_PROFILE_SAMPLES:
            raise CandidateRejected("line barely crosses the image")
        peak = prof.max(axis=1)
        wts = np.clip(prof - 0.5 * peak[:, None], 0, None)
        ok = (
            (peak > np.quantile(peak, FIRST_FIT_QUANTILE))
            if shaft is None
            else ((s >= shaft[0]) & (s <= shaft[1]))
        )
        ok &= wts.sum(axis=1) > 0
        if ok.sum() >= MIN_PROFILE_SAMPLES:  # robust line through the perpendicular centroids of the echo
            cen = (wts[ok] * o[None, :]).sum(axis=1) / wts[ok].sum(axis=1)
            n = np.array([-d[1], d[0]])
            pts = p0[None, :] + s[ok, None] * d[None, :] + cen[:, None] * n[None, :]
            vx, vy, x0, y0 = cv2.fitLine(pts.astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
            d = np.array([vx, vy], float) * (1 if vy >= 0 else -1)
            p0 = np.array([x0, y0], float)
        s, along = _line_likeness(th, p0, d, mmpp, smooth)
        if len(s) < MIN_PROFILE_SAMPLES:
            raise CandidateRejected("refined line barely crosses the image")
        try:
            i0, i1 = _bright_run(along, _otsu(along), int(BRIDGE_GAP_MM / mmpp))
        except InputError as exc:
            raise CandidateRejected(f"no bright run ({exc})") from exc
        if i1 - i0 < min_run:
            raise CandidateRejected(f"echo shorter than {MIN_RUN_MM} mm")
        if not MIN_ANGLE_DEG <= np.degrees(np.arctan2(abs(d[1]), abs(d[0]))) <= MAX_ANGLE_DEG:
            # refinement slid onto a horizontal layer or a vertical edge
            raise CandidateRejected(f"angle outside {MIN_ANGLE_DEG}-{MAX_ANGLE_DEG} degrees")
        _, _, gprof = _profiles(gray, p0, d, max(CENTRE_HALF_MM / mmpp, 1.0))
        bright = np.convolve(gprof.mean(axis=1), np.ones(smooth) / smooth, mode="same")
        level = float(np.quantile(bright[i0 : i1 + 1], SHAFT_LEVEL_QUANTILE))
        tip = _tip_index(bright, i0, len(bright) - 1, win, min_run, level)
        j = int(np.floor(tip))
        shaft = (s[i0], s[min(j, len(s) - 1)])
        res = LineFit(
            p0,
            d,
            float(s[i0]),
            float(np.interp(tip, np.arange(len(s)), s)),
            float(along[i0 : j + 1].sum()) * mmpp,
        )
    return res


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
            fits.append(_fit_line(th, g, t, r, mmpp))
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
