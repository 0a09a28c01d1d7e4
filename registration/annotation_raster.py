"""Annotation outlines -> a pixel mask at a slide level.

Input: polygons (a polygon = [exterior ring, hole rings...], each ring a float array [N, 2] of x, y
in annotation pixels; :class:`registration.annotations.Polygons` names its file), the mask's shape
and the level's scale. Output: a uint8 mask, cancer = ``value``, or (``polygon_area``) the area it
fills. Refuses, naming the file, a coordinate that the level's scale takes out of the fixed-point range.

An outline is filled by the non-zero winding rule, as a pathologist reads a lasso: OpenCV's
``fillPoly`` fills by parity, so the part of a freehand outline that overshoots its start (enclosed
twice) would be left out. OpenCV has no winding fill, hence the scanline fill here.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_runtime.errors import InputError

SUBPIXEL_BITS = 4  # cv2.fillPoly fixed-point precision: 1/16 pixel
# Largest |coordinate| accepted, in annotation pixels when read and in level pixels when rasterised:
# rasterise's fixed-point int32 (x * 2**SUBPIXEL_BITS) must not overflow, and no scanned slide is near
# this wide (level 0 is ~1e5 px); beyond it is a broken file or a wrong annotation_mpp
MAX_COORDINATE = 2 ** (31 - SUBPIXEL_BITS - 1)
UNNAMED = "annotation outlines"  # rasterise's name for polygons not read from a file
MEASURE_PIXELS = 4_000_000  # polygon_area's canvas: bounded memory for outlines of any size
# Edge x pixel-row crossings one outline may have at a level: a drawn outline meets a row a few times (a
# few 1e4 in all at a level of 1e4 rows); a ring zigzagging across the slide a million times has 1e10,
# whose winding fill would take hours. Filled CHUNK_CROSSINGS at a time (bounded memory).
MAX_ROW_CROSSINGS = 100_000_000
CHUNK_CROSSINGS = 2_000_000


def _fixed_point(ring: np.ndarray, scale: float, where: str) -> np.ndarray:
    """``ring`` in level pixels (``scale``), as cv2's fixed-point int32 [N, 1, 2]; checked after scaling:
    _ring's limit holds in annotation pixels, and a scale above 1 can take a coordinate past int32."""
    level = ring * scale - 0.5
    reach = float(np.abs(level).max())
    if not reach <= MAX_COORDINATE:  # `not <=`: a NaN scale is refused too
        far = float(np.abs(ring).max())
        raise InputError(
            f"{where}: an annotation coordinate ({far:g} px) is {reach:.4g} px at the slide level's scale "
            f"(x{scale:g}), beyond {MAX_COORDINATE}; not a slide's pixel coordinates (pathology.annotation_mpp?)"
        )
    return np.round(level * float(1 << SUBPIXEL_BITS)).astype(np.int32).reshape(-1, 1, 2)


