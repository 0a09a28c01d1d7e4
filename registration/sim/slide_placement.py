"""The simulated core on the glass: serial sections, the slide canvas, level-0 pixels and the slide's
artefacts.

Input: the core's polygons in slide micrometres (tissue outlines, cancer rings, crushed zones, fat
lobules, from :func:`registration.sim.biopsy_core.build_layout`), the level-0 µm per pixel and,
with lab phenomena (:class:`registration.sim.lab.LabParams`), their settings. Output: the
:class:`registration.sim.slide.SlideLayout` in level-0 pixels and the truth this step adds
(serial copies, annotated copies, the scan ROI, ink, dust, bubbles).
"""

from __future__ import annotations

import numpy as np

from registration.sim.lab import LabParams, fat_segments, ink_strokes, specks
from registration.sim.slide import SlideLayout

SERIAL_GAP_UM = (800.0, 2000.0)  # glass between serial sections, beside the core's full spread
SERIAL_ANNOTATE_ALL_P = 0.4  # the pathologist outlined every section (else only the first)
ROI_MARGIN_UM = 200.0


def serial_shift(tissue_um: list, rng) -> np.ndarray:
    """Translation between serial sections: beside the core, perpendicular to its overall direction."""
    pts = np.vstack(tissue_um)
    c = pts.mean(0)
    u = np.linalg.svd(pts - c, full_matrices=False)[2][0]
    perp = np.array([-u[1], u[0]])
    spread = (pts - c) @ perp
    return perp * (spread.max() - spread.min() + rng.uniform(*SERIAL_GAP_UM))


def place_on_slide(
    tissue_um: list,
    cancer_um: list,
    crushed_um: list,
    fat_um: list,
    rng: np.random.Generator,
    mpp: float,
    margin_um: float,
    canvas: tuple | None = None,
    lab: LabParams | None = None,
) -> tuple[SlideLayout, dict]:
    """Copies (serial sections), canvas, level-0 pixels, and the slide artefacts (ink, dust, bubbles):
    the layout and the truth it adds."""
    n_copies = int(rng.integers(2, 4)) if lab is not None and rng.random() < lab.serial_p else 1
    shift = serial_shift(tissue_um, rng) if n_copies > 1 else np.zeros(2)
    annotate_all = bool(rng.random() < SERIAL_ANNOTATE_ALL_P)

    def copies(polys, ring_lists=False):
        if ring_lists:
            return [[r + k * shift for r in poly] for k in range(n_copies) for poly in polys]
        return [poly + k * shift for k in range(n_copies) for poly in polys]

    tis_all = copies(tissue_um)
    allpts = np.vstack(tis_all)
    lo, hi = allpts.min(0), allpts.max(0)
    if canvas is not None:
        ch, cw = canvas
        off = np.array([cw, ch]) * mpp / 2 - (lo + hi) / 2
    else:
        off = margin_um - lo
        cw, ch = (
            int(np.ceil((hi[0] - lo[0] + 2 * margin_um) / mpp)),
            int(np.ceil((hi[1] - lo[1] + 2 * margin_um) / mpp)),
        )
    px = lambda a: (a + off) / mpp  # noqa: E731 - slide µm -> level-0 px
    tissue = [px(t) for t in tis_all]
    cancer = [[px(r) for r in poly] for poly in copies(cancer_um, True)]
    layout = SlideLayout(width=int(cw), height=int(ch), mpp=mpp, tissue=tissue, cancer=cancer)
    extra = {"serial_copies": n_copies}
    if lab is None:
        return layout, extra
    n_annot = len(cancer) if annotate_all else len(cancer_um)
    first = np.vstack(tissue[: len(tissue_um)])
    fat = [px(f) for f in copies(fat_um)]
    ink = ink_strokes(first, mpp, rng, lab)
    dust, bubbles = specks(np.zeros(2), np.array([cw, ch], float), mpp, rng, lab)
    layout.extras = {
        "fat": fat,
        "fat_segments": [fat_segments(f, rng.uniform(*lab.fat_cell_um), mpp, rng) for f in fat],
        "crushed": [px(c) for c in copies(crushed_um)],
        "ink": ink,
        "dust": dust,
        "bubbles": bubbles,
        "annotated_cancer": cancer[:n_annot],
    }
    roi = None
    if n_copies > 1 and rng.random() < lab.roi_p:
        m = ROI_MARGIN_UM / mpp
        roi = [round(float(v), 1) for v in (*(first.min(0) - m), *(first.max(0) + m))]
    extra.update(
        annotated_copies=n_copies if annotate_all else 1,
        roi=roi,
        ink=[s["name"] for s in ink],
        ink_on_tissue=any(s["on_tissue"] for s in ink),
        dust=len(dust),
        bubbles=len(bubbles),
    )
    return layout, extra
