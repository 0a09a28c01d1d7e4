"""Whether each hole of an annotation polygon lies inside its outer ring.

Input: polygons as annotations.py reads them (a polygon = [exterior ring, hole rings...], each ring a
float64 array [N, 2] of x, y in annotation pixels) and the feature's name for the error. Output:
nothing, or an InputError naming the feature and the hole.

rasterise cuts a hole from its own outline only. A hole that crosses its outline is no shape a
pathologist drew (QuPath writes valid polygons: a hole lies inside its outline and may touch it): it is
a broken export, or the rings of two outlines mixed up, and would cut an arbitrary notch out of the
cancer, or erase it whole. A hole counts as inside when every vertex lies inside (even-odd rule) or on
the outer ring (within TOUCH_PX, the rounding of exported coordinates) and no hole edge crosses an edge
of the outer ring: the vertex test alone misses a hole whose edge passes over a notch cut into the outline.

A hole that is its outline again (the same ring, from another start point or in the other direction,
to within TOUCH_PX) lies inside it by that rule, yet erases the whole region: a ring written twice by a
broken export or script, never a shape drawn. It is refused too: every vertex and edge midpoint of the
hole lies on the outline, and every vertex of the outline on the hole.

Cost: near-linear in the rings' vertices, not their product (a file under the size limit holds rings of
millions of vertices). The inside test compares a vertex only with the outline edges its horizontal line
meets; the distance and crossing tests only pairs in neighbouring cells of a grid whose cells are an edge
long on average (_Grid). A drawn outline meets a line a few times and puts a few vertices in a cell; rings
needing more than MAX_CHECK_PAIRS comparisons in one test (vertices a hundredth of a pixel apart, a ring
crossing one spot thousands of times) are refused naming the hole, never checked for hours.
"""

from __future__ import annotations

import numpy as np

from edge_runtime.errors import InputError

# Annotation px a hole may stray past its outline and still count as touching it: coordinates
# written with a few decimals put a vertex on the outline a hair off it; half a level-0 pixel erases
# nothing the label (a coarser level) could show.
TOUCH_PX = 0.5
CHUNK_PAIRS = 2_000_000  # pairs compared at once: bounded memory (~100 MB) for rings of any length
# Pairs one test may compare (~10 s). Rings of a million vertices a pixel apart need at most ~8e6, even
# a hole tracing its outline; past this, a ring is no outline anyone drew (vertices a hundredth of a
# pixel apart), and its checks would take minutes each.
MAX_CHECK_PAIRS = 50_000_000
NEIGHBOURS = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]


class TooDense(Exception):
    """A test would compare ``pairs`` pairs, over MAX_CHECK_PAIRS; check_holes_inside names the hole."""

    def __init__(self, pairs: int):
        super().__init__(pairs)
        self.pairs = pairs


def _edges(ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ring's edges as (start points, end points), each [M, 2], without zero-length edges (a closed
    GeoJSON ring repeats its first point last)."""
    a, b = ring, np.roll(ring, -1, axis=0)
    keep = (a != b).any(axis=1)
    return a[keep], b[keep]


def _expand(counts: np.ndarray):
    """For ``counts`` [K] >= 0: in chunks of about CHUNK_PAIRS, (i, k) with i repeated counts[i] times
    and k = 0 .. counts[i] - 1. TooDense, before any work, when they sum past MAX_CHECK_PAIRS."""
    total = int(counts.sum())
    if total > MAX_CHECK_PAIRS:
        raise TooDense(total)
    ends = np.cumsum(counts)
    start = 0
    while start < len(counts):
        done = int(ends[start - 1]) if start else 0
        stop = max(int(np.searchsorted(ends, done + CHUNK_PAIRS, side="right")), start + 1)
        c = counts[start:stop]
        i = np.repeat(np.arange(start, stop), c)
        yield i, np.arange(i.size) - np.repeat(np.cumsum(c) - c, c)
        start = stop


def _pieces(a: np.ndarray, b: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """The edges a-b cut into pieces at most ``cell`` long: (edge of each piece, its midpoint). Every
    point of an edge lies within cell / 2 of one of its pieces' midpoints."""
    n = np.maximum(np.ceil(np.hypot(*(b - a).T) / cell), 1).astype(np.int64)
    edge = np.repeat(np.arange(len(a)), n)
    k = np.arange(edge.size) - np.repeat(np.cumsum(n) - n, n)
    t = ((k + 0.5) / n[edge])[:, None]
    return edge, a[edge] + t * (b - a)[edge]


