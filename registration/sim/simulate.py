"""Semi-synthetic biopsy cases with known truth, from real ultrasound images and lesion masks.

Input: a folder of 8-bit ultrasound images and a folder of lesion masks (same stems; BUSI
layout, where ``index.csv`` beside them selects the malignant ones). Output per case, in
CASES/<case_id>/: case.yaml, us.png (image with the post-fire needle echo), us_prefire.png (the
same view without the needle: ultrasound.dataset_image, what the dataset gets), truth.png (0 band
without lesion, 1 lesion in the band, 255 outside the band), core.ome.tif (pyramidal WSI),
core.geojson (QuPath), core.xml (ASAP, same polygons) and truth.json (all sampled parameters).

BUSI carries no calibration, so each case draws an imaging depth of 40-50 mm and records
mm_per_pixel = depth / image height.

Nothing written or returned carries an input file's name: a user's own images may be named after
the patient. Case ids are ``sim_NNNN``; case.yaml's ``patient_id`` is ``src-`` + the first 12 hex
digits of the image file's SHA-256 (cases made from one image stay one patient for the dataset
split), and ``source.image_sha256`` / truth.json's ``image_sha256`` / a skipped entry record the
image by the SHA-256 of its content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from edge_runtime.atomic import atomic_write_png
from edge_runtime.errors import InputError
from registration.report import write_json, write_text
from registration.sim.biopsy_core import CoreParams, build_layout
from registration.sim.echo import draw_needle
from registration.sim.slide import write_asap_xml, write_geojson, write_pyramid
from registration.sim.sources import SimSource, list_sources, read_pair
from registration.tract import GAUGE_DEFAULTS, Tract

MAX_ATTEMPTS = 200
MIN_TRUTH_PX = 12
MIN_LESION_SHARE = 0.25
NOTCH_SHIFT = 0.3  # notch centre offset from the aimed lesion point, in notch lengths
SHAFT_POINT_FRACTION = 0.6  # recorded shaft point: this far from the tip towards the entry
SKIPS_SHOWN = 3  # skipped images a one-line error names; the rest are counted
UNUSABLE, NO_TRACT = "unusable", "no_tract"  # why an image was skipped (the summary's "kind")


class NoFittingTract(InputError):
    """No tract through the lesion fitted in the image in this draw; another draw of the same image
    may fit, unlike an input that cannot be used at all."""


@dataclass
class SimParams:
    depth_mm: tuple = (40.0, 50.0)
    angle_deg: tuple = (10.0, 40.0)
    notch_mm: tuple = (15.0, 22.0)
    gauges: tuple = (14, 16)
    core: CoreParams = field(default_factory=CoreParams)


def read_source(src: SimSource) -> tuple[np.ndarray, np.ndarray]:
    """(gray image, lesion as bool) of a source; InputError naming it by digest when it cannot be
    used: an image or mask that cannot be read, a mask of another size, a mask with no lesion."""
    gray, lesion = read_pair(src.image, src.mask, f"{src.label}: its image", f"{src.label}: its mask")
    if not lesion.any():
        raise InputError(f"{src.label}: its mask holds no lesion (empty lesion mask)")
    return gray, lesion


def _entry_point(tip: np.ndarray, direction: np.ndarray, shape) -> np.ndarray:
    """Where the needle, coming along ``direction`` to ``tip``, crosses the image border."""
    h, w = shape
    ts = []
    for k, lim in ((0, 0.0), (0, w - 1.0), (1, 0.0), (1, h - 1.0)):
        if abs(direction[k]) > 1e-9:
            t = (tip[k] - lim) / direction[k]
            if t > 0:
                ts.append(t)
    return tip - direction * min(ts)


def sample_tract(lesion: np.ndarray, mmpp: float, rng: np.random.Generator, p: SimParams, where: str) -> dict:
    """A tract through the lesion with the whole notch and the needle tip inside the image."""
    h, w = lesion.shape
    ys, xs = np.nonzero(lesion)  # not empty: read_source refuses a mask without a lesion
    # aim at the lesion interior: pick the notch centre with weight = distance to the lesion border
    depth = cv2.distanceTransform(lesion.astype(np.uint8), cv2.DIST_L2, 5)[ys, xs].astype(np.float64)
    weights = depth / depth.sum()
    for attempt in range(MAX_ATTEMPTS):
        gauge = int(rng.choice(p.gauges))
        geo = GAUGE_DEFAULTS[gauge]
        theta = np.deg2rad(rng.uniform(*p.angle_deg))
        side = 1.0 if rng.random() < 0.5 else -1.0
        direction = np.array([side * np.cos(theta), np.sin(theta)])
        notch = float(rng.uniform(*p.notch_mm))
        k = int(rng.choice(len(ys), p=weights))
        centre = (
            np.array([xs[k], ys[k]], float)
            + direction * rng.uniform(-NOTCH_SHIFT, NOTCH_SHIFT) * notch / mmpp
        )
        end = centre + direction * notch / 2 / mmpp
        start = centre - direction * notch / 2 / mmpp
        tip = end + direction * geo["tip_offset_mm"] / mmpp
        margin = geo["width_mm"] / mmpp + 2
        pts = np.array([start, end, tip])
        if (
            pts[:, 0].min() < margin
            or pts[:, 0].max() > w - 1 - margin
            or pts[:, 1].min() < margin
            or pts[:, 1].max() > h - 1 - margin
        ):
            continue
        tract = Tract(tuple(start), tuple(end), geo["width_mm"], (mmpp, mmpp))
        band, _, _ = tract.band(lesion.shape)
        hit = int((band & lesion).sum())
        # a biopsy through the lesion, not grazing it (relaxed late, for small or odd lesions)
        if hit < MIN_TRUTH_PX or (attempt < MAX_ATTEMPTS // 2 and hit < MIN_LESION_SHARE * band.sum()):
            continue
        entry = _entry_point(tip, direction, lesion.shape)
        shaft = tip + (entry - tip) * SHAFT_POINT_FRACTION
        return {
            "tract": tract,
            "tip": tip,
            "entry": entry,
            "shaft": shaft,
            "gauge": gauge,
            "notch_mm": notch,
            "tip_offset_mm": geo["tip_offset_mm"],
            "od_mm": geo["od_mm"],
            "angle_deg": float(np.rad2deg(theta)),
        }
    raise NoFittingTract(f"{where}: no tract through the lesion fits in the image after {MAX_ATTEMPTS} tries")


def _pt(p) -> list:
    return [round(float(p[0]), 3), round(float(p[1]), 3)]


def _length_keys(geo: dict, core_truth: dict, rng, p: SimParams) -> dict:
    """What the lab recorded about the core's length: its shrinkage, or (lab simulation) often only
    the fresh length measured at grossing (the notch less the tissue lost at the ends)."""
    lab = p.core.lab
    if lab is not None and rng.random() < lab.fresh_length_p:
        return {"fresh_length_mm": round(geo["notch_mm"] - sum(core_truth["end_loss_mm"]), 1)}
    return {"shrinkage": round(core_truth["shrinkage"], 4)}


def simulate_case(
    src: SimSource, pair: tuple, case_dir: Path, rng: np.random.Generator, p: SimParams, case_id: str
) -> dict:
    """Write one case from ``src``, read as ``pair`` (:func:`read_source`), into ``case_dir``;
    NoFittingTract, before anything is written, when this draw finds no tract."""
    gray, lesion = pair
    mmpp = float(rng.uniform(*p.depth_mm)) / gray.shape[0]
    geo = sample_tract(lesion, mmpp, rng, p, src.label)
    tract = geo["tract"]
    band, _, _ = tract.band(gray.shape)
    truth = np.full(gray.shape, 255, np.uint8)
    truth[band] = lesion[band].astype(np.uint8)
    us = draw_needle(gray, geo["entry"], geo["tip"], geo["od_mm"] / mmpp, rng)
    layout, core_truth = build_layout(lesion, tract, rng, p.core)
    case_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_png(case_dir / "us.png", us)
    atomic_write_png(case_dir / "us_prefire.png", gray)  # same probe position, no needle: the dataset frame
    atomic_write_png(case_dir / "truth.png", truth)
    write_pyramid(layout, case_dir / "core.ome.tif", seed=int(rng.integers(1 << 30)))
    write_geojson(layout, case_dir / "core.geojson", seed=int(rng.integers(1 << 30)), habits=p.core.lab)
    write_asap_xml(layout, case_dir / "core.xml")
    case = {
        "id": case_id,
        "patient_id": src.patient_id,
        "source": {"image_sha256": src.sha256, "dataset": "BUSI", "simulated": True},
        "ultrasound": {"image": "us.png", "mm_per_pixel": round(mmpp, 6), "dataset_image": "us_prefire.png"},
        "needle": {
            "tip": _pt(geo["tip"]),
            "shaft": _pt(geo["shaft"]),
            "gauge": geo["gauge"],
            "notch_mm": round(geo["notch_mm"], 3),
            "tip_offset_mm": geo["tip_offset_mm"],
        },
        "tract": {"start": _pt(tract.start), "end": _pt(tract.end), "width_mm": tract.width_mm},
        "pathology": {
            "wsi": "core.ome.tif",
            "annotations": "core.geojson",
            "cancer_classes": ["Tumor"],
            "tip_end": core_truth["tip_end"],
            **_length_keys(geo, core_truth, rng, p),
        },
    }
    if core_truth.get("roi"):
        case["pathology"]["roi"] = core_truth["roi"]
    write_text(case_dir / "case.yaml", yaml.safe_dump(case, sort_keys=False))
    truth_info = {
        "case_id": case_id,
        "image_sha256": src.sha256,
        "mm_per_pixel": mmpp,
        "angle_deg": geo["angle_deg"],
        "tip": _pt(geo["tip"]),
        "entry": _pt(geo["entry"]),
        "shaft": _pt(geo["shaft"]),
        "gauge": geo["gauge"],
        "notch_mm": geo["notch_mm"],
        "tip_offset_mm": geo["tip_offset_mm"],
        "width_mm": tract.width_mm,
        "truth_cancer_px": int((truth == 1).sum()),
        "band_px": int(band.sum()),
        **core_truth,
    }
    write_json(case_dir / "truth.json", truth_info)
    return truth_info


def simulate_cases(
    images_dir, masks_dir, out_dir, n: int, seed: int = 0, params: SimParams | None = None
) -> dict:
    """Make ``n`` cases in out_dir/<case_id>/; returns {"out", "asked", "cases": [...], "skipped": [...]}
    with one skipped entry per image that gave no case ({"image_sha256", "kind", "reason"}: kind
    UNUSABLE for an input that cannot be used, tried once; NO_TRACT when no draw found a tract).
    InputError, naming why, when not one case could be made."""
    if n < 1:
        raise InputError(f"--n {n}: need at least one case")
    params = params or SimParams()
    sources = list_sources(Path(images_dir), Path(masks_dir))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sources))
    out = Path(out_dir)
    made, unusable, no_tract, fitted = [], {}, {}, set()
    i = tries = 0
    while len(made) < n and tries < n + len(sources) and len(unusable) < len(sources):
        src = sources[order[i % len(sources)]]
        i += 1  # every turn, an unusable source's too: a good image's draw (seeded by i) stays the same
        if src in unusable:  # what it lacks does not change: neither read again nor a try spent
            continue
        tries += 1
        try:
            pair = read_source(src)
        except InputError as exc:
            unusable[src] = str(exc)
            continue
        case_id = f"sim_{len(made):04d}"  # no file name: the image may be named after the patient
        case_rng = np.random.default_rng([seed, i])
        try:
            made.append(simulate_case(src, pair, out / case_id, case_rng, params, case_id))
            fitted.add(src)
        except NoFittingTract as exc:  # e.g. a lesion too close to the border for any tract
            no_tract[src] = str(exc)
    skipped = [{"image_sha256": s.sha256, "kind": UNUSABLE, "reason": r} for s, r in unusable.items()] + [
        {"image_sha256": s.sha256, "kind": NO_TRACT, "reason": r}
        for s, r in no_tract.items()
        if s not in fitted
    ]
    if not made:
        shown = "; ".join(s["reason"] for s in skipped[:SKIPS_SHOWN])
        more = f"; and {len(skipped) - SKIPS_SHOWN} more" if len(skipped) > SKIPS_SHOWN else ""
        raise InputError(
            f"--images {images_dir}: no case could be made from {len(skipped)} image(s): {shown}{more}"
        )
    return {"out": str(out), "asked": n, "cases": made, "skipped": skipped}


def summary_lines(summary: dict) -> list[str]:
    """What simulate-biopsy prints: the cases made, then each skipped image by digest with its reason."""
    made, skipped = len(summary["cases"]), summary["skipped"]
    head = f"simulated {made} case(s) in {summary['out']}"
    if made < summary["asked"]:
        head = f"simulated {made} of {summary['asked']} case(s) in {summary['out']}"
    counts = {kind: sum(s["kind"] == kind for s in skipped) for kind in (UNUSABLE, NO_TRACT)}
    why = {UNUSABLE: "that cannot be used", NO_TRACT: "with no tract through the lesion that fits"}
    parts = [f"{k} {why[kind]}" for kind, k in counts.items() if k]
    if parts:
        head += f"; skipped {len(skipped)} image(s): " + ", ".join(parts)
    return [head] + [f"  skipped {s['reason']}" for s in skipped]
