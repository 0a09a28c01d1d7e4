"""Core -> tract transform and rasterisation into the ultrasound frame.

Input: straightened fragments (tip end first), the tract, the shrinkage inputs. Output: a
``Placement`` per fragment (its along-tract interval in mm) and the label image (0 tissue,
1 cancer, 255 unknown) of ultrasound size.

Transform (a 1D similarity per fragment, docs/registration.md): along-core microns on the
slide / shrinkage = fresh millimetres along the tract, measured from the distal (tip) end of
the notch. Fragments keep their order. The tract length left over after the fragments (the
spare length) was lost somewhere: at the two outer ends of the core or at its breaks. The
slide cannot say where, so each place is taken as equally likely (a flat Dirichlet prior over
the slots): fragment k of n starts, on average, (k+1)/(n+1) of the spare length after the
tissue before it, with a standard deviation that the label shows as unknown (255) on both
sides of every cancer boundary of that fragment (the ambiguous span, reported with its
reason). With pathology.fresh_length_mm the spare length is the end loss only (the fragments
fill fresh_length_mm between them): the core sits centred, uncertain by that end loss.
Gaps are unknown (255). Across-core is normalised to the local tissue width and fills the band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d

from edge_runtime.errors import InputError
from edge_runtime.units import UM2_PER_MM2, UM_PER_MM
from registration.fragments import Fragment
from registration.tract import Tract

SCALE_WARN = 0.10  # core vs tract length mismatch that earns a warning
SCALE_FAIL_HIGH = 2.0  # core > 2x the tract: mpp or shrinkage is wrong, not the anatomy
SCALE_FAIL_LOW = 0.25  # core < 1/4 of the tract: likely the wrong slide or mpp
LOW_COVERAGE_WARN = 0.70
MIN_AMBIGUOUS_MM = 0.25  # a position uncertain (1 sd) by less than this is committed to, not marked


@dataclass
class Placement:
    a0: float  # mm from the distal end of the notch
    a1: float
    sigma_mm: float = 0.0  # standard deviation of the fragment's position along the tract


def _offsets(n: int, residual: float, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(spare length before each fragment, its standard deviation, gap after each fragment)."""
    k = np.arange(n, dtype=float)
    if residual <= 0:
        return np.zeros(n), np.zeros(n), np.zeros(n)
    if source == "pathology.fresh_length_mm":  # the spare length is the end loss: centre, +- uniform
        return np.full(n, residual / 2), np.full(n, residual / np.sqrt(12.0)), np.zeros(n)
    before = residual * (k + 1) / (n + 1)
    sigma = residual * np.sqrt((k + 1) * (n - k) / ((n + 1) ** 2 * (n + 2)))
    return before, sigma, np.full(n, residual / (n + 1))


def resolve_shrinkage(
    frags: list[Fragment],
    tract_mm: float,
    shrinkage: float | None,
    fresh_length_mm: float | None,
    warnings: list,
) -> tuple[float, str]:
    slide_mm = sum(f.length_um for f in frags) / UM_PER_MM
    if shrinkage is not None:
        return shrinkage, "pathology.shrinkage"
    if fresh_length_mm is not None:
        return slide_mm / fresh_length_mm, "pathology.fresh_length_mm"
    warnings.append(
        "shrinkage not given (pathology.shrinkage / fresh_length_mm): derived from the tract "
        "length assuming no tissue was lost"
    )
    return slide_mm / tract_mm, "tract length"