class _Grid:
    """A ring's edges, found by cell: square cells of side ``cell`` (>= 2 TOUCH_PX), each holding the
    edges with a piece midpoint in it (_pieces). A point within cell / 2 of an edge, and an edge meeting
    it, has a piece midpoint within ``cell`` of it, so in the 3 x 3 cells around its own."""

    def __init__(self, ring: np.ndarray, cell: float, origin: np.ndarray, rows: int):
        self.a, self.b = _edges(ring)
        self.cell, self.origin, self.rows = cell, origin, rows
        edge, mid = _pieces(self.a, self.b, cell)
        keys = self.key(mid)
        order = np.argsort(keys, kind="stable")
        self.keys, self.edge = keys[order], edge[order]

    def key(self, points: np.ndarray) -> np.ndarray:
        c = np.floor((points - self.origin) / self.cell).astype(np.int64)
        return c[:, 0] * self.rows + c[:, 1]

    def near_pairs(self, points: np.ndarray):
        """In chunks: (index into ``points``, edge) for every edge with a piece in the 3 x 3 cells around
        each point; pairs may repeat."""
        keys = (self.key(points)[:, None] + [dx * self.rows + dy for dx, dy in NEIGHBOURS]).ravel()
        lo = np.searchsorted(self.keys, keys, side="left")
        counts = np.searchsorted(self.keys, keys, side="right") - lo
        for q, k in _expand(counts):
            yield q // len(NEIGHBOURS), self.edge[lo[q] + k]

    def near(self, points: np.ndarray) -> np.ndarray:
        """Whether each of ``points`` lies within TOUCH_PX of the ring's line."""
        out = np.zeros(len(points), bool)
        for p, e in self.near_pairs(points):
            a, d = self.a[e], self.b[e] - self.a[e]
            v = points[p] - a
            t = np.clip((v * d).sum(1) / (d * d).sum(1), 0.0, 1.0)
            out[p[np.hypot(*(v - t[:, None] * d).T) <= TOUCH_PX]] = True
        return out


def _grids(exterior: np.ndarray, hole: np.ndarray):
    """A _Grid maker for either ring, on one cell size (the rings' mean edge length, at least 2 TOUCH_PX)
    and origin (two cells below both rings, so that every neighbouring cell has a key >= 0)."""
    rings = (exterior, hole)
    length = sum(float(np.hypot(*np.diff(r, axis=0).T).sum()) for r in rings)
    cell = max(2 * TOUCH_PX, length / sum(len(r) for r in rings))
    lo = np.minimum(exterior.min(0), hole.min(0)) - 2 * cell
    rows = int(np.ceil((np.maximum(exterior.max(0), hole.max(0))[1] - lo[1]) / cell)) + 3
    return lambda ring: _Grid(ring, cell, lo, rows)


