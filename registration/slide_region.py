"""The part of the slide that is the case's core: pathology.roi, one of several serial sections, and the
check that the cancer annotation lies on that tissue.

Inputs: the slide level read by wsi_slide.py (``slide.rgb`` at ``slide.mpp`` µm/px), the rasterised cancer
mask at that level (annotations.py), the tissue mask (tissue.py), the case's ``pathology.roi`` and
the tissue fragments found (fragments.py). Outputs: the masks cut to the region used and the
annotated cancer area there; warnings are appended to the caller's list. Reads and writes no files.

The annotated cancer area is that of the union of the cancer outlines minus the exclusions, as the
label uses them: outlines drawn twice count once, and an excluded part is no cancer to look for. It
is measured by the same rasterisation as the cancer mask (annotation_raster.rasterise), so the share of it
found on tissue compares like with like; what lies off the slide is rasterised too, on a canvas
around the outlines (coarser when they reach far off the slide).
Every refusal is an InputError naming the case.yaml, slide or annotation file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.errors import InputError
from registration.annotation_raster import rasterise
from registration.fragments import MIN_FRAGMENT_AREA_UM2
from registration.sections import Sections, find_sections, section_lengths_consistent

OUTSIDE_WARN, OUTSIDE_FAIL = 0.05, 0.9  # share of the annotated cancer area lying on no tissue fragment
OFF_SLIDE_PIXELS = 4_000_000  # canvas for measuring outlines beyond the slide's edges (bounded memory)
EDGE_PIXELS = 1


def annotated_area(cancer: np.ndarray, ann, scale: float) -> float:
    """Level px² of the cancer outlines' union minus exclusions (module docstring), on the slide and off it.

    ``cancer``: the rasterised mask at the level (union minus exclusions, uint8 [h, w]); ``ann``:
    the Annotations it was drawn from; ``scale``: level px per annotation px."""
    on_slide = float(np.count_nonzero(cancer))
    if not ann.cancer:
        return on_slide
    h, w = cancer.shape
    points = np.concatenate([poly[0] for poly in ann.cancer]) * scale  # holes lie inside their exterior
    lo, hi = np.floor(points.min(axis=0)), np.ceil(points.max(axis=0))
    if lo[0] >= 0 and lo[1] >= 0 and hi[0] <= w and hi[1] <= h:
        return on_slide  # every outline on the slide: the mask has all of it
    # rasterise fills the pixels an outline's edge passes through: one more on each side
    lo, hi = lo - EDGE_PIXELS, hi + EDGE_PIXELS
    # a canvas over the outlines' box, `step` level px per canvas px; pixel centres as rasterise places them
    size = hi - lo
    step = max(1.0, float(np.ceil(np.sqrt(size[0] * size[1] / OFF_SLIDE_PIXELS))))
    shape = (int(np.ceil(size[1] / step)), int(np.ceil(size[0] / step)))

    def shifted(polygons):
        return [[ring * scale - lo for ring in poly] for poly in polygons]

    canvas = rasterise(shifted(ann.cancer), shape, 1.0 / step)
    if ann.exclude:
        canvas[rasterise(shifted(ann.exclude), shape, 1.0 / step) > 0] = 0
    xs = lo[0] + step * (np.arange(shape[1]) + 0.5)  # level x of each canvas column's centre
    ys = lo[1] + step * (np.arange(shape[0]) + 0.5)
    on = ((ys >= 0) & (ys < h))[:, None] & ((xs >= 0) & (xs < w))[None, :]
    return on_slide + float(np.count_nonzero(canvas[~on])) * step * step


def apply_roi(slide, cancer: np.ndarray, roi, mpp0: float, where: str) -> int:
    """Blank everything outside pathology.roi (glass, no cancer); return the cancer pixels inside.

    ``slide.rgb`` and ``cancer`` (level pixels) are changed in place; ``roi`` is in level-0 pixels
    (``mpp0`` µm/px); ``where`` names the case file in the error."""
    f = mpp0 / slide.mpp
    h, w = cancer.shape
    x0, y0 = max(int(np.floor(roi[0] * f)), 0), max(int(np.floor(roi[1] * f)), 0)
    x1, y1 = min(int(np.ceil(roi[2] * f)), w), min(int(np.ceil(roi[3] * f)), h)
    if x1 <= x0 or y1 <= y0:
        raise InputError(
            f"{where}: pathology.roi {list(roi)} lies outside the slide "
            f"({slide.level0_shape[1]}x{slide.level0_shape[0]} level-0 px)"
        )
    keep = np.zeros((h, w), bool)
    keep[y0:y1, x0:x1] = True
    slide.rgb[~keep] = 255
    cancer[~keep] = 0
    return int(np.count_nonzero(cancer))


def one_section(
    tissue: np.ndarray, cancer: np.ndarray, mpp: float, where: str, warnings: list
) -> tuple[np.ndarray, np.ndarray, Sections | None]:
    """Keep one of several serial sections (sections.py), or fail asking for a roi.

    Returns (tissue, cancer, sections): the masks of the section used and what sections.py found,
    or the masks unchanged and None when the slide holds one section. ``where`` names the slide."""
    sec = find_sections(tissue, cancer, mpp, MIN_FRAGMENT_AREA_UM2 / (mpp * mpp))
    if sec is None:
        return tissue, cancer, None
    if not section_lengths_consistent(sec, tissue):
        raise InputError(
            f"{where}: the slide holds {sec.count} serial sections of the core that could not be told "
            "apart; set pathology.roi (level-0 px x0, y0, x1, y1) around the section to use"
        )
    ys, xs = np.nonzero(sec.keep)
    warnings.append(
        f"{where}: {sec.count} serial sections of the core found; used section {sec.used + 1} "
        f"(level px x {xs.min()}-{xs.max()}, y {ys.min()}-{ys.max()}: the one with the most annotated "
        "cancer, else the first); set pathology.roi to choose another"
    )
    cancer = cancer.copy()
    cancer[~sec.keep] = 0
    return tissue & sec.keep, cancer, sec


def check_annotation_placement(total: float, frags, ann_file: Path, warnings: list) -> None:
    """Fail when more than OUTSIDE_FAIL of the annotated cancer area (``total``, level pixels) lies on
    no tissue fragment, warn above OUTSIDE_WARN. ``ann_file`` names the annotation file."""
    if total <= 0:
        return
    inside = sum(f.cancer_px for f in frags)
    outside = 1.0 - min(inside / total, 1.0)
    if outside > OUTSIDE_FAIL:
        raise InputError(
            f"{ann_file}: annotation outside the tissue ({100 * outside:.0f}% of the cancer area); "
            "wrong slide, or coordinates not in level-0 pixels (pathology.annotation_mpp)?"
        )
    if outside > OUTSIDE_WARN:
        warnings.append(f"{ann_file}: {100 * outside:.0f}% of the cancer annotation lies outside the tissue")
