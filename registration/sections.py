"""Serial sections: two or three copies of the same core side by side on one slide.

Input: the tissue mask of the slide level (inside ``pathology.roi`` when given), the cancer mask and
µm per pixel. Output: ``Sections`` — how many copies, the shift between neighbouring copies,
and the mask of the copy to use — or None when the slide holds one section.

Method: adjacent sections of one core are (nearly) translated copies of each other. The
autocorrelation of the tissue mask (FFT) has a peak at that translation, as high as the
share of tissue that repeats. A single core broken into pieces also repeats a little (a
piece resembles its neighbour), but along the core; copies lie beside it. So a peak that
repeats at least COPY_SHARE of the tissue, at a shift mostly across the core's direction and
longer than the core is wide, means copies. Each tissue piece is numbered by how many times
the shift can be taken back from it while still landing on tissue; the copy used is the one
carrying the most annotated cancer (the pathologist often outlines one copy only), else the
first. When pieces cannot be numbered consistently, the caller fails asking for a roi.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

COPY_SHARE = 0.35  # share of the tissue that repeats at the copy shift
MAX_COPIES = 3
ACROSS_MIN = 0.7  # |sin| of the angle between shift and core direction (~45 deg)
MIN_SHIFT_WIDTHS = 1.5  # the shift is longer than this many core widths
LAND_SHARE = 0.5  # a piece "has a copy" when this share of it lands on tissue
WORK_PX = 512  # autocorrelation at most this size (long side)


@dataclass
class Sections:
    count: int
    shift_px: tuple[float, float]  # level px between neighbouring copies
    used: int  # 0-based copy number, from the first copy along -shift
    keep: np.ndarray  # bool mask of the pieces of the copy used
    share: float  # autocorrelation peak / zero-shift peak


def _autocorr_peak(mask: np.ndarray, min_shift: float, u: np.ndarray) -> tuple[np.ndarray, float]:
    """Highest autocorrelation at a shift longer than min_shift and mostly across direction u
    (along the core a long piece overlaps itself at any short shift)."""
    f = min(1.0, WORK_PX / max(mask.shape))
    small = cv2.resize(mask.astype(np.float32), None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    h, w = small.shape
    pad = np.zeros((2 * h, 2 * w), np.float32)
    pad[:h, :w] = small
    spec = np.fft.rfft2(pad)
    ac = np.fft.fftshift(np.fft.irfft2(spec * np.conj(spec), s=pad.shape))
    cy, cx = h, w
    yy, xx = np.mgrid[: 2 * h, : 2 * w]
    dx, dy = xx - cx, yy - cy
    dist = np.hypot(dx, dy)
    ac[dist < min_shift * f] = 0
    ac[np.abs(u[0] * dy - u[1] * dx) < ACROSS_MIN * dist] = 0
    k = int(np.argmax(ac))
    py, px = divmod(k, 2 * w)
    zero = float((small * small).sum())
    return np.array([px - cx, py - cy], float) / f, float(ac[py, px]) / max(zero, 1e-9)


def _direction(mask: np.ndarray) -> np.ndarray:
    """The core's overall direction: orientation average (doubled angles) of the mask's edges."""
    gx = cv2.Sobel(mask.astype(np.float32), cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(mask.astype(np.float32), cv2.CV_32F, 0, 1)
    ang = 2 * np.arctan2(gy, gx)
    mag = np.hypot(gx, gy)
    a = 0.5 * np.arctan2((mag * np.sin(ang)).sum(), (mag * np.cos(ang)).sum())
    return np.array([-np.sin(a), np.cos(a)])  # edges' normals average across the core: rotate 90 deg


def _lands(comp: np.ndarray, tissue: np.ndarray, shift: np.ndarray) -> bool:
    ys, xs = np.nonzero(comp)
    x, y = np.round(xs - shift[0]).astype(int), np.round(ys - shift[1]).astype(int)
    ok = (x >= 0) & (y >= 0) & (x < tissue.shape[1]) & (y < tissue.shape[0])
    return ok.sum() > 0 and tissue[y[ok], x[ok]].sum() >= LAND_SHARE * len(xs)


def find_sections(tissue: np.ndarray, cancer: np.ndarray, mpp: float, min_piece_px: float) -> Sections | None:
    width_px = 2.0 * float(cv2.distanceTransform(tissue.astype(np.uint8), cv2.DIST_L2, 3).max())
    shift, share = _autocorr_peak(tissue, MIN_SHIFT_WIDTHS * width_px, _direction(tissue))
    if share < COPY_SHARE:
        return None
    n, lab, stats, _ = cv2.connectedComponentsWithStats(tissue.astype(np.uint8), connectivity=8)
    index = np.zeros(n, int)
    for i in range(1, n):
        if stats[i][4] < min_piece_px:
            index[i] = -1
            continue
        comp = lab == i
        k = 0
        while k < MAX_COPIES - 1 and _lands(comp, tissue, (k + 1) * shift):
            k += 1
        index[i] = k
    count = int(index.max()) + 1
    if count < 2:
        return None
    per_copy = [np.isin(lab, np.nonzero(index == k)[0]) for k in range(count)]
    cancer_px = [int(np.count_nonzero(cancer[m])) for m in per_copy]
    used = int(np.argmax(cancer_px)) if max(cancer_px) > 0 else 0
    return Sections(count, (float(shift[0]), float(shift[1])), used, per_copy[used], share)


def section_lengths_consistent(sec: Sections, tissue: np.ndarray) -> bool:
    """The copy used holds a fair share of the tissue (not a stray piece mistaken for a copy)."""
    return sec.keep.sum() >= 0.5 * tissue.sum() / sec.count
