"""Simulated biopsy core: what the notch cut out of the lesion, as it lies on the slide.

Input: the lesion mask, the tract (the notch in the ultrasound image) and ``CoreParams``.
Output: a ``SlideLayout`` (tissue outlines + cancer polygons in level-0 pixels) and the truth
of the simulation (shrinkage, fragments, tissue lost at breaks, bend, rotation, tip end).

The core in tract coordinates (a along from the distal end, d across, mm) is the lesion
sampled at the ultrasound pixel it falls in. It breaks into 1-3 fragments (a little tissue
lost at each break), shrinks isotropically by ``shrinkage``, and is laid on the slide along a
bent centre line (arc-length preserving, so along-core distances survive the bend) and
rotated; tip_end says which slide side carries the needle-tip end.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from registration.sim_slide import SlideLayout
from registration.tract import Tract

UM_PER_MM = 1000.0
CORE_STEP_MM = 0.01         # raster step of the fresh core (10 µm << 100 µm ultrasound pixels)
OUTLINE_STEP_UM = 20.0
CONTOUR_KEEP_EVERY = 3      # thin the contour, keep it dense enough to follow the bend
MIN_FRAGMENT_MM = 3.0
CUT_RANGE = (0.15, 0.85)    # breaks fall within this share of the core length


@dataclass
class CoreParams:
    shrinkage: tuple = (0.75, 0.95)
    fragments: tuple = (1, 2, 3)
    fragment_p: tuple = (0.35, 0.35, 0.30)
    lost_mm: tuple = (0.1, 0.5)           # tissue lost at each break (fresh mm)
    slide_gap_um: tuple = (300.0, 1200.0)
    bend_deg: tuple = (10.0, 35.0)        # total turn of the centre line
    wiggle_deg: tuple = (-8.0, 8.0)       # S-shaped component
    rotation_deg: float = 12.0
    mpp: float = 4.0                      # level-0 µm per pixel
    margin_um: float = 400.0
    canvas: tuple | None = None           # force (height, width) level-0 pixels (benchmarks)


def _fragments(notch: float, rng, p: CoreParams) -> tuple[list, list]:
    n = int(rng.choice(p.fragments, p=p.fragment_p))
    for _ in range(100):
        cuts = np.sort(rng.uniform(*CUT_RANGE, n - 1) * notch)
        edges = np.concatenate([[0.0], cuts, [notch]])
        if np.all(np.diff(edges) >= MIN_FRAGMENT_MM):
            break
    else:
        cuts, n = np.array([]), 1
    lost = rng.uniform(*p.lost_mm, len(cuts))
    starts = [0.0] + list(cuts + lost / 2)
    ends = list(cuts - lost / 2) + [notch]
    return list(zip(starts, ends)), [float(v) for v in lost]


def _centre_line(total_um: float, rng, p: CoreParams, tip_right: bool):
    """Arc-length parametrised centre line: x (µm) -> position and direction angle."""
    turn = np.deg2rad(rng.uniform(*p.bend_deg)) * (1 if rng.random() < 0.5 else -1)
    wiggle = np.deg2rad(rng.uniform(*p.wiggle_deg))
    phi0 = np.deg2rad(rng.uniform(-p.rotation_deg, p.rotation_deg)) + (np.pi if tip_right else 0.0)
    xs = np.linspace(0.0, total_um, max(int(total_um / 5.0), 2))
    t = xs / total_um
    phi = phi0 + turn * (t - 0.5) + wiggle * np.sin(2 * np.pi * t)
    dx = np.diff(xs, prepend=0.0)
    cx, cy = np.cumsum(np.cos(phi) * dx), np.cumsum(np.sin(phi) * dx)
    return xs, cx, cy, phi, {"bend_deg": float(np.rad2deg(turn)), "wiggle_deg": float(np.rad2deg(wiggle)),
                             "rotation_deg": float(np.rad2deg(phi0))}


def build_layout(lesion: np.ndarray, tract: Tract, rng: np.random.Generator, p: CoreParams):
    notch, width = tract.length_mm, tract.width_mm
    na, nd = int(np.ceil(notch / CORE_STEP_MM)), int(np.ceil(width / CORE_STEP_MM))
    aa, dd = np.meshgrid((np.arange(na) + 0.5) * notch / na, -width / 2 + (np.arange(nd) + 0.5) * width / nd,
                         indexing="ij")
    px, py = tract.to_pixels(aa, dd)
    h, w = lesion.shape
    xi, yi = np.clip(np.round(px).astype(int), 0, w - 1), np.clip(np.round(py).astype(int), 0, h - 1)
    core = lesion[yi, xi].astype(np.uint8)               # [along, across]
    shrink = float(rng.uniform(*p.shrinkage))
    frags, lost = _fragments(notch, rng, p)
    gaps = rng.uniform(*p.slide_gap_um, len(frags) - 1)
    lens_um = [(b - a) * UM_PER_MM * shrink for a, b in frags]
    x0s = np.concatenate([[0.0], np.cumsum(np.array(lens_um[:-1]) + gaps)])
    total = float(x0s[-1] + lens_um[-1])
    tip_right = bool(rng.random() < 0.5)
    xs, cx, cy, phi, bend = _centre_line(total, rng, p, tip_right)
    half = width * UM_PER_MM * shrink / 2

    def to_slide(x, y):  # straight slide coords (µm) -> bent slide coords (µm)
        ph = np.interp(x, xs, phi)
        return np.interp(x, xs, cx) - y * np.sin(ph), np.interp(x, xs, cy) + y * np.cos(ph)

    tissue_um, cancer_um = [], []
    for (a0, a1), x0, ln in zip(frags, x0s, lens_um):
        xline = np.linspace(x0, x0 + ln, max(int(ln / OUTLINE_STEP_UM), 2))
        top, bottom = to_slide(xline, -half), to_slide(xline, half)
        tissue_um.append(np.vstack([np.stack(top, 1), np.stack(bottom, 1)[::-1]]))
        i0, i1 = int(round(a0 / notch * na)), int(round(a1 / notch * na))
        block = np.pad(core[i0:i1], 1)
        contours, hier = cv2.findContours(block, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        polys = {}
        for ci, cnt in enumerate(contours):
            pts = cnt[:, 0, :].astype(np.float64)[::CONTOUR_KEEP_EVERY] - 1.0   # (col, row) unpadded
            if len(pts) < 3:
                continue
            a = (i0 + pts[:, 1] + 0.5) * notch / na
            d = -width / 2 + (pts[:, 0] + 0.5) * width / nd
            ring = np.stack(to_slide(x0 + (a - a0) * UM_PER_MM * shrink, d * UM_PER_MM * shrink), 1)
            parent = int(hier[0][ci][3])
            if parent < 0:
                polys.setdefault(ci, []).insert(0, ring)
            else:
                polys.setdefault(parent, []).append(ring)
        cancer_um += [v for v in polys.values() if len(v) and len(v[0]) >= 3]
    allpts = np.vstack(tissue_um)
    lo, hi = allpts.min(0), allpts.max(0)
    if p.canvas is not None:
        ch, cw = p.canvas
        off = np.array([cw, ch]) * p.mpp / 2 - (lo + hi) / 2
    else:
        off = p.margin_um - lo
        cw, ch = (int(np.ceil((hi[0] - lo[0] + 2 * p.margin_um) / p.mpp)),
                  int(np.ceil((hi[1] - lo[1] + 2 * p.margin_um) / p.mpp)))
    tissue = [(t + off) / p.mpp for t in tissue_um]
    cancer = [[(r + off) / p.mpp for r in poly] for poly in cancer_um]
    layout = SlideLayout(width=int(cw), height=int(ch), mpp=p.mpp, tissue=tissue, cancer=cancer)
    truth = {"shrinkage": shrink, "tip_end": "right" if tip_right else "left",
             "fragments_mm": [[round(a, 4), round(b, 4)] for a, b in frags], "lost_mm": lost,
             "slide_gaps_um": [float(g) for g in gaps], "slide_mpp": p.mpp, "slide_shape": [int(ch), int(cw)],
             **bend}
    return layout, truth
