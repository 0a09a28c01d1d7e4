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

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from edge_runtime.atomic import atomic_write_png
from edge_runtime.csv_text import read_csv_text
from edge_runtime.errors import InputError
from edge_runtime.image_files import UnreadableImage, read_image
from edge_runtime.manifest import sha256_file
from registration.report import write_json, write_text
from registration.sim.biopsy_core import CoreParams, build_layout
from registration.sim.echo import draw_needle
from registration.sim.slide import write_asap_xml, write_geojson, write_pyramid
from registration.tract import GAUGE_DEFAULTS, Tract

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
MAX_ATTEMPTS = 200
MIN_TRUTH_PX = 12
MIN_LESION_SHARE = 0.25
NOTCH_SHIFT = 0.3  # notch centre offset from the aimed lesion point, in notch lengths
SHAFT_POINT_FRACTION = 0.6  # recorded shaft point: this far from the tip towards the entry
PSEUDONYM_HEX = 12  # hex digits of the image's SHA-256 in its pseudonymous patient id
INDEX_COLUMNS = "id,label"  # what list_sources reads of BUSI's index.csv
MALIGNANT = "malignant"


@dataclass
class SimParams:
    depth_mm: tuple = (40.0, 50.0)
    angle_deg: tuple = (10.0, 40.0)
    notch_mm: tuple = (15.0, 22.0)
    gauges: tuple = (14, 16)
    core: CoreParams = field(default_factory=CoreParams)


@dataclass(frozen=True)
class SimSource:
    """One source image and its lesion mask, known outside this module only by the image's digest."""

    image: Path
    mask: Path
    sha256: str  # of the image file's bytes

    @property
    def patient_id(self) -> str:
        """Pseudonymous patient id: the same for every case made from this image, no file name in it."""
        return f"src-{self.sha256[:PSEUDONYM_HEX]}"

    @property
    def label(self) -> str:
        """How messages name this source: by digest, never by its file name."""
        return f"source image {self.patient_id}"


def busi_labels(index: Path) -> dict[str, str]:
    """id -> label of BUSI's ``index.csv``. Read as prepare-busi reads it (a spreadsheet's byte-order
    mark accepted): InputError naming the file, and the line, when it is not UTF-8 or not CSV or has no
    id and label columns."""
    text = read_csv_text(index, INDEX_COLUMNS)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        if not set(INDEX_COLUMNS.split(",")) <= set(reader.fieldnames or []):
            raise InputError(f"{index}: needs columns {INDEX_COLUMNS} (BUSI layout)")
        return {row["id"]: row["label"] for row in reader}
    except csv.Error as exc:
        raise InputError(f"{index}:{reader.line_num}: not a valid CSV ({exc})") from None


def malignant_ids(index: Path) -> set[str]:
    """The ids that BUSI's ``index.csv`` labels malignant (errors as :func:`busi_labels`)."""
    return {image_id for image_id, label in busi_labels(index).items() if label == MALIGNANT}


def list_sources(images_dir: Path, masks_dir: Path) -> list[SimSource]:
    """Malignant images (index.csv label) or all images with a lesion mask, each with its digest."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    if not images_dir.is_dir():
        raise InputError(f"--images {images_dir}: not a folder")
    if not masks_dir.is_dir():
        raise InputError(f"--masks {masks_dir}: not a folder")
    index = images_dir.parent / "index.csv"
    malignant = malignant_ids(index) if index.is_file() else None
    out = []
    for img in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        if malignant is not None and img.stem not in malignant:
            continue
        mask = next(
            (masks_dir / (img.stem + s) for s in IMAGE_SUFFIXES if (masks_dir / (img.stem + s)).is_file()),
            None,
        )
        if mask is not None:
            out.append(SimSource(img, mask, sha256_file(img)))
    if not out:
        raise InputError(f"--images {images_dir}: no images with a matching lesion mask in {masks_dir}")
    return out


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
    ys, xs = np.nonzero(lesion)
    if len(ys) == 0:
        raise InputError(f"{where}: empty lesion mask")
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
    raise InputError(f"{where}: no tract through the lesion fits in the image after {MAX_ATTEMPTS} tries")


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
    src: SimSource, case_dir: Path, rng: np.random.Generator, p: SimParams, case_id: str
) -> dict:
    read = {}
    for part, path in (("image", src.image), ("mask", src.mask)):
        try:
            read[part] = read_image(path, cv2.IMREAD_GRAYSCALE)
        except UnreadableImage as exc:  # named by digest: the file name may be the patient's
            raise InputError(f"{src.label}: its {part}: {exc.reason}") from exc
    gray, lesion_img = read["image"], read["mask"]
    if lesion_img.shape != gray.shape:
        raise InputError(f"{src.label}: mask size {lesion_img.shape} differs from the image {gray.shape}")
    lesion = lesion_img > 127
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
    """Make ``n`` cases in out_dir/<case_id>/; returns {"cases": [...], "skipped": [...], "out": ...}."""
    if n < 1:
        raise InputError(f"--n {n}: need at least one case")
    params = params or SimParams()
    sources = list_sources(Path(images_dir), Path(masks_dir))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sources))
    out = Path(out_dir)
    made, skipped = [], []
    i = 0
    while len(made) < n and i < n + len(sources):
        src = sources[order[i % len(sources)]]
        i += 1
        case_id = f"sim_{len(made):04d}"  # no file name: the image may be named after the patient
        case_rng = np.random.default_rng([seed, i])
        try:
            made.append(simulate_case(src, out / case_id, case_rng, params, case_id))
        except InputError as exc:  # e.g. a lesion too close to the border for any tract
            skipped.append({"image_sha256": src.sha256, "reason": str(exc)})
    return {"out": str(out), "cases": made, "skipped": skipped}
