"""Needle detection, step 3 and 4: one candidate line refined on its echo, and the tip found on it.

Input: the top-hat image, the blurred gray image, one Radon candidate (theta, r) and the mm per
pixel. Output: a :class:`LineFit` (the line, the echo's start and tip along it, its score), or
:class:`CandidateRejected` naming why the candidate is no needle echo. :mod:`registration.needle`
finds the candidates and keeps the best fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_runtime.errors import InputError

LOW_THRESHOLD = 0.5  # hysteresis: the echo may dim to half where the tissue above is bright
MIN_ANGLE_DEG, MAX_ANGLE_DEG = 5.0, 75.0  # needle is oblique: not a horizontal layer, not a vertical shadow
PROFILE_HALF_WIDTH_MM = 1.5
SMOOTH_ALONG_MM = 0.6
MIN_RUN_MM = 5.0
BRIDGE_GAP_MM = 1.5
FIRST_FIT_QUANTILE = 0.6  # before the tip is known, fit the brightest 40 % of the chord
STEP_WINDOW_MM = 2.0  # tip step-edge window
REFINE_ITERATIONS = 3
SHAFT_LEVEL_QUANTILE = 0.8  # shaft brightness: robust to dim stretches and speckle
TIP_LEVEL = 0.9  # a tip step must start from ~the shaft's brightness
CENTRE_HALF_MM = 0.5
FLANK_MM = (1.5, 2.5)  # shallower flank band, beyond the widest (14G, 2.1 mm) shaft


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


def fit_line(th: np.ndarray, gray: np.ndarray, theta: float, r: float, mmpp: float) -> LineFit:
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
