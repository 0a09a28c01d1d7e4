"""Core -> tract transform and rasterisation into the ultrasound frame.

Input: straightened fragments (tip end first), the tract, the shrinkage inputs. Output: a
``Placement`` per fragment (its along-tract interval in mm) and the label image (0 tissue,
1 cancer, 255 unknown) of ultrasound size.

Transform (a 1D similarity per fragment, see docs section 3.6): along-core microns on the
slide / shrinkage = fresh millimetres along the tract, measured from the distal (tip) end of
the notch. Fragments keep their order; the tract length left over after the fragments is
shared equally between the gaps between them (tissue lost at the breaks), and those gaps
are unknown (255). Across-core is normalised to the local tissue width and fills the band.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_runtime.errors import InputError
from registration.core import Fragment
from registration.tract import Tract

UM_PER_MM = 1000.0
SCALE_WARN = 0.10         # core vs tract length mismatch that earns a warning
SCALE_FAIL_HIGH = 2.0     # core > 2x the tract: mpp or shrinkage is wrong, not the anatomy
SCALE_FAIL_LOW = 0.25     # core < 1/4 of the tract: likely the wrong slide or mpp
LOW_COVERAGE_WARN = 0.70


@dataclass
class Placement:
    a0: float   # mm from the distal end of the notch
    a1: float


def resolve_shrinkage(frags: list[Fragment], tract_mm: float, shrinkage: float | None,
                      fresh_length_mm: float | None, warnings: list) -> tuple[float, str]:
    slide_mm = sum(f.length_um for f in frags) / UM_PER_MM
    if shrinkage is not None:
        return shrinkage, "pathology.shrinkage"
    if fresh_length_mm is not None:
        return slide_mm / fresh_length_mm, "pathology.fresh_length_mm"
    warnings.append("shrinkage not given (pathology.shrinkage / fresh_length_mm): derived from the tract "
                    "length assuming no tissue was lost")
    return slide_mm / tract_mm, "tract length"


def place(frags: list[Fragment], tract_mm: float, shrinkage: float, source: str, where: str,
          warnings: list) -> tuple[list[Placement], dict]:
    """Along-tract intervals of the fragments, tip end first."""
    fresh = np.array([f.length_um / UM_PER_MM / shrinkage for f in frags])
    total = float(fresh.sum())
    ratio = total / tract_mm
    if ratio > SCALE_FAIL_HIGH or ratio < SCALE_FAIL_LOW:
        raise InputError(f"{where}: inconsistent scales: the core maps to {total:.2f} mm (shrinkage from {source}, "
                         f"slide mpp) but the tract is {tract_mm:.2f} mm (tract / needle.notch_mm, "
                         "ultrasound.mm_per_pixel)")
    fit = 1.0
    if total > tract_mm:
        fit = tract_mm / total  # more core than notch: squeeze (the tract is the better-known length)
        fresh *= fit
        if ratio > 1 + SCALE_WARN:
            warnings.append(f"inconsistent scales: core is {ratio:.2f}x the tract length; compressed to fit")
    residual = tract_mm - float(fresh.sum())
    if len(frags) > 1:
        gap = residual / (len(frags) - 1)
        starts = np.concatenate([[0.0], np.cumsum(fresh[:-1] + gap)])
    else:
        gap = 0.0
        starts = np.array([residual / 2.0])  # one piece: centre it, the loss side is unknown
    if residual / tract_mm > 1 - LOW_COVERAGE_WARN:
        warnings.append(f"core covers only {100 * (1 - residual / tract_mm):.0f}% of the tract")
    placements = [Placement(float(a), float(a + ln)) for a, ln in zip(starts, fresh)]
    info = {"fresh_core_mm": round(total, 4), "core_to_tract_ratio": round(ratio, 4), "fit_scale": round(fit, 4),
            "gap_mm": round(gap, 4), "fragments": [
                {"slide_length_mm": round(f.length_um / UM_PER_MM, 4), "tract_from_mm": round(p.a0, 4),
                 "tract_to_mm": round(p.a1, 4), "area_mm2": round(f.area_um2 / 1e6, 4),
                 "centroid_level_px": [round(c, 1) for c in f.centroid]} for f, p in zip(frags, placements)]}
    return placements, info


def rasterise_label(shape: tuple[int, int], tract: Tract, frags: list[Fragment],
                    placements: list[Placement], flip_across: bool = False) -> np.ndarray:
    """Label of ultrasound size: 255 outside the band and in gaps, else the core's 0/1."""
    label = np.full(shape, 255, np.uint8)
    inside, a, d = tract.band(shape)
    ys, xs = np.nonzero(inside)
    if len(ys) == 0:
        return label
    av, dv = a[ys, xs].astype(np.float64), d[ys, xs].astype(np.float64)
    q = np.clip(dv / tract.width_mm + 0.5, 0.0, 1.0)
    if flip_across:
        q = 1.0 - q
    for f, p in zip(frags, placements):
        sel = (av >= p.a0) & (av < p.a1)
        if not sel.any():
            continue
        rows_n = f.label.shape[0]
        r = np.clip(((av[sel] - p.a0) / (p.a1 - p.a0) * rows_n).astype(np.int64), 0, rows_n - 1)
        lo, hi = f.lo[r], f.hi[r]
        known = np.isfinite(lo)
        c = np.zeros(len(r), np.int64)
        c[known] = np.floor(lo[known] - 0.5 + q[sel][known] * (hi[known] - lo[known] + 1) + 0.5).astype(np.int64)
        c = np.clip(c, 0, f.label.shape[1] - 1)
        vals = np.where(known, f.label[r, c], 255)
        label[ys[sel], xs[sel]] = vals
    return label
