"""Medial axis of one tissue fragment, as an ordered polyline from end to end.

Input: a boolean mask of one fragment (level pixels). Output: float [N, 2] (x, y) points,
one per pixel of arc length, running from one end cap to the other.

Why not a principal axis: a bent core's chord is shorter than the tissue and cuts through
the glass, so along-core distances (and hence tract positions) would be wrong. Method:
the two geodesic extremes of the mask are its end caps; the cheapest path between them on
the cost 1/(distance-to-border)^2 runs along the ridge of the distance map, i.e. the medial
axis (the classic minimal-path centre-line). The path is smoothed, its end-cap hooks are
trimmed, it is re-centred across the tissue, and extended along its end curvature to the
tissue border. Stubby pieces (length < 4 widths) use their principal axis: corners would
drag a minimal path diagonally, and their bend is negligible.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

COARSE_HALF_WIDTH_PX = 6.0  # work at a scale where the fragment is ~12 px wide: fast, still medial
RIDGE_POWER = 2.0  # cost exponent: higher hugs the ridge more tightly
SMOOTH_SIGMA_HALF_WIDTHS = 0.5
TRIM_HALF_WIDTHS = 2.5  # end-cap hook (+ smoothing edge effect) to discard before extrapolating
TANGENT_HALF_WIDTHS = 2.0  # arc length used to estimate the end tangent
MARCH_STEP_PX = 0.25
ON_LINE_PX = 1.0  # pixels this close to a straight axis count as on it
SHORT_ASPECT = 4.0  # length/width below which a fragment is treated as straight


def _graph(mask: np.ndarray, node_cost: np.ndarray):
    """8-connected pixel graph; edge weight = step length * mean node cost."""
    ys, xs = np.nonzero(mask)
    index = -np.ones(mask.shape, np.int64)
    index[ys, xs] = np.arange(len(ys))
    rows, cols, weights = [], [], []
    h, w = mask.shape
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        y2, x2 = ys + dy, xs + dx
        ok = (y2 >= 0) & (y2 < h) & (x2 >= 0) & (x2 < w)
        ok[ok] = mask[y2[ok], x2[ok]]
        a, b = index[ys[ok], xs[ok]], index[y2[ok], x2[ok]]
        step = np.hypot(dy, dx)
        wgt = step * 0.5 * (node_cost[a] + node_cost[b])
        rows += [a, b]
        cols += [b, a]
        weights += [wgt, wgt]
    n = len(ys)
    g = coo_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    ).tocsr()
    return g, xs, ys


def _resample(pts: np.ndarray, step: float) -> np.ndarray:
    seg = np.hypot(*np.diff(pts, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return pts[:1]
    t = np.arange(0.0, s[-1] + 1e-9, step)
    if s[-1] - t[-1] > 1e-6:
        t = np.append(t, s[-1])
    return np.stack([np.interp(t, s, pts[:, 0]), np.interp(t, s, pts[:, 1])], axis=1)


def _inside(mask: np.ndarray, p: np.ndarray) -> bool:
    x, y = int(round(p[0])), int(round(p[1]))
    return 0 <= y < mask.shape[0] and 0 <= x < mask.shape[1] and bool(mask[y, x])


def _extend(mask: np.ndarray, pts: np.ndarray, tangent_len: float) -> np.ndarray:
    """March beyond the last point along a quadratic fitted to the end (keeps the bend) until
    leaving the tissue."""
    back = pts[::-1]
    s = -np.concatenate(
        [[0.0], np.cumsum(np.hypot(*np.diff(back, axis=0).T))]
    )  # 0 at the end, negative inwards
    k = max(int(np.searchsorted(-s, tangent_len)) + 1, 2)
    deg = 2 if k >= 6 else 1
    cx, cy = np.polyfit(s[:k], back[:k, 0], deg), np.polyfit(s[:k], back[:k, 1], deg)
    limit = 4 * (mask.shape[0] + mask.shape[1])
    t, out = 0.0, []
    for _ in range(int(limit / MARCH_STEP_PX)):
        q = np.array([np.polyval(cx, t + MARCH_STEP_PX), np.polyval(cy, t + MARCH_STEP_PX)])
        if not _inside(mask, q):
            break
        t += MARCH_STEP_PX
        out.append(q)
    # the border lies half a pixel beyond the last tissue pixel centre
    out.append(np.array([np.polyval(cx, t + 0.5), np.polyval(cy, t + 0.5)]))
    return np.vstack([pts, np.array(out)])


def _centre(mask: np.ndarray, pts: np.ndarray, half_width: float) -> np.ndarray:
    """Move each point along its normal to the middle of the tissue crossing there (sub-pixel)."""
    if len(pts) < 3:
        return pts
    t = np.gradient(pts, axis=0)
    t /= np.linalg.norm(t, axis=1, keepdims=True) + 1e-12
    n = np.stack([-t[:, 1], t[:, 0]], axis=1)
    offs = np.arange(-2 * half_width - 2, 2 * half_width + 2.01, 0.25)
    mx = (pts[:, 0:1] + offs[None, :] * n[:, 0:1]).astype(np.float32)
    my = (pts[:, 1:2] + offs[None, :] * n[:, 1:2]).astype(np.float32)
    inside = cv2.remap(mask.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderValue=0) > 0.5
    mid = len(offs) // 2
    shift = np.zeros(len(pts))
    for i, row in enumerate(inside):
        if not row[mid]:
            continue
        # first outside sample on each side (symmetric, so their midpoint is the crossing midpoint)
        lo = offs[mid - np.argmin(row[mid::-1])] if not row[: mid + 1].all() else offs[0]
        hi = offs[mid + np.argmin(row[mid:])] if not row[mid:].all() else offs[-1]
        shift[i] = (lo + hi) / 2
    return pts + shift[:, None] * n


def _straight_axis(mask: np.ndarray, direction=None) -> np.ndarray:
    """Straight axis through the centroid, from border to border (for short, stubby fragments):
    along ``direction`` when given (the core's direction there), else the principal axis."""
    ys, xs = np.nonzero(mask)
    c = np.array([xs.mean(), ys.mean()])
    pts = np.stack([xs, ys], 1) - c
    if direction is not None:
        v = np.asarray(direction, float) / (np.linalg.norm(direction) + 1e-12)
    else:
        v = np.linalg.svd(pts, full_matrices=False)[2][0]
    # the farthest tissue on the line, not the first glass: a mark across the piece (a bubble
    # outline, a pen stroke) must not cut its axis short
    along = pts @ v
    on_line = np.abs(pts @ np.array([-v[1], v[0]])) <= ON_LINE_PX
    if not on_line.any():
        on_line = np.ones(len(pts), bool)
    ends = [c + (along[on_line].min() - 0.5) * v, c + (along[on_line].max() + 0.5) * v]
    return _resample(np.array(ends), 1.0)


def medial_axis(mask: np.ndarray, direction=None) -> np.ndarray:
    """Ordered medial-axis polyline (x, y), one point per pixel of arc length, end cap to end cap.

    ``direction`` (x, y): the core's direction near a stubby piece, used instead of its own
    principal axis (a piece about as long as wide has no reliable axis of its own)."""
    mask = mask.astype(bool)
    if direction is not None:
        return _straight_axis(mask, direction)
    dt_fine = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    half_width = max(float(dt_fine.max()), 1.0)
    f = max(1.0, half_width / COARSE_HALF_WIDTH_PX)
    if f > 1.0:
        size = (max(int(round(mask.shape[1] / f)), 1), max(int(round(mask.shape[0] / f)), 1))
        coarse = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5
        fx, fy = mask.shape[1] / size[0], mask.shape[0] / size[1]
    else:
        coarse, fx, fy = mask, 1.0, 1.0
    if coarse.sum() < 2:
        ys, xs = np.nonzero(mask)
        c = np.array([xs.mean(), ys.mean()])
        return np.vstack([c - [0.5, 0], c + [0.5, 0]])
    # keep the largest piece if downsampling split a thin neck
    n, lab = cv2.connectedComponents(coarse.astype(np.uint8), connectivity=8)
    if n > 2:
        coarse = lab == (np.argmax(np.bincount(lab.ravel())[1:]) + 1)
    dt = cv2.distanceTransform(np.pad(coarse, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    g_len, xs, ys = _graph(coarse, np.ones(np.count_nonzero(coarse)))
    seed = int(np.argmax(dt[ys, xs]))
    far_a = int(np.argmax(dijkstra(g_len, indices=seed)))
    dist_a = dijkstra(g_len, indices=far_a)
    far_b = int(np.argmax(np.where(np.isfinite(dist_a), dist_a, -1)))
    cost = 1.0 / (dt[ys, xs] ** RIDGE_POWER)
    g_cost, _, _ = _graph(coarse, cost)
    _, pred = dijkstra(g_cost, indices=far_a, return_predecessors=True)
    path = [far_b]
    while path[-1] != far_a and pred[path[-1]] >= 0:
        path.append(int(pred[path[-1]]))
    pts = np.stack([(xs[path] + 0.5) * fx - 0.5, (ys[path] + 0.5) * fy - 0.5], axis=1).astype(np.float64)
    pts = _resample(pts, 1.0)
    if len(pts) < SHORT_ASPECT * 2 * half_width:
        # a stubby piece: its geodesic extremes are corners and its bend is negligible
        return _straight_axis(mask)
    if len(pts) > 3:
        sigma = SMOOTH_SIGMA_HALF_WIDTHS * half_width
        pts = np.stack([gaussian_filter1d(pts[:, i], sigma, mode="nearest") for i in (0, 1)], axis=1)
    trim = min(int(TRIM_HALF_WIDTHS * half_width), max((len(pts) - 5) // 2, 0))
    if trim > 0:
        pts = pts[trim : len(pts) - trim]
    pts = _resample(_centre(mask, pts, half_width), 1.0)
    tangent_len = TANGENT_HALF_WIDTHS * half_width
    pts = _extend(mask, pts, tangent_len)
    pts = _extend(mask, pts[::-1], tangent_len)[::-1]
    return _resample(pts, 1.0)
