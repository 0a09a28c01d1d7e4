"""Registration quality score: how far to trust one case's label, with its parts.

Input: the fragments and placements, the transform info of mapping.place, the tract, the
tissue/rejected masks of the slide level, the ambiguous span, the expected fragment count
(pathology.fragments, optional) and where the shrinkage came from. Output: a dict for
report.json: ``score`` (0-1, the weakest part) and ``parts``, each with its measured value,
its own 0-1 score and what it means. Each part falls linearly from 1 to 0 between "fine" and
"bad" limits (named below); the limits are what a reviewer would flag, not fitted values.

Parts:
- fragments: count found vs expected (or vs a plausible 1-5 pieces for one core);
- length: fresh core length / tract length (>1.05 means core longer than the notch: wrong
  scale or a foreign piece; <0.8 much tissue missing); unconstrained when the shrinkage was
  derived from the tract itself;
- unexplained: tract length no tissue accounts for (lost at the ends or breaks), mm;
- rejected: ink/debris area on or next to the tissue (it may hide tissue), mm2;
- axis: mean off-centre distance of the tissue about the straightened medial axis, in
  half-widths (a bad axis skews every along-tract position);
- ambiguous: tract length whose cancer boundaries are marked unknown for position, mm.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_runtime.units import UM2_PER_MM2

EXPECTED_MAX_FRAGMENTS = 5
LENGTH_OK, LENGTH_LOW_BAD, LENGTH_HIGH_BAD = (0.8, 1.05), 0.4, 1.35
LENGTH_UNCONSTRAINED_SCORE = 0.75
UNEXPLAINED_BAD = 0.25  # share of the tract
REJECTED_BAD = 0.2  # share of the tissue area
REJECTED_NEAR_UM = 100.0
AXIS_BAD = 0.5  # half-widths
AMBIGUOUS_BAD = 0.3  # share of the tract


def _ramp(x: float, ok: float, bad: float) -> float:
    """1 at or below ok, 0 at or beyond bad (either direction), linear between."""
    if (bad > ok and x <= ok) or (bad < ok and x >= ok):
        return 1.0
    return float(np.clip(1.0 - (x - ok) / (bad - ok), 0.0, 1.0))


def rejected_near_tissue(tissue: np.ndarray, rejected: np.ndarray, mpp: float) -> int:
    r = max(1, int(round(REJECTED_NEAR_UM / mpp)))
    near = (
        cv2.dilate(tissue.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
        > 0
    )
    return int(np.count_nonzero(rejected & near))


def _axis_residual(frags) -> float:
    vals = []
    for f in frags:
        ok = np.isfinite(f.lo)
        if ok.sum() < 2:
            continue
        centre = (f.label.shape[1] - 1) / 2.0
        half = np.maximum((f.hi[ok] - f.lo[ok] + 1) / 2.0, 1.0)
        vals.append(float(np.median(np.abs((f.lo[ok] + f.hi[ok]) / 2.0 - centre) / half)))
    return float(np.mean(vals)) if vals else 0.0


def quality(
    frags,
    transform: dict,
    tract_mm: float,
    tissue_px: int,
    rejected_px: int,
    mpp: float,
    ambiguous_mm: float,
    expected_fragments: int | None,
    shrink_source: str,
) -> dict:
    n = len(frags)
    if expected_fragments:
        frag = {
            "value": n,
            "expected": expected_fragments,
            "score": _ramp(abs(n - expected_fragments), 0, 4),
            "meaning": "tissue pieces found vs pathology.fragments",
        }
    else:
        frag = {
            "value": n,
            "expected": f"1-{EXPECTED_MAX_FRAGMENTS}",
            "score": _ramp(n, EXPECTED_MAX_FRAGMENTS, 2 * EXPECTED_MAX_FRAGMENTS),
            "meaning": "tissue pieces found (more than a core usually breaks into: debris or a foreign piece)",
        }
    ratio = transform["core_to_tract_ratio"]
    if shrink_source == "tract length":
        length = {
            "value": ratio,
            "score": LENGTH_UNCONSTRAINED_SCORE,
            "meaning": "unconstrained: the shrinkage was derived from the tract (give pathology.shrinkage "
            "or fresh_length_mm)",
        }
    else:
        s = (
            _ramp(ratio, LENGTH_OK[0], LENGTH_LOW_BAD)
            if ratio < LENGTH_OK[0]
            else _ramp(ratio, LENGTH_OK[1], LENGTH_HIGH_BAD)
        )
        length = {"value": ratio, "score": s, "meaning": "fresh core length / tract length"}
    spare = transform.get("spare_mm", 0.0)
    rej_mm2 = rejected_px * mpp * mpp / UM2_PER_MM2
    tissue_mm2 = max(tissue_px * mpp * mpp / UM2_PER_MM2, 1e-9)
    axis = _axis_residual(frags)
    parts = {
        "fragments": frag,
        "length": length,
        "unexplained_mm": {
            "value": round(spare, 3),
            "score": _ramp(spare / tract_mm, 0.0, UNEXPLAINED_BAD),
            "meaning": "tract length no tissue accounts for (lost at the ends or breaks)",
        },
        "rejected_mm2": {
            "value": round(rej_mm2, 4),
            "score": _ramp(rej_mm2 / tissue_mm2, 0.0, REJECTED_BAD),
            "meaning": "ink/debris on or next to the tissue (may hide tissue)",
        },
        "axis_residual": {
            "value": round(axis, 3),
            "score": _ramp(axis, 0.0, AXIS_BAD),
            "meaning": "tissue off-centre about the medial axis, half-widths",
        },
        "ambiguous_mm": {
            "value": round(ambiguous_mm, 3),
            "score": _ramp(ambiguous_mm / tract_mm, 0.0, AMBIGUOUS_BAD),
            "meaning": "tract length whose cancer boundaries are unknown for position (label 255)",
        },
    }
    for p in parts.values():
        p["score"] = round(float(p["score"]), 3)
        if isinstance(p["value"], float):
            p["value"] = round(p["value"], 4)
    weakest = min(parts, key=lambda k: parts[k]["score"])
    return {"score": parts[weakest]["score"], "weakest": weakest, "parts": parts}