def place(
    frags: list[Fragment], tract_mm: float, shrinkage: float, source: str, where: str, warnings: list
) -> tuple[list[Placement], dict]:
    """Along-tract intervals of the fragments, tip end first."""
    fresh = np.array([f.length_um / UM_PER_MM / shrinkage for f in frags])
    total = float(fresh.sum())
    ratio = total / tract_mm
    if ratio > SCALE_FAIL_HIGH or ratio < SCALE_FAIL_LOW:
        raise InputError(
            f"{where}: inconsistent scales: the core maps to {total:.2f} mm (shrinkage from {source}, "
            f"slide mpp) but the tract is {tract_mm:.2f} mm (tract / needle.notch_mm, "
            "ultrasound.mm_per_pixel)"
        )
    fit = 1.0
    if total > tract_mm:
        fit = tract_mm / total  # more core than notch: squeeze (the tract is the better-known length)
        fresh *= fit
        if ratio > 1 + SCALE_WARN:
            warnings.append(f"inconsistent scales: core is {ratio:.2f}x the tract length; compressed to fit")
    residual = tract_mm - float(fresh.sum())
    before, sigma, gaps = _offsets(len(frags), residual, source)
    starts = before + np.concatenate([[0.0], np.cumsum(fresh[:-1])])
    gap = float(gaps[0]) if len(frags) > 1 else 0.0
    if residual / tract_mm > 1 - LOW_COVERAGE_WARN:
        warnings.append(f"core covers only {100 * (1 - residual / tract_mm):.0f}% of the tract")
    placements = [
        Placement(float(a), float(a + ln), float(sg)) for a, ln, sg in zip(starts, fresh, sigma, strict=False)
    ]
    info = {
        "fresh_core_mm": round(total, 4),
        "core_to_tract_ratio": round(ratio, 4),
        "fit_scale": round(fit, 4),
        "gap_mm": round(gap, 4),
        "spare_mm": round(max(residual, 0.0), 4),
        "fragments": [
            {
                "slide_length_mm": round(f.length_um / UM_PER_MM, 4),
                "tract_from_mm": round(p.a0, 4),
                "tract_to_mm": round(p.a1, 4),
                "position_sd_mm": round(p.sigma_mm, 4),
                "area_mm2": round(f.area_um2 / UM2_PER_MM2, 4),
                "centroid_level_px": [round(c, 1) for c in f.centroid],
            }
            for f, p in zip(frags, placements, strict=False)
        ],
    }
    return placements, info


def rasterise_label(
    shape: tuple[int, int],
    tract: Tract,
    frags: list[Fragment],
    placements: list[Placement],
    flip_across: bool = False,
) -> np.ndarray:
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
    for f, p in zip(frags, placements, strict=False):
        sel = (av >= p.a0) & (av < p.a1)
        if not sel.any():
            continue
        rows_n = f.label.shape[0]
        flab = (
            ambiguous_label(f.label, p.sigma_mm / max(p.a1 - p.a0, 1e-9) * rows_n)
            if p.sigma_mm >= MIN_AMBIGUOUS_MM
            else f.label
        )
        r = np.clip(((av[sel] - p.a0) / (p.a1 - p.a0) * rows_n).astype(np.int64), 0, rows_n - 1)
        lo, hi = f.lo[r], f.hi[r]
        known = np.isfinite(lo)
        c = np.zeros(len(r), np.int64)
        c[known] = np.floor(lo[known] - 0.5 + q[sel][known] * (hi[known] - lo[known] + 1) + 0.5).astype(
            np.int64
        )
        c = np.clip(c, 0, f.label.shape[1] - 1)
        vals = np.where(known, flab[r, c], 255)
        label[ys[sel], xs[sel]] = vals
    return label


def ambiguous_label(label: np.ndarray, half_rows: float) -> np.ndarray:
    """The strip label with 255 within half_rows (along) of every cancer/tissue boundary."""
    size = 2 * int(round(half_rows)) + 1
    near_c = maximum_filter1d((label == 1).astype(np.uint8), size, axis=0) > 0
    near_t = maximum_filter1d((label == 0).astype(np.uint8), size, axis=0) > 0
    out = label.copy()
    out[near_c & near_t & (label != 255)] = 255
    return out


def ambiguous_mm(frags: list[Fragment], placements: list[Placement]) -> float:
    """Length of tract (mm) over which some cancer boundary is marked unknown for position."""
    total = 0.0
    for f, p in zip(frags, placements, strict=False):
        if p.sigma_mm < MIN_AMBIGUOUS_MM:
            continue
        rows = f.label.shape[0]
        amb = ambiguous_label(f.label, p.sigma_mm / max(p.a1 - p.a0, 1e-9) * rows)
        tissue = np.count_nonzero(f.label != 255)
        # the equivalent span: share of the fragment's tissue made unknown, times its tract length
        total += np.count_nonzero((amb == 255) & (f.label != 255)) / max(tissue, 1) * (p.a1 - p.a0)
    return total
