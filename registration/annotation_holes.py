"""Whether each hole of an annotation polygon lies inside its outer ring.

Input: polygons as annotations.py reads them (a polygon = [exterior ring, hole rings...], each ring a
float64 array [N, 2] of x, y in annotation pixels) and the feature's name for the error. Output:
nothing, or an InputError naming the feature and the hole.

rasterise cuts a hole from its own outline only. A hole that crosses its outline is no shape a
pathologist drew (QuPath writes valid polygons: a hole lies inside its outline and may touch it): it is
a broken export, or the rings of two outlines mixed up, and would cut an arbitrary notch out of the
cancer, or erase it whole. A hole counts as inside when every vertex lies inside or on the outer ring
(within TOUCH_PX, the rounding of exported coordinates) and no hole edge crosses an edge of the outer
ring: the vertex test alone misses a hole whose edge passes over a notch cut into the outline.

A hole that is its outline again (the same ring, from another start point or in the other direction,
to within TOUCH_PX) lies inside it by that rule, yet erases the whole region: a ring written twice by a
broken export or script, never a shape drawn. It is refused too: every vertex and edge midpoint of the
hole lies on the outline, and every vertex of the outline on the hole.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_runtime.errors import InputError

# Annotation px a hole may stray past its outline and still count as touching it: coordinates
# written with a few decimals put a vertex on the outline a hair off it; half a level-0 pixel erases
# nothing the label (a coarser level) could show.
TOUCH_PX = 0.5
MAX_PAIRS = 4_000_000  # hole-edge x outline-edge pairs compared at once (bounded memory on long outlines)


def _edges(ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ring's edges as (start points, end points), each [M, 2], without zero-length edges (a closed
    GeoJSON ring repeats its first point last)."""
    a, b = ring, np.roll(ring, -1, axis=0)
    keep = (a != b).any(axis=1)
    return a[keep], b[keep]


def _side(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Signed distance of points ``r`` [1, K, 2] from the lines through ``p``, ``q`` [M, 1, 2]: [M, K]."""
    d = q - p
    cross = d[..., 0] * (r[..., 1] - p[..., 1]) - d[..., 1] * (r[..., 0] - p[..., 0])
    return cross / np.hypot(d[..., 0], d[..., 1])


def _edges_cross(exterior: np.ndarray, hole: np.ndarray) -> bool:
    """Whether an edge of ``hole`` crosses an edge of ``exterior``, each passing more than TOUCH_PX
    to either side of the other: touching (a shared vertex, a vertex on an edge, a shared stretch) is
    no crossing."""
    a, b = _edges(exterior)
    c, d = _edges(hole)
    lo, hi = hole.min(axis=0) - TOUCH_PX, hole.max(axis=0) + TOUCH_PX
    near = (np.maximum(a, b) >= lo).all(axis=1) & (np.minimum(a, b) <= hi).all(axis=1)
    a, b = a[near], b[near]  # only outline edges in the hole's box can cross it
    if not len(a) or not len(c):
        return False
    step = max(1, MAX_PAIRS // len(a))
    for s in range(0, len(c), step):
        cs, ds = c[s : s + step, None], d[s : s + step, None]  # [H, 1, 2]
        ha, hb = _side(cs, ds, a[None]), _side(cs, ds, b[None])  # outline ends from each hole edge
        oc, od = (
            _side(a[:, None], b[:, None], c[None, s : s + step]),
            _side(a[:, None], b[:, None], d[None, s : s + step]),
        )  # hole edge ends from each outline edge: [E, H]
        apart = (ha * hb < 0) & (np.minimum(np.abs(ha), np.abs(hb)) > TOUCH_PX)
        across = (oc * od < 0) & (np.minimum(np.abs(oc), np.abs(od)) > TOUCH_PX)
        if (apart & across.T).any():
            return True
    return False


def _distances(ring: np.ndarray, points: np.ndarray):
    """Signed distances of ``points`` from ``ring`` (positive inside, 0 on it), one at a time. Both are
    moved to the ring's corner first: cv2 measures in float32, exact enough near 0, not at 1e5 px."""
    origin = ring.min(axis=0)
    contour = (ring - origin).astype(np.float32).reshape(-1, 1, 2)
    return (cv2.pointPolygonTest(contour, (float(x), float(y)), True) for x, y in points - origin)


def _vertex_outside(exterior: np.ndarray, hole: np.ndarray) -> bool:
    """Whether a vertex of ``hole`` lies more than TOUCH_PX outside ``exterior``."""
    return any(d < -TOUCH_PX for d in _distances(exterior, hole))


def _on(ring: np.ndarray, points: np.ndarray) -> bool:
    """Whether every one of ``points`` lies on ``ring``'s line, within TOUCH_PX."""
    return all(abs(d) <= TOUCH_PX for d in _distances(ring, points))


def _same_ring(exterior: np.ndarray, hole: np.ndarray) -> bool:
    """Whether ``hole`` (inside ``exterior``) traces ``exterior`` itself (module docstring). Only a hole
    spanning the outline's bounding box is measured point by point."""
    if np.abs(exterior.min(axis=0) - hole.min(axis=0)).max() > TOUCH_PX:
        return False
    if np.abs(exterior.max(axis=0) - hole.max(axis=0)).max() > TOUCH_PX:
        return False
    c, d = _edges(hole)
    return _on(exterior, hole) and _on(exterior, (c + d) / 2) and _on(hole, exterior)


def check_holes_inside(polys: list, where: str) -> None:
    """InputError naming ``where`` (the feature), the hole and its polygon when a hole of ``polys``
    (module docstring) is not inside its outer ring."""
    for j, (exterior, *holes) in enumerate(polys):
        for k, hole in enumerate(holes, start=1):
            if _vertex_outside(exterior, hole) or _edges_cross(exterior, hole):
                raise InputError(
                    f"{where}: hole {k} reaches outside the outer ring of polygon {j}, which would cut "
                    "an arbitrary part out of the outline's cancer; fix the outline (in QuPath: holes lie "
                    "inside their outline) and export the annotation again"
                )
            if _same_ring(exterior, hole):
                raise InputError(
                    f"{where}: hole {k} of polygon {j} is its outer ring again, which would erase the whole "
                    "outline's cancer; fix the outline (a hole is a smaller ring inside it) and export the "
                    "annotation again"
                )
