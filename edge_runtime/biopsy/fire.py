"""Detect a spring-loaded core-needle fire in the ROI, frame by frame, cheaply.

Input per frame: the ROI (BGR, ROI pixels) and its index. Output: a :class:`FireEvent` one
frame after the fire (the confirming frame is the post-fire frame), else None.

Method, on a small copy of the ROI (about ``WORK_MM_PER_PX``; a 1200x840 ROI at 0.05 mm/px
becomes 240x168, so one frame costs well under a millisecond):
1. white top-hat with a square wider than a needle: thin bright echoes stay, tissue brightness goes;
2. *rise* = top-hat now minus top-hat two frames ago (a fire may straddle two frames); a fire
   is new echo: the largest connected rise region must be a thin oblique segment at least
   ``MIN_JUMP_MM`` long. A still bright line (ligament, specular reflector) never rises; slow
   advancement rises by a millimetre or two a frame;
3. rigid motion (probe slide) moves bright lines: as much echo vanishes as appears, so a rise
   with a comparable *fall* is rejected; the jump must also continue an echo that was already
   there (the shaft behind the old tip), which a needle swept into the image plane lacks;
4. the next frame must still show the new echo (a flash or a dropped frame is no fire); the
   pre-fire frame is the last one before the echo started to grow.
Why not registration's detector: it costs far more than a frame's budget (Radon over the full
ROI) and edge_runtime must not import registration; this detector only needs the change, and the
tip is refined on the full-resolution post-fire ROI off the render path (:mod:`.needle_fit`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

WORK_MM_PER_PX = 0.25  # working scale of the small image
TOPHAT_MM = 4.0  # wider than any core needle's echo (14G: 2.1 mm)
RISE_LEVEL = 50  # grey levels of top-hat gained: new echo (needle ~150 above tissue)
MIN_JUMP_MM = 10.0  # throws are 15-25 mm; part of it may leave the image plane
MAX_WIDTH_MM = 4.0  # the new echo (shaft + merged reverberation) is thin
MIN_ANGLE_DEG, MAX_ANGLE_DEG = 5.0, 80.0  # oblique, as a needle enters the breast
MAX_FALL_SHARE = 0.3  # vanished echo / new echo above this: the probe moved
SHAFT_BEHIND_MM = (1.0, 5.0)  # the old shaft must lie behind the new echo, along its axis
CONFIRM_SHARE = 0.6  # share of the new echo still bright in the next frame
STARTED_SHARE = 0.25  # share already risen one frame earlier: the jump straddled two frames
REFRACTORY_FRAMES = 10  # one fire is reported once
SETTLED_MM = 2.0  # new echo (as a line length) still appearing: the needle still moves
MAX_SETTLE_FRAMES = 2
GAP_MM = 1.0  # speckle gaps bridged when following the echo to its end


@dataclass
class FireEvent:
    pre_index: int  # last frame before the jump (the dataset image)
    fire_index: int  # first frame showing the jump
    post_index: int  # the confirming frame: needle in the tract
    point: tuple[float, float]  # a point on the needle axis (ROI pixels)
    direction: tuple[float, float]  # unit axis, pointing deeper (+y)
    tip: tuple[float, float]  # deep end of the new echo (ROI pixels): the tip estimate
    jump_mm: float


class FireDetector:
    """Feed every rendered frame's ROI in order to :meth:`step`."""

    def __init__(self, mm_per_px: float, roi_w: int, roi_h: int):
        factor = max(1, int(round(WORK_MM_PER_PX / mm_per_px)))
        self.size = (max(roi_w // factor, 8), max(roi_h // factor, 8))
        self.scale = (roi_w / self.size[0], roi_h / self.size[1])  # ROI px per small px
        self.mm = mm_per_px * float(np.mean(self.scale))  # mm per small px
        d = max(int(round(TOPHAT_MM / self.mm)) | 1, 3)
        self.kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (d, d))  # separable: 5x faster than a disk
        self.history: deque[tuple[int, np.ndarray]] = deque(maxlen=2)  # frames t-2, t-1
        self.pending: dict | None = None
        self.quiet_until = -1

    def small_tophat(self, roi_bgr: np.ndarray) -> np.ndarray:
        small = cv2.resize(roi_bgr, self.size, interpolation=cv2.INTER_LINEAR)
        if small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return cv2.morphologyEx(small, cv2.MORPH_TOPHAT, self.kernel)

    @property
    def last_tophat(self) -> np.ndarray | None:
        """The newest frame's small top-hat image (shared with the expected-yield band)."""
        return self.history[-1][1] if self.history else None

    @property
    def pending_fire(self) -> int | None:
        """The first frame of a possible fire still waiting for its confirming frame, else None."""
        return None if self.pending is None else self.pending["fire"]

    def step(self, index: int, roi_bgr: np.ndarray) -> FireEvent | None:
        th = self.small_tophat(roi_bgr)
        event = None
        if self.pending is not None:
            event = self._confirm(index, th)
        elif len(self.history) == 2 and index > self.quiet_until:
            self.pending = self._candidate(index, th)
        self.history.append((index, th))
        return event

    def _confirm(self, index: int, th: np.ndarray) -> FireEvent | None:
        cand, self.pending = self.pending, None
        ys, xs = cand["pixels"]
        if np.mean(th[ys, xs] > RISE_LEVEL) < CONFIRM_SHARE:
            return None
        still_rising = cv2.countNonZero((cv2.subtract(th, self.history[-1][1]) > RISE_LEVEL).astype(np.uint8))
        if still_rising * self.mm >= SETTLED_MM and cand["waits"] < MAX_SETTLE_FRAMES:
            cand["waits"] += 1  # the stylet is still travelling: the post-fire frame comes later
            cand["pixels"] = np.nonzero(th > RISE_LEVEL)
            self.pending = cand
            return None
        self.quiet_until = index + REFRACTORY_FRAMES
        tip, extra = self._follow(th, cand["tip_small"], np.array(cand["direction"]))
        return FireEvent(
            cand["pre"],
            cand["fire"],
            index,
            cand["point"],
            cand["direction"],
            self._to_roi(*tip),
            cand["jump_mm"] + extra,
        )

    def _follow(self, th: np.ndarray, tip: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, float]:
        """The echo's deep end now, walking on from ``tip`` along ``d`` (gaps up to GAP_MM bridged):
        the stylet may have travelled on after the frame the jump was seen in."""
        h, w = th.shape
        last, gap, s = 0.0, 0.0, 0.0
        while gap <= GAP_MM / self.mm:
            s += 1.0
            x, y = int(round(tip[0] + s * d[0])), int(round(tip[1] + s * d[1]))
            if not (0 <= x < w and 0 <= y < h):
                break
            if th[y, x] > RISE_LEVEL:
                last, gap = s, 0.0
            else:
                gap += 1.0
        return tip + last * d, last * self.mm

    def _to_roi(self, x: float, y: float) -> tuple[float, float]:
        return (x + 0.5) * self.scale[0] - 0.5, (y + 0.5) * self.scale[1] - 0.5

    def _candidate(self, index: int, th: np.ndarray) -> dict | None:
        (i2, th2), (i1, th1) = self.history[0], self.history[1]  # frames t-2 and t-1
        rise = cv2.subtract(th, th2)
        new = (rise > RISE_LEVEL).astype(np.uint8)
        appeared = cv2.countNonZero(new)
        if appeared < MIN_JUMP_MM / self.mm:  # most frames end here
            return None
        fallen = cv2.countNonZero((cv2.subtract(th2, th) > RISE_LEVEL).astype(np.uint8))
        if fallen > MAX_FALL_SHARE * appeared:
            return None
        count, labels, stats, _ = cv2.connectedComponentsWithStats(new, connectivity=8)
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        ys, xs = np.nonzero(labels == k)
        if len(xs) < MIN_JUMP_MM / self.mm:
            return None
        w = rise[ys, xs].astype(np.float64)
        c = np.array([np.average(xs, weights=w), np.average(ys, weights=w)])
        pts = np.stack([xs, ys], 1) - c
        cov = (pts * w[:, None]).T @ pts / w.sum()
        evals, evecs = np.linalg.eigh(cov)
        d = evecs[:, 1] * (1 if evecs[1, 1] >= 0 else -1)
        along = pts @ d
        length_mm = float(np.ptp(along)) * self.mm
        width_mm = 4.0 * float(np.sqrt(max(evals[0], 0.0))) * self.mm  # +-2 sd across
        angle = float(np.degrees(np.arctan2(abs(d[1]), abs(d[0]))))
        if length_mm < MIN_JUMP_MM or width_mm > MAX_WIDTH_MM or not MIN_ANGLE_DEG <= angle <= MAX_ANGLE_DEG:
            return None
        if not self._shaft_behind(th2, c + along.min() * d, d):
            return None
        started = float(np.mean(cv2.subtract(th1, th2)[ys, xs] > RISE_LEVEL)) > STARTED_SHARE
        tip = c + along.max() * d
        return {
            "pixels": (ys, xs),
            "waits": 0,
            "pre": i2 if started else i1,
            "fire": i1 if started else index,
            "point": self._to_roi(*c),
            "tip_small": tip,
            "direction": (float(d[0]), float(d[1])),
            "tip": self._to_roi(*tip),
            "jump_mm": length_mm,
        }

    def _shaft_behind(self, th_before: np.ndarray, start: np.ndarray, d: np.ndarray) -> bool:
        """Echo was there before the jump, just behind its proximal end (the old shaft)."""
        s = np.arange(SHAFT_BEHIND_MM[0], SHAFT_BEHIND_MM[1], self.mm / 2) / self.mm
        px = np.clip(np.round(start[0] - s * d[0]).astype(int), 0, th_before.shape[1] - 1)
        py = np.clip(np.round(start[1] - s * d[1]).astype(int), 0, th_before.shape[0] - 1)
        return float(np.median(th_before[py, px])) > RISE_LEVEL
