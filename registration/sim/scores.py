"""The registration benchmark's scores: a label against the simulated truth.

Inputs: a label image and the truth (0 tissue, 1 cancer, 255 unknown), and for the boundary error
the case's tract (``case.yaml``). Outputs: pixel counts over pixels known in both (:func:`confusion`),
Dice on cancer (:func:`dice`) and the along-tract boundary errors in mm (:func:`boundary_errors`).
"""

from __future__ import annotations

import numpy as np

from registration.tract import Tract

STEP_MM = 0.02
NEAR_KNOWN_MM = 0.3
MISS_MM = 2.0


def confusion(label: np.ndarray, truth: np.ndarray) -> dict:
    k = (label != 255) & (truth != 255)
    return {
        "tp": int(((label == 1) & (truth == 1) & k).sum()),
        "fp": int(((label == 1) & (truth == 0) & k).sum()),
        "fn": int(((label == 0) & (truth == 1) & k).sum()),
        "tn": int(((label == 0) & (truth == 0) & k).sum()),
    }


def dice(c: dict) -> float:
    den = 2 * c["tp"] + c["fp"] + c["fn"]
    return 1.0 if den == 0 else 2 * c["tp"] / den


def boundary_errors(
    label: np.ndarray, lesion_truth: np.ndarray, case: dict, positions: list | None = None
) -> list[float]:
    """Along-tract distances (mm) between truth and label cancer boundaries on the centre line
    (``positions`` collects each scored truth boundary's distance from the tip end, mm)."""
    t = case["tract"]
    mm = case["ultrasound"]["mm_per_pixel"]
    tract = Tract(tuple(t["start"]), tuple(t["end"]), t["width_mm"], (mm, mm))
    a = np.arange(0.0, tract.length_mm, STEP_MM)
    x, y = tract.to_pixels(a, np.zeros_like(a))
    h, w = label.shape
    xi, yi = np.clip(np.round(x).astype(int), 0, w - 1), np.clip(np.round(y).astype(int), 0, h - 1)
    tv, lv = lesion_truth[yi, xi], label[yi, xi]
    tb = np.nonzero(np.diff(tv.astype(np.int8)))[0]
    near = int(NEAR_KNOWN_MM / STEP_MM)
    # label boundaries: a change between known samples, directly or across an unknown run no longer
    # than the known-both-sides window (an ambiguous span), placed at the middle of that run
    k = np.nonzero(lv != 255)[0]
    step = np.nonzero((lv[k[:-1]] != lv[k[1:]]) & (np.diff(k) <= 2 * near + 1))[0] if len(k) > 1 else []
    lb = np.array([(k[i] + k[i + 1] - 1) / 2.0 for i in step])
    errs = []
    for b in tb:
        lo, hi = max(b - near, 0), min(b + near + 1, len(lv) - 1)
        if lv[lo] == 255 or lv[hi] == 255:
            continue  # the truth boundary lies in a gap: the label makes no claim there
        errs.append(min(float(np.min(np.abs(lb - b))) * STEP_MM, MISS_MM) if len(lb) else MISS_MM)
        if positions is not None:
            positions.append(float(a[b] + STEP_MM / 2))
    return errs
