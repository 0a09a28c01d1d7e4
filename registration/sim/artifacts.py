"""Rendering of the lab artefacts of a simulated slide into one tile of one pyramid level.

Input: the tile's RGB (float32, already holding tissue and nuclei), its tissue mask, the
``SlideLayout.extras`` of sim_core (level-0 px), the level scale and the tile origin.
Output: the tile with, in this order,
- crushed ends darkened (compressed tissue takes up more stain);
- fat lobules: glass crossed by thin membranes; a membrane thinner than a pixel only tints
  the pixel by its area share, so at low resolution a lobule looks nearly like glass;
- dust specks and air-bubble outlines (grey, no stain);
- pen strokes (green, blue, black or red ink, on top of everything).
"""

from __future__ import annotations

import cv2
import numpy as np

SHIFT = 4
CRUSH_DARKEN = 0.72
MEMBRANE_UM = 3.0
MEMBRANE_RGB = np.array([222, 150, 190], np.float32)
BUBBLE_GREY, BUBBLE_ALPHA = 105.0, 0.75
INK_ALPHA = 0.88


def _pts(poly: np.ndarray, scale: float, x0: int, y0: int) -> np.ndarray:
    f = float(1 << SHIFT)
    return np.round((poly * scale - [x0, y0] - 0.5) * f).astype(np.int32).reshape(-1, 1, 2)


def _mask(polys: list, shape, scale: float, x0: int, y0: int) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    if polys:
        cv2.fillPoly(m, [_pts(p, scale, x0, y0) for p in polys], 1, cv2.LINE_8, shift=SHIFT)
    return m > 0


def _blend(img: np.ndarray, alpha: np.ndarray, colour) -> None:
    a = alpha[..., None]
    img[:] = img * (1.0 - a) + np.asarray(colour, np.float32) * a


def render_extras(
    img: np.ndarray, tissue: np.ndarray, extras: dict, scale: float, x0: int, y0: int, um_per_px: float, glass
) -> None:
    h, w = tissue.shape
    crushed = _mask(extras.get("crushed", []), (h, w), scale, x0, y0) & tissue
    img[crushed] *= CRUSH_DARKEN
    for poly, segs in zip(extras.get("fat", []), extras.get("fat_segments", []), strict=False):
        fat = _mask([poly], (h, w), scale, x0, y0) & tissue
        if not fat.any():
            continue
        img[fat] = glass
        lines = np.zeros((h, w), np.uint8)
        if len(segs):
            cv2.polylines(
                lines, [_pts(s, scale, x0, y0) for s in segs], False, 255, 1, cv2.LINE_AA, shift=SHIFT
            )
        alpha = lines.astype(np.float32) / 255.0 * min(1.0, MEMBRANE_UM / um_per_px) * fat
        _blend(img, alpha, MEMBRANE_RGB)
    marks = np.zeros((h, w), np.uint8)
    grey = np.zeros((h, w), np.float32)
    for centre, radius, value in extras.get("dust", []):
        c = _pts(np.asarray(centre)[None], scale, x0, y0)[0, 0]
        r = int(round(max(radius * scale, 0.6) * (1 << SHIFT)))
        cv2.circle(marks, tuple(int(v) for v in c), r, 255, -1, cv2.LINE_AA, shift=SHIFT)
        grey[marks > 0] = value
    for centre, radius, ring in extras.get("bubbles", []):
        c = _pts(np.asarray(centre)[None], scale, x0, y0)[0, 0]
        cv2.circle(
            marks,
            tuple(int(v) for v in c),
            int(round(radius * scale * (1 << SHIFT))),
            255,
            max(int(round(ring * scale)), 1),
            cv2.LINE_AA,
            shift=SHIFT,
        )
        grey[(marks > 0) & (grey == 0)] = BUBBLE_GREY
    if marks.any():
        _blend(img, marks.astype(np.float32) / 255.0 * BUBBLE_ALPHA, 0.0)
        img += (grey * (marks.astype(np.float32) / 255.0 * BUBBLE_ALPHA))[..., None]
    for stroke in extras.get("ink", []):
        m = np.zeros((h, w), np.uint8)
        cv2.polylines(
            m,
            [_pts(stroke["points"], scale, x0, y0)],
            False,
            255,
            max(int(round(stroke["thickness"] * scale)), 1),
            cv2.LINE_AA,
            shift=SHIFT,
        )
        if m.any():
            _blend(img, m.astype(np.float32) / 255.0 * INK_ALPHA, stroke["colour"])
