"""register_case: the one place where the registration stages are wired together.

Stages (each a function in its own module):
  load_case (case.py) -> refuse_overwriting_inputs (case_outputs.py) -> load_ultrasound
  (ultrasound.py) -> resolve the tract and check its band (here: tract.py, needle.py) -> read_slide (wsi.py) ->
  load_annotations + rasterise (annotations.py) -> apply_roi, one_section (slide_region.py) ->
  find_fragments + orient (fragments.py) -> check_annotation_placement (slide_region.py) ->
  resolve_shrinkage + place + rasterise_label (mapping.py) -> make_qa (qa.py) -> write_outputs
  (case_outputs.py).

Input: a case.yaml (or its loaded CaseSpec). Outputs in OUT: us.png, label.png, qa.png and
report.json, the last written last (case_outputs.py says what each holds).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edge_runtime.errors import InputError
from edge_runtime.memory import peak_rss_bytes
from registration.annotation_raster import rasterise
from registration.annotations import load_annotations
from registration.case import CaseSpec, load_case
from registration.case_outputs import refuse_overwriting_inputs, ultrasound_file, write_outputs
from registration.fragments import find_fragments, orient
from registration.mapping import ambiguous_mm, place, rasterise_label, resolve_shrinkage
from registration.needle import detect_needle
from registration.qa import QaExtras, make_qa
from registration.quality import quality, rejected_near_tissue
from registration.report import input_file, label_stats
from registration.slide_region import annotated_area, apply_roi, check_annotation_placement, one_section
from registration.tissue import tissue_masks
from registration.tract import Tract, check_inside, device_geometry, tract_from_needle
from registration.ultrasound import UltrasoundImage, load_ultrasound
from registration.wsi import read_slide

TARGET_MPP = 8.0  # µm/px to work at: US pixels are ~100 µm, cores ~1 mm wide
TIP_END_ASSUMED = (
    "pathology.tip_end not given: the needle-tip end of the core is taken to be on the slide's {side}; "
    "if it is on another side the label is reversed along the tract (set tip_end in case.yaml)"
)


def _needle_points(spec: CaseSpec) -> list:
    if spec.tract is not None:
        return [spec.tract.start, spec.tract.end]
    if spec.needle is not None and not spec.needle.auto:
        return [spec.needle.tip, spec.needle.shaft]
    return []


def resolve_tract(spec: CaseSpec, us: UltrasoundImage) -> tuple[Tract, dict]:
    """The sampled segment: explicit, from needle points, or from the auto-detected needle."""
    where = str(spec.path)
    if spec.tract is not None:
        check_inside({"tract.start": spec.tract.start, "tract.end": spec.tract.end}, us.shape, where)
        return Tract(spec.tract.start, spec.tract.end, spec.tract.width_mm, us.mm_per_px), {"mode": "tract"}
    nd = spec.needle
    geo = device_geometry(nd.gauge, nd.notch_mm, nd.tip_offset_mm, nd.width_mm, f"{where}: ")
    info = {"mode": "auto" if nd.auto else "points", "gauge": nd.gauge, "geometry": geo}
    if nd.auto:
        det = detect_needle(us.gray, us.mm_per_px, where)
        tip, shaft = det.tip, det.shaft
        info["detected"] = det.to_dict()
    else:
        check_inside({"needle.tip": nd.tip, "needle.shaft": nd.shaft}, us.shape, where)
        tip, shaft = nd.tip, nd.shaft
    tract = tract_from_needle(tip, shaft, us.mm_per_px, geo)
    check_inside(
        {
            "tract start derived from the needle (needle.notch_mm/tip_offset_mm)": tract.start,
            "tract end derived from the needle": tract.end,
        },
        us.shape,
        where,
    )
    info.update(tip=[round(v, 2) for v in tip], shaft=[round(v, 2) for v in shaft])
    return tract, info


def check_band(tract: Tract, us: UltrasoundImage, spec: CaseSpec) -> None:
    """InputError naming the case file when the tract's band covers no whole pixel centre: a core
    narrower than a pixel (``width_mm`` against ``ultrasound.mm_per_pixel``) labels nothing, and a
    case with an empty band would enter the dataset as if registered."""
    band, _, _ = tract.band(us.shape)
    if band.any():
        return
    width_key = "tract.width_mm" if spec.tract is not None else "needle.width_mm (or needle.gauge)"
    mm_x, mm_y = us.mm_per_px
    raise InputError(
        f"{spec.path}: the sampled band covers no pixel: {width_key} {tract.width_mm:g} mm is narrower "
        f"than a pixel of ultrasound.mm_per_pixel {mm_x:g} x {mm_y:g} mm; check the scale and the core width"
    )


def register_case(case_path: str | Path, out_dir: str | Path, spec: CaseSpec | None = None) -> dict:
    """Register one case; write label.png, qa.png, us.png and report.json into out_dir; return the report."""
    t0 = time.perf_counter()
    spec = spec or load_case(case_path)
    out = Path(out_dir)
    refuse_overwriting_inputs(spec, out)
    warnings: list[str] = []
    us = load_ultrasound(spec.image, spec.mm_per_pixel, spec.frame, _needle_points(spec))
    tract, needle_info = resolve_tract(spec, us)
    check_band(tract, us, spec)  # before the slide is read: that takes seconds
    p = spec.pathology
    if not p.tip_end_given:  # a wrong side lays the pieces along the tract end for end: said, not silent
        warnings.append(TIP_END_ASSUMED.format(side=p.tip_end))
    slide = read_slide(p.wsi, p.mpp, TARGET_MPP, p.reader)
    if slide.note:
        warnings.append(slide.note)
    warnings += slide.warnings  # what the slide reader's library logged about the file
    mpp0 = slide.mpp / slide.downsample
    ann = load_annotations(p.annotations, p.cancer_classes, p.ignore_classes, p.exclude_classes)
    warnings += ann.warnings
    ann_scale = (p.annotation_mpp or mpp0) / slide.mpp
    level_shape = slide.rgb.shape[:2]
    cancer = rasterise(ann.cancer, level_shape, ann_scale)
    if ann.exclude:
        cancer[rasterise(ann.exclude, level_shape, ann_scale) > 0] = 0
    if ann.n_objects and not ann.cancer:
        warnings.append(
            f"{p.annotations}: no outline (area) of a cancer class {list(p.cancer_classes)[:4]}...: "
            "the core is labelled cancer-free"
        )
    # annotated area: the union minus exclusions, off-slide parts included, or within the ROI or section
    total = annotated_area(cancer, ann, ann_scale)
    if p.roi is not None:
        total = float(apply_roi(slide, cancer, p.roi, mpp0, str(spec.path)))
    masks = tissue_masks(slide.rgb, slide.mpp)
    # copies are looked for inside a roi too: a box drawn around two sections is still one core
    tissue, cancer, sections = one_section(masks.tissue, cancer, slide.mpp, str(p.wsi), warnings)
    if sections is not None:
        total = float(np.count_nonzero(cancer))
    frags = orient(find_fragments(slide.rgb, slide.mpp, cancer, str(p.wsi), warnings, tissue), p.tip_end)
    check_annotation_placement(total, frags, p.annotations, warnings)
    shrink, shrink_src = resolve_shrinkage(frags, tract.length_mm, p.shrinkage, p.fresh_length_mm, warnings)
    placements, transform = place(frags, tract.length_mm, shrink, shrink_src, str(spec.path), warnings)
    label = rasterise_label(us.shape, tract, frags, placements, p.flip_across)
    band, _, _ = tract.band(us.shape)
    stats = label_stats(label, band, us.mm_per_px)
    amb = ambiguous_mm(frags, placements)
    rejected = masks.rejected
    qual = quality(
        frags,
        transform,
        tract.length_mm,
        int(np.count_nonzero(tissue)),
        rejected_near_tissue(tissue, rejected, slide.mpp),
        slide.mpp,
        amb,
        p.fragments,
        shrink_src,
    )
    if amb > 0:
        warnings.append(
            f"tissue lost at the core's ends or breaks ({transform['spare_mm']:.2f} mm of tract "
            f"unaccounted for): cancer boundaries over {amb:.2f} mm of tract are marked unknown "
            "because their position along the tract is uncertain"
        )
    qa = make_qa(
        us.gray,
        tract,
        label,
        frags,
        placements,
        f"{spec.id}: cancer {100 * stats['cancer_fraction']:.0f}% of known, "
        f"known {100 * stats['known_fraction']:.0f}% of band, {len(frags)} fragment(s), "
        f"quality {qual['score']:.2f}",
        slide.rgb,
        QaExtras(qual, rejected, sections),
    )
    us_file = ultrasound_file(spec.image)
    report = {
        "case_id": spec.id,
        "patient_id": spec.patient_id,
        "case_file": input_file(spec.path),
        "source": spec.source,
        "ultrasound": {
            "file": us_file,
            "frame": spec.frame,
            "shape": list(us.shape),
            "dataset_image": us_file if spec.dataset_image is None else ultrasound_file(spec.dataset_image),
            "dataset_frame": spec.dataset_frame,
            "mm_per_pixel": [round(v, 6) for v in us.mm_per_px],
            "region": None if us.region is None else vars(us.region),
        },
        "needle": needle_info,
        "tract": tract.to_dict(),
        "slide": {
            "file": input_file(p.wsi),
            **slide.describe(),
            "annotations": input_file(p.annotations),
            "tip_end": p.tip_end,
            "roi": None if p.roi is None else list(p.roi),
        },
        "shrinkage": {"value": round(shrink, 4), "source": shrink_src},
        "transform": {
            "model": "per-fragment 1D similarity along the tract (along_mm = slide_mm / shrinkage), "
            "across normalised to the band",
            "flip_across": p.flip_across,
            **transform,
        },
        "label": stats,
        "quality": qual,
        "ambiguous": {
            "span_mm": round(amb, 3),
            "reason": (
                "position along the tract uncertain: tissue lost at the "
                "core's ends or breaks, where is unknown"
            )
            if amb
            else None,
            "fragment_position_sd_mm": [round(pl.sigma_mm, 3) for pl in placements],
        },
        "sections": None
        if sections is None
        else {
            "count": sections.count,
            "used": sections.used + 1,
            "shift_level_px": [round(v, 1) for v in sections.shift_px],
        },
        "warnings": warnings,
        "seconds": round(time.perf_counter() - t0, 3),
        # VmHWM of this process so far (its own address space, not a parent's): for a single
        # `sonomap register` that is the case's peak memory; in a batch, the batch's peak so far.
        "process_peak_rss_mb": round(peak_rss_bytes() / 2**20, 1),
    }
    return write_outputs(out, spec, us, label, qa, report)