def _add_wound(mask: np.ndarray, ring: np.ndarray, where: str) -> None:
    """Set to 1 the pixels of ``mask`` whose centre ``ring`` (fixed point, as fillPoly takes it)
    winds around a non-zero number of times: a scanline fill, in the ring's bounding box only. Each
    edge crossing a pixel row adds its direction (+1 down, -1 up) at the first pixel centre right of
    the crossing; the running sum along the row is each pixel's winding number. InputError naming
    ``where`` when the ring crosses rows more than MAX_ROW_CROSSINGS times."""
    pts = ring.reshape(-1, 2).astype(np.float64) / float(1 << SUBPIXEL_BITS)
    h, w = mask.shape[:2]
    x0, y0 = max(int(np.floor(pts[:, 0].min())), 0), max(int(np.floor(pts[:, 1].min())), 0)
    x1, y1 = min(int(np.ceil(pts[:, 0].max())) + 1, w), min(int(np.ceil(pts[:, 1].max())) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return
    a, b = pts - (x0, y0), np.roll(pts, -1, axis=0) - (x0, y0)
    lo, hi = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
    first = np.clip(np.ceil(lo), 0, y1 - y0).astype(np.int64)  # rows whose centre lo <= y < hi
    last = np.clip(np.ceil(hi), 0, y1 - y0).astype(np.int64)
    spans = np.maximum(last - first, 0)
    total = int(spans.sum())
    if total > MAX_ROW_CROSSINGS:
        raise InputError(
            f"{where}: an outline of {len(pts)} vertices crosses the slide level's pixel rows {total} times, "
            f"over the {MAX_ROW_CROSSINGS} limit: no drawn outline does (a ring zigzagging across the slide); "
            "simplify the outline (in QuPath: Simplify shape) and export the annotation again"
        )
    crossings = np.zeros((y1 - y0, x1 - x0 + 1), np.int32)
    ends, start = np.cumsum(spans), 0
    while total and start < len(spans):  # edges whose row crossings sum to about CHUNK_CROSSINGS
        done = int(ends[start - 1]) if start else 0
        stop = max(int(np.searchsorted(ends, done + CHUNK_CROSSINGS, side="right")), start + 1)
        n = spans[start:stop]
        edge = np.repeat(np.arange(start, stop), n)
        rows = first[edge] + np.arange(edge.size) - np.repeat(np.cumsum(n) - n, n)
        ea, eb = a[edge], b[edge]
        x = ea[:, 0] + (rows - ea[:, 1]) * (eb[:, 0] - ea[:, 0]) / (eb[:, 1] - ea[:, 1])
        cols = np.clip(np.ceil(x), 0, x1 - x0).astype(np.int64)  # x1 - x0: right of every pixel
        np.add.at(crossings, (rows, cols), np.where(eb[:, 1] > ea[:, 1], 1, -1).astype(np.int32))
        start = stop
    wound = np.cumsum(crossings[:, :-1], axis=1) != 0
    mask[y0:y1, x0:x1][wound] = 1


def rasterise(
    polygons: list, shape: tuple[int, int], scale: float, value: int = 1, out: np.ndarray | None = None
) -> np.ndarray:
    """Fill polygons (holes cut out) into a uint8 mask; coordinates are multiplied by ``scale``.

    Pixel centres sit at integer coordinates, so level-0 point x maps to x * scale - 0.5 + 0.5.
    InputError naming the annotation file (``polygons.where``) when a scaled coordinate is beyond
    MAX_COORDINATE level pixels: its fixed-point int32 would wrap and paint elsewhere.
    """
    mask = np.zeros(shape, np.uint8) if out is None else out
    where = getattr(polygons, "where", UNNAMED)  # a plain list (a caller's own polygons) has no file
    for poly in polygons:
        rings = [_fixed_point(r, scale, where) for r in poly]
        # only the pixels its rings may touch: a canvas of the mask's size per polygon would take hours
        # for the many small outlines a file under the size limit can hold. All rings, holes too: cv2
        # clips a ring that leaves the canvas, a pixel off from where a larger canvas would put it
        pixels = np.concatenate([r.reshape(-1, 2) for r in rings]) >> SUBPIXEL_BITS
        (x0, y0), (x1, y1) = np.maximum(pixels.min(0) - 1, 0), np.minimum(pixels.max(0) + 2, shape[::-1])
        if x1 <= x0 or y1 <= y0:
            continue
        corner = np.array([x0, y0], np.int32) << SUBPIXEL_BITS
        rings = [r - corner for r in rings]
        tmp = np.zeros((y1 - y0, x1 - x0), np.uint8)
        # fillPoly fills by parity: where a freehand outline overshoots its start, the part it
        # encloses twice would read as not cancer. The pathologist circled it: add what the outline
        # winds around (non-zero rule), which for a simple outline is what fillPoly fills. First: it
        # refuses an outline whose fill would take hours, before fillPoly starts on it.
        _add_wound(tmp, rings[0], where)
        cv2.fillPoly(tmp, rings[:1], 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
        if len(rings) > 1:
            cv2.fillPoly(tmp, rings[1:], 0, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
        mask[y0:y1, x0:x1][tmp > 0] = value
    return mask


def polygon_area(polygons: list, where: str) -> float:
    """Annotation px² of what :func:`rasterise` fills for ``polygons``, as the label and the "annotation
    outside the tissue" check measure cancer: holes cut out, an outline that crosses itself (a figure
    eight, a lasso past its start) filled by the non-zero winding rule, overlapping polygons counted
    once, the pixels an outline's edge passes through included (a 40 px square: 41 x 41). The shoelace
    formula would weigh a figure eight's loops against each other (toward 0) and count an outline
    exported twice twice.

    One annotation px per canvas px while the polygons' box holds at most MEASURE_PIXELS, coarser
    beyond (bounded memory). InputError naming ``where`` (the annotation file) when a coordinate is
    not finite or beyond MAX_COORDINATE: no area can be measured, and no slide is that large."""
    if not polygons:
        return 0.0
    points = np.concatenate([ring for poly in polygons for ring in poly])
    reach = float(np.abs(points).max())
    if not reach <= MAX_COORDINATE:  # `not <=`: NaN is refused too
        raise InputError(
            f"{where}: the annotated cancer area cannot be measured: a coordinate ({reach:g} px) is beyond "
            f"{MAX_COORDINATE} px; not a slide's pixel coordinates"
        )
    lo = np.floor(points.min(axis=0))
    size = np.ceil(points.max(axis=0)) + 1 - lo  # pixel i covers [i, i + 1): the last coordinate included
    step = max(1.0, float(np.ceil(np.sqrt(size[0] * size[1] / MEASURE_PIXELS))))
    shape = (int(np.ceil(size[1] / step)), int(np.ceil(size[0] / step)))
    canvas = rasterise([[ring - lo for ring in poly] for poly in polygons], shape, 1.0 / step)
    return float(np.count_nonzero(canvas)) * step * step
