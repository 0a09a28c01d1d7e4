"""Biopsy core on the slide: tissue fragments, each straightened along its medial axis.

Input: one slide level (RGB, mpp) and the cancer mask drawn at that level. Output: a list of
``Fragment``s, each a straightened strip (rows = along the medial axis, one level pixel per
row; columns = across, +normal side last) with label 0 tissue / 1 cancer / 255 glass, the
per-row tissue extent and its length in microns.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_runtime.errors import InputError
from edge_runtime.units import UM2_PER_MM2
from registration.centerline import medial_axis
from registration.tissue import no_tissue_reason, tissue_masks

MIN_FRAGMENT_AREA_UM2 = 40_000.0  # ~0.2 x 0.2 mm: smaller specks are dust or debris
STUBBY_ASPECT = 2.0  # length/width below which a piece takes the core's direction
STRIP_MARGIN = 1.3  # strip half-width in units of the fragment's max half-width
CROP_MARGIN_PX = 4


@dataclass
class Fragment:
    label: np.ndarray  # uint8 [rows, cols]: 0 tissue, 1 cancer, 255 no tissue
    rgb: np.ndarray  # uint8 [rows, cols, 3] straightened pixels (QA)
    lo: np.ndarray  # float [rows]: first tissue column (NaN if none)
    hi: np.ndarray  # float [rows]: last tissue column
    length_um: float
    centerline: np.ndarray  # [N, 2] level pixels (x, y), tip end first after orient()
    centroid: tuple[float, float]
    area_um2: float
    cancer_px: int  # annotated cancer pixels inside this fragment (level pixels)


def tissue_mask(rgb: np.ndarray, mpp: float) -> np.ndarray:
    """Tissue vs glass, ink and debris (tissue.tissue_masks), hole-filled."""
    return tissue_masks(rgb, mpp).tissue


def _straighten(comp: np.ndarray, cancer: np.ndarray, rgb: np.ndarray, line: np.ndarray):
    """Sample along normals of the medial axis; returns label, rgb strips and row extents."""
    dt = cv2.distanceTransform(comp.astype(np.uint8), cv2.DIST_L2, 5)
    half = STRIP_MARGIN * float(dt.max()) + 2
    seg = np.hypot(*np.diff(line, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    length = float(s[-1])
    rows = max(int(np.ceil(length)), 1)
    centres = (np.arange(rows) + 0.5) * (length / rows)  # row i covers [i, i+1) * length/rows
    cx, cy = np.interp(centres, s, line[:, 0]), np.interp(centres, s, line[:, 1])
    if rows > 1:
        tx, ty = np.gradient(cx), np.gradient(cy)
    else:
        tx, ty = np.array([line[-1, 0] - line[0, 0]]), np.array([line[-1, 1] - line[0, 1]])
    norm = np.hypot(tx, ty) + 1e-12
    nx, ny = -ty / norm, tx / norm
    offs = np.arange(-np.ceil(half), np.ceil(half) + 1)
    map_x = (cx[:, None] + offs[None, :] * nx[:, None]).astype(np.float32)
    map_y = (cy[:, None] + offs[None, :] * ny[:, None]).astype(np.float32)
    tis = cv2.remap(comp.astype(np.uint8), map_x, map_y, cv2.INTER_NEAREST, borderValue=0) > 0
    can = cv2.remap(cancer, map_x, map_y, cv2.INTER_NEAREST, borderValue=0) > 0
    strip_rgb = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderValue=(255, 255, 255))
    label = np.full(tis.shape, 255, np.uint8)
    label[tis] = 0
    label[tis & can] = 1
    any_t = tis.any(axis=1)
    cols = np.arange(tis.shape[1])
    lo = np.where(any_t, np.where(tis, cols, tis.shape[1]).min(axis=1), np.nan).astype(np.float64)
    hi = np.where(any_t, np.where(tis, cols, -1).max(axis=1), np.nan).astype(np.float64)
    return label, strip_rgb, lo, hi, length


def _stub_direction(lines: dict, stubby: set, i: int, cents) -> np.ndarray | None:
    """The core's direction at a stubby piece: the end tangent of the nearest longer fragment,
    else the line through the other pieces' centroids; None when the piece is alone."""
    c = np.asarray(cents[i], float)
    best, best_d = None, np.inf
    for j, line in lines.items():
        if j == i or j in stubby or len(line) < 3:
            continue
        for end, inner in ((line[0], line[min(5, len(line) - 1)]), (line[-1], line[max(len(line) - 6, 0)])):
            d = float(np.hypot(*(end - c)))
            if d < best_d:
                best, best_d = end - inner, d
    if best is not None:
        return best
    others = np.array([cents[j] for j in lines if j != i], float)
    if len(others) == 0:
        return None
    pts = np.vstack([others, c[None]])
    return np.linalg.svd(pts - pts.mean(0), full_matrices=False)[2][0]


