"""Annotations drawn the way pathologists draw them (simulation only).

Input: exact cancer polygons (level-0 px rings: [exterior, hole, ...]), the layout and
``sim_lab.LabParams``. Output: the polygons simplified at 20-50 µm (Douglas-Peucker, as a
hand-drawn or QuPath-simplified outline), each offset 0-25 µm inside or outside the true
boundary, holes kept; the class name in one of several spellings (Tumor/tumor/TUMOR); and
extra Normal/Stroma regions over some tissue, as labs annotate alongside the tumour.
"""

from __future__ import annotations

import uuid

import cv2
import numpy as np

from registration.sim.lab import CANCER_SPELLINGS

NORMAL_SPELLINGS = ("Normal", "normal", "Stroma", "STROMA")


def _offset(ring: np.ndarray, dist_px: float) -> np.ndarray:
    """Move every vertex dist_px along its outward normal (negative = inwards)."""
    prev, nxt = np.roll(ring, 1, 0), np.roll(ring, -1, 0)
    t = nxt - prev
    n = np.stack([t[:, 1], -t[:, 0]], 1) / (np.hypot(t[:, 0], t[:, 1])[:, None] + 1e-9)
    area = 0.5 * np.sum(ring[:, 0] * nxt[:, 1] - nxt[:, 0] * ring[:, 1])
    return ring + np.sign(area) * n * dist_px


def _simplify(ring: np.ndarray, eps_px: float) -> np.ndarray:
    out = cv2.approxPolyDP(ring.astype(np.float32).reshape(-1, 1, 2), eps_px, True)[:, 0, :].astype(
        np.float64
    )
    return out if len(out) >= 3 else ring


def hand_drawn(cancer: list, layout, habits, rnd) -> tuple[list, str, list]:
    eps = rnd.uniform(*habits.simplify_um) / layout.mpp
    off = rnd.uniform(*habits.outline_offset_um) / layout.mpp
    drawn = []
    for poly in cancer:
        rings = [_offset(_simplify(poly[0], eps), off)] + [_offset(_simplify(h, eps), off) for h in poly[1:]]
        drawn.append(rings)
    name = str(rnd.choice(CANCER_SPELLINGS))
    normal = []
    if rnd.random() < habits.normal_regions_p:
        for ring in layout.tissue[: max(1, len(layout.tissue) // 2)]:
            pts = _simplify(ring, eps)
            coords = [[round(float(x), 2), round(float(y), 2)] for x, y in pts]
            normal.append(
                {
                    "type": "Feature",
                    "id": str(uuid.UUID(bytes=rnd.bytes(16), version=4)),
                    "geometry": {"type": "Polygon", "coordinates": [coords + coords[:1]]},
                    "properties": {
                        "objectType": "annotation",
                        "classification": {"name": str(rnd.choice(NORMAL_SPELLINGS)), "color": [20, 200, 20]},
                    },
                }
            )
    return drawn, name, normal
