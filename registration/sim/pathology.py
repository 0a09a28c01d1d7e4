"""``sonomap simulate-pathology``: the lab's answer for captured biopsies of a simulated procedure.

Input: a folder of cases captured by ``sonomap replay CLIP --cases DIR`` and the clip's truth
(``CLIP.truth.json`` + ``CLIP.lesion.png``, written by ``sonomap simulate-procedure``). For each
captured case still waiting for its slide, the fire it recorded is found in the truth (by its
pre-fire frame) and checked to be that fire: its prefire.png against the fingerprint the truth holds
of the clip's pre-fire frame (clips of the default seed share their frame numbers, so a case from
another patient's clip would otherwise take this clip's truth). The core that fire cut is simulated
along the *true* tract: the true post-fire tip and angle, the case's gauge geometry
(registration/tract.py), the lesion truth in ROI pixels.
Output per case folder:

- ``slide.ome.tif`` (pyramidal OME-TIFF) and ``slide.geojson`` (QuPath annotation), made by the
  same simulator as ``sonomap simulate-biopsy`` (registration/sim/biopsy_core.py, slide.py);
- case.yaml's ``pathology:`` section filled in (slide, annotation, tip end, shrinkage, and
  ``patient_id`` when given) in place, the lab's other keys in it and the rest of the file kept
  (pathology_section.py);
- ``pathology_truth.json``: the true tract and the truth's cancer fraction in its band, for checks.

Every case is matched to its fire, and its scale and needle checked as register checks them (the
case.yaml schema; ``mm_per_pixel`` may be ``[x, y]``), before any is written: a case of another clip
or a value register would refuse (``gauge: 14G``) is a one-line error naming the case file (and the
key), and leaves every case folder as it was.

Registration later reads the needle the capture fitted (not the truth), as it would in a clinic.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import InputError
from edge_runtime.image_files import UnreadableImage, read_image
from edge_runtime.manifest import SHA_SHOWN
from edge_runtime.typed_config import convert, shown
from edge_runtime.yamlfile import read_yaml_mapping
from registration.case import WORDING
from registration.case_schema import CaseFile, NeedleSection
from registration.cases.identity import patient_of
from registration.cases.status import find_case_files
from registration.report import write_json, write_text
from registration.sim.biopsy_core import CoreParams, build_layout
from registration.sim.pathology_section import filled_text
from registration.sim.procedure import (
    FINGERPRINT_HEX,
    FINGERPRINT_KEY,
    FINGERPRINT_MAX_BITS,
    GAUGE,
    fingerprint_distance,
    roi_fingerprint,
)
from registration.sim.slide import write_geojson, write_pyramid
from registration.tract import Tract, device_geometry, tract_from_needle

SLIDE, ANNOTATION, TRUTH = "slide.ome.tif", "slide.geojson", "pathology_truth.json"
SHAFT_MM = 10.0  # a point this far behind the true tip, on the shaft
CANCER_CLASS = "Tumor"
LESION_LEVEL = 127
NUMBER = (int, float)
# what each fire must hold
FIRE_KEYS = {"pre_index": (int,), "angle_deg": NUMBER, "tip": (list,), FINGERPRINT_KEY: (str,)}
HEX_DIGITS = set("0123456789abcdef")  # roi_fingerprint writes lower-case hex
PREFIRE = "prefire.png"  # a captured case's pre-fire ROI (ultrasound.dataset_image)
XY = 2


def _is(value, kinds) -> bool:
    return isinstance(value, kinds) and not isinstance(value, bool)


def check_truth(truth: dict, where: str) -> None:
    """InputError naming the truth file and the key when it lacks what simulating a case reads
    (``mm_per_pixel``, ``fires`` with each fire's pre-fire frame, true tip and angle)."""
    mm = truth.get("mm_per_pixel")
    if not _is(mm, NUMBER) or not mm > 0:
        raise InputError(
            f"{where}: 'mm_per_pixel' missing or not a positive number (a truth.json of simulate-procedure?)"
        )
    gauge = truth.get("gauge", GAUGE)
    if not _is(gauge, (int,)):
        raise InputError(
            f"{where}: 'gauge' must be a whole number (a needle gauge such as 14), got {shown(gauge)}"
        )
    fires = truth.get("fires")
    if not isinstance(fires, list):
        raise InputError(f"{where}: 'fires' missing or not a list (a truth.json of simulate-procedure?)")
    for i, fire in enumerate(fires):
        if not isinstance(fire, dict):
            raise InputError(f"{where}: fires[{i}] is not a mapping")
        for key, kinds in FIRE_KEYS.items():
            if not _is(fire.get(key), kinds):
                # a truth written before fingerprints were recorded lacks them: it is written again
                hint = (
                    "; write the truth again with sonomap simulate-procedure"
                    if key == FINGERPRINT_KEY
                    else ""
                )
                raise InputError(f"{where}: fires[{i}].{key} missing or not {kinds[0].__name__}{hint}")
        if len(fire["tip"]) != XY or not all(_is(v, NUMBER) for v in fire["tip"]):
            raise InputError(f"{where}: fires[{i}].tip must be [x, y], got {fire['tip']!r}")
        if len(fire[FINGERPRINT_KEY]) != FINGERPRINT_HEX or not set(fire[FINGERPRINT_KEY]) <= HEX_DIGITS:
            raise InputError(
                f"{where}: fires[{i}].{FINGERPRINT_KEY} is not a fingerprint of {FINGERPRINT_HEX} hex digits"
            )


def prefire_image(case_yaml: Path, case: dict) -> np.ndarray:
    """The case's gray pre-fire ROI image; InputError naming it when missing or unreadable."""
    us = case.get("ultrasound") if isinstance(case.get("ultrasound"), dict) else {}
    path = case_yaml.parent / str(us.get("dataset_image") or PREFIRE)
    try:
        return read_image(path, cv2.IMREAD_GRAYSCALE)  # any path, not only UTF-8 ones
    except UnreadableImage as exc:
        raise InputError(f"{case_yaml}: its pre-fire image {path.name}: {exc.reason}") from exc


def fire_for(case_yaml: Path, case: dict, pre_image: np.ndarray, truth: dict, truth_json: Path) -> dict:
    """The truth's fire this case captured: the one at its pre-fire frame whose fingerprint matches
    the case's pre-fire image. InputError naming the case and the truth file otherwise."""
    pre = (case.get("capture") or {}).get("pre_fire") or {}
    fires = truth["fires"]
    fire = next((f for f in fires if f["pre_index"] == pre.get("frame")), None)
    if fire is None:
        raise InputError(
            f"{case_yaml}: capture.pre_fire.frame {pre.get('frame')!r} matches no fire of {truth_json} "
            f"(pre-fire frames {[f['pre_index'] for f in fires]}): not a case of this clip?"
        )
    differ = fingerprint_distance(fire[FINGERPRINT_KEY], roi_fingerprint(pre_image))
    if differ > FINGERPRINT_MAX_BITS:
        raise InputError(
            f"{case_yaml}: its pre-fire image is not frame {fire['pre_index']} of the clip of {truth_json} "
            f"({differ} fingerprint bits differ, at most {FINGERPRINT_MAX_BITS} allowed): "
            "a case of another clip?"
        )
    return fire


def true_tract(fire: dict, mm_per_px: tuple[float, float], geometry: dict) -> Tract:
    """The sampled segment of ``fire`` from its true post-fire tip and angle (both in ROI pixels)."""
    a = np.radians(fire["angle_deg"])
    tip = np.asarray(fire["tip"], float)
    # a point on the shaft: only its direction from the tip counts, the notch is laid out in mm from there
    behind = SHAFT_MM / min(mm_per_px)
    shaft = tip - behind * np.array([np.cos(a), np.sin(a)])  # the needle enters from the left
    return tract_from_needle(tuple(tip), tuple(shaft), mm_per_px, geometry)


def case_tract(case_yaml: Path, case: dict, fire: dict, truth: dict) -> Tract:
    """The true tract of ``fire`` at this case's scale (``ultrasound.mm_per_pixel``, a number or
    [x, y]; else the truth's) and with its needle's device geometry (``needle.gauge``, else the
    truth's, and any ``notch_mm``/``tip_offset_mm``/``width_mm``), as register will read them. The
    case is checked against the case.yaml schema first: a value register refuses (``gauge: 14G``) is
    the same one-line error, met before any case is written."""
    spec = convert(case, CaseFile, str(case_yaml), WORDING)
    scale = spec.ultrasound.mm_per_pixel
    if scale is None:
        scale = truth["mm_per_pixel"]
    mm_per_px = (float(scale[0]), float(scale[1])) if isinstance(scale, list) else (float(scale),) * XY
    needle = spec.needle if isinstance(spec.needle, NeedleSection) else NeedleSection()
    given = case["needle"] if isinstance(case.get("needle"), dict) else {}
    gauge = needle.gauge if "gauge" in given else truth.get("gauge", GAUGE)
    geometry = device_geometry(
        gauge, needle.notch_mm, needle.tip_offset_mm, needle.width_mm, f"{case_yaml}: "
    )
    return true_tract(fire, mm_per_px, geometry)


def _fill_pathology(case_yaml: Path, pathology: dict, note: str) -> None:
    """Fill case.yaml's pathology section in place, keep every other byte (pathology_section.py)."""
    write_text(case_yaml, filled_text(case_yaml, case_yaml.read_text(), pathology, note))


def matched_fire(
    case_yaml: Path, truth: dict, truth_json: Path, lesion: np.ndarray
) -> tuple[dict, dict, Tract]:
    """(case.yaml mapping, its fire in the truth, the fire's true tract), checked as
    :func:`simulate_case` needs them."""
    case = read_yaml_mapping(case_yaml, "case file")
    pre = prefire_image(case_yaml, case)
    if pre.shape != lesion.shape:
        raise InputError(f"{case_yaml}: the pre-fire image is not the truth's ROI size {lesion.shape[::-1]}")
    fire = fire_for(case_yaml, case, pre, truth, truth_json)
    # where the answer goes, found and checked before any case is written
    filled_text(case_yaml, case_yaml.read_text(), {"wsi": SLIDE, "annotations": ANNOTATION}, "check")
    return case, fire, case_tract(case_yaml, case, fire, truth)


def simulate_case(
    case_yaml: Path,
    matched: tuple[dict, dict, Tract],
    truth: dict,
    lesion: np.ndarray,
    seed: int,
    params: CoreParams,
    patient: str | None,
) -> dict:
    """Simulate one case's slide + annotation (module docstring) for its ``matched`` (case.yaml
    mapping, fire, true tract) of :func:`matched_fire`; return its truth record."""
    case, fire, tract = matched
    rng = np.random.default_rng([seed, int(fire["pre_index"])])
    layout, core = build_layout(lesion, tract, rng, params)
    folder = case_yaml.parent
    write_pyramid(layout, folder / SLIDE, seed=int(rng.integers(1 << 30)))
    write_geojson(layout, folder / ANNOTATION, CANCER_CLASS, seed=int(rng.integers(1 << 30)))
    pathology = {
        "wsi": SLIDE,
        "annotations": ANNOTATION,
        "cancer_classes": [CANCER_CLASS],
        "tip_end": core["tip_end"],
        "shrinkage": round(core["shrinkage"], 4),
    }
    if core.get("roi"):
        pathology["roi"] = core["roi"]
    if patient is not None:
        pathology["patient_id"] = patient
    band, _, _ = tract.band(lesion.shape)
    fraction = float(lesion[band].mean()) if band.any() else 0.0
    info = {
        "case": case.get("id", folder.name),
        "fire": fire,
        "tract": tract.to_dict(),
        "truth_cancer_fraction": round(fraction, 4),
        "core_has_cancer": bool(lesion[band].any()),
        "shrinkage": core["shrinkage"],
        "fragments_mm": core["fragments_mm"],
    }
    write_json(folder / TRUTH, info)
    # the procedure is named by its image's content, not by the clip's file name, which a user may
    # have chosen after the patient (case.yaml never holds a file name)
    source = str(truth.get("image_sha256", ""))[:SHA_SHOWN] or "an unnamed procedure"
    _fill_pathology(
        case_yaml, pathology, f"simulated by sonomap simulate-pathology (procedure image {source})"
    )
    return info


def simulate_pathology(
    cases_dir, truth_json, seed: int = 0, patient_id: str | None = None, mpp: float = 4.0
) -> dict:
    """Fill in every captured case under ``cases_dir`` still waiting for its slide; return a summary."""
    truth_json = Path(truth_json)
    truth = read_yaml_mapping(truth_json, "procedure truth")  # JSON is YAML
    check_truth(truth, str(truth_json))
    lesion = truth.get("lesion")
    if not isinstance(lesion, str) or not lesion:
        raise InputError(
            f"{truth_json}: 'lesion' must name the lesion mask PNG beside it, got {shown(lesion)}"
        )
    lesion_png = truth_json.parent / lesion
    try:
        lesion_img = read_image(lesion_png, cv2.IMREAD_GRAYSCALE)
    except UnreadableImage as exc:
        raise InputError(f"{truth_json}: lesion mask {lesion_png}: {exc.reason}") from exc
    if patient_id is not None:
        patient_of({"patient_id": patient_id}, "", "--patient-id")  # one plain name, or a clear error
    files = find_case_files(Path(cases_dir))
    if not files:
        raise InputError(f"{cases_dir}: no */case.yaml found")
    params = CoreParams(mpp=mpp)
    lesion = lesion_img > LESION_LEVEL
    todo, kept = {}, []
    for case_yaml in files:  # every case matched first: one of another clip stops the run unwritten
        case = read_yaml_mapping(case_yaml, "case file")
        pathology = case.get("pathology")
        if pathology is not None and not isinstance(pathology, dict):
            raise InputError(
                f"{case_yaml}: 'pathology' must be a section (wsi, annotations, ...), got {shown(pathology)}"
            )
        if (pathology or {}).get("wsi") is not None:
            kept.append(str(case_yaml))  # the lab has answered already
            continue
        todo[case_yaml] = matched_fire(case_yaml, truth, truth_json, lesion)
    made = [
        simulate_case(case_yaml, matched, truth, lesion, seed, params, patient_id)
        for case_yaml, matched in todo.items()
    ]
    return {"filled": made, "already_filled": kept}