def find_fragments(
    rgb: np.ndarray,
    mpp: float,
    cancer: np.ndarray,
    where: str,
    warnings: list,
    tissue: np.ndarray | None = None,
) -> list[Fragment]:
    """Tissue fragments of the core, each straightened; raises if no tissue is found.

    ``tissue``: the tissue mask when the caller already has it (tissue.tissue_masks)."""
    if tissue is None:
        tissue = tissue_mask(rgb, mpp)
    n, lab, stats, cents = cv2.connectedComponentsWithStats(tissue.astype(np.uint8), connectivity=8)
    min_px = MIN_FRAGMENT_AREA_UM2 / (mpp * mpp)
    kept = {}
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        if area >= min_px:
            x0, y0 = max(x - CROP_MARGIN_PX, 0), max(y - CROP_MARGIN_PX, 0)
            comp = (
                lab[
                    y0 : min(y + h + CROP_MARGIN_PX, rgb.shape[0]),
                    x0 : min(x + w + CROP_MARGIN_PX, rgb.shape[1]),
                ]
                == i
            )
            kept[i] = (comp, medial_axis(comp) + [x0, y0])
    lines = {i: line for i, (_, line) in kept.items()}
    stubby = set()
    for i, (comp, line) in kept.items():
        width = 2.0 * float(cv2.distanceTransform(comp.astype(np.uint8), cv2.DIST_L2, 3).max())
        if len(line) < STUBBY_ASPECT * width:
            stubby.add(i)
    frags = []
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        if area < min_px:
            if area > min_px / 4:
                warnings.append(
                    f"{where}: ignored a tissue speck of {area * mpp * mpp / UM2_PER_MM2:.3f} mm2 at "
                    f"level pixel ({cents[i][0]:.0f}, {cents[i][1]:.0f})"
                )
            continue
        x0, y0 = max(x - CROP_MARGIN_PX, 0), max(y - CROP_MARGIN_PX, 0)
        x1, y1 = min(x + w + CROP_MARGIN_PX, rgb.shape[1]), min(y + h + CROP_MARGIN_PX, rgb.shape[0])
        comp = lab[y0:y1, x0:x1] == i
        hint = _stub_direction(lines, stubby, i, cents) if i in stubby else None
        line = medial_axis(comp, hint) if hint is not None else kept[i][1] - [x0, y0]
        label, strip_rgb, lo, hi, length = _straighten(comp, cancer[y0:y1, x0:x1], rgb[y0:y1, x0:x1], line)
        frags.append(
            Fragment(
                label,
                strip_rgb,
                lo,
                hi,
                length * mpp,
                line + [x0, y0],
                (float(cents[i][0]), float(cents[i][1])),
                float(area) * mpp * mpp,
                int(np.count_nonzero(cancer[y0:y1, x0:x1][comp])),
            )
        )
    if not frags:
        why = no_tissue_reason(rgb) or (
            f"its stained pieces are all smaller than {MIN_FRAGMENT_AREA_UM2 / UM2_PER_MM2:g} mm2"
        )
        raise InputError(f"{where}: no tissue found on the slide: {why} (is this the right WSI / level?)")
    return frags


TIP_AXES = {"left": (1.0, 0.0), "right": (-1.0, 0.0), "top": (0.0, 1.0), "bottom": (0.0, -1.0)}


def orient(frags: list[Fragment], tip_end: str) -> list[Fragment]:
    """Order fragments from the needle-tip end and flip each strip so row 0 is its tip end.

    Flipping the row order alone would mirror the strip; reversing rows *and* columns is the
    180-degree turn that keeps the core's handedness (left stays left looking tip -> base).
    """
    ax = np.array(TIP_AXES[tip_end])
    out = []
    for f in sorted(frags, key=lambda f: float(np.dot(f.centroid, ax))):
        if np.dot(f.centerline[0], ax) > np.dot(f.centerline[-1], ax):
            ncol = f.label.shape[1] - 1
            f = Fragment(
                f.label[::-1, ::-1].copy(),
                f.rgb[::-1, ::-1].copy(),
                (ncol - f.hi)[::-1].copy(),
                (ncol - f.lo)[::-1].copy(),
                f.length_um,
                f.centerline[::-1].copy(),
                f.centroid,
                f.area_um2,
                f.cancer_px,
            )
        out.append(f)
    return out