def _inside(exterior: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Whether each of ``points`` lies inside ``exterior`` by the even-odd rule: a ray from it to the
    right crosses an odd number of edges. Each edge meets only the points in its y range [low, high)."""
    a, b = _edges(exterior)
    flip = a[:, 1] > b[:, 1]
    a, b = np.where(flip[:, None], b, a), np.where(flip[:, None], a, b)  # a below b
    order = np.argsort(points[:, 1], kind="stable")
    ys = points[order, 1]
    lo = np.searchsorted(ys, a[:, 1], side="left")
    counts = np.searchsorted(ys, b[:, 1], side="left") - lo  # 0 for horizontal edges
    crossings = np.zeros(len(points), np.int64)
    for e, k in _expand(counts):
        p = order[lo[e] + k]
        ea, eb = a[e], b[e]
        x = ea[:, 0] + (points[p, 1] - ea[:, 1]) * (eb[:, 0] - ea[:, 0]) / (eb[:, 1] - ea[:, 1])
        crossings += np.bincount(p[x > points[p, 0]], minlength=len(points))
    return crossings % 2 == 1


def _side(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Signed distance of points ``r`` from the lines through ``p``, ``q`` (each [K, 2]): [K]."""
    d = q - p
    cross = d[:, 0] * (r[:, 1] - p[:, 1]) - d[:, 1] * (r[:, 0] - p[:, 0])
    return cross / np.hypot(d[:, 0], d[:, 1])


def _edges_cross(outline: _Grid, hole: np.ndarray) -> bool:
    """Whether an edge of ``hole`` crosses an edge of the outline, each passing more than TOUCH_PX
    to either side of the other: touching (a shared vertex, a vertex on an edge, a shared stretch) is
    no crossing. Edges that meet share a point, so a hole edge meets only outline edges near its pieces."""
    c, d = _edges(hole)
    piece_edge, mid = _pieces(c, d, outline.cell)
    for q, e in outline.near_pairs(mid):
        h = piece_edge[q]
        ha, hb = _side(c[h], d[h], outline.a[e]), _side(c[h], d[h], outline.b[e])  # outline ends from hole
        oc, od = _side(outline.a[e], outline.b[e], c[h]), _side(outline.a[e], outline.b[e], d[h])
        apart = (ha * hb < 0) & (np.minimum(np.abs(ha), np.abs(hb)) > TOUCH_PX)
        across = (oc * od < 0) & (np.minimum(np.abs(oc), np.abs(od)) > TOUCH_PX)
        if (apart & across).any():
            return True
    return False


def _vertex_outside(outline: _Grid, exterior: np.ndarray, hole: np.ndarray) -> bool:
    """Whether a vertex of ``hole`` lies more than TOUCH_PX outside ``exterior``."""
    out = hole[~_inside(exterior, hole)]
    return bool(len(out)) and not outline.near(out).all()


def _same_ring(outline: _Grid, grid, exterior: np.ndarray, hole: np.ndarray) -> bool:
    """Whether ``hole`` (inside ``exterior``) traces ``exterior`` itself (module docstring). Only a hole
    spanning the outline's bounding box is measured point by point."""
    if np.abs(exterior.min(axis=0) - hole.min(axis=0)).max() > TOUCH_PX:
        return False
    if np.abs(exterior.max(axis=0) - hole.max(axis=0)).max() > TOUCH_PX:
        return False
    c, d = _edges(hole)
    return bool(
        outline.near(hole).all() and outline.near((c + d) / 2).all() and grid(hole).near(exterior).all()
    )


def _problem(exterior: np.ndarray, hole: np.ndarray, j: int, k: int) -> str | None:
    """What is wrong with hole ``k`` of polygon ``j`` (module docstring); None when nothing is."""
    grid = _grids(exterior, hole)
    outline = grid(exterior)
    if _vertex_outside(outline, exterior, hole) or _edges_cross(outline, hole):
        return (
            f"hole {k} reaches outside the outer ring of polygon {j}, which would cut an arbitrary part out "
            "of the outline's cancer; fix the outline (in QuPath: holes lie inside their outline) and export "
            "the annotation again"
        )
    if _same_ring(outline, grid, exterior, hole):
        return (
            f"hole {k} of polygon {j} is its outer ring again, which would erase the whole outline's cancer; "
            "fix the outline (a hole is a smaller ring inside it) and export the annotation again"
        )
    return None


def check_holes_inside(polys: list, where: str) -> None:
    """InputError naming ``where`` (the feature), the hole and its polygon when a hole of ``polys``
    (module docstring) is not inside its outer ring, or when its rings are too dense to check."""
    for j, (exterior, *holes) in enumerate(polys):
        for k, hole in enumerate(holes, start=1):
            try:
                problem = _problem(exterior, hole, j, k)
            except TooDense as exc:
                raise InputError(
                    f"{where}: hole {k} of polygon {j} and its outer ring ({len(hole)} and {len(exterior)} "
                    f"vertices) would take {exc.pairs} comparisons to check, over the {MAX_CHECK_PAIRS} "
                    "limit: no drawn outline is that dense (vertices a fraction of a pixel apart, or a ring "
                    "crossing one spot thousands of times); simplify the outline (in QuPath: Simplify "
                    "shape) and export the annotation again"
                ) from exc
            if problem is not None:
                raise InputError(f"{where}: {problem}")
