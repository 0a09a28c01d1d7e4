"""case.yaml: validation and resolution of one biopsy case.

Keys, types, ranges and defaults are declared in ``case_schema.py`` (``CaseFile``); this module
converts a file with them and resolves what needs the file system (paths, ids). Input: a
case.yaml path. Output: a validated ``CaseSpec`` whose file paths are absolute
(relative paths are resolved against the folder holding case.yaml). Every problem raises
``ConfigError``/``InputError`` naming the file and the key, so a research team can fix its
own cases without reading code.

The full example with every key is ``CASE_EXAMPLE`` (case_example.py; ``sonomap register --example``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_runtime.biopsy.study_id import case_id_of
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.safe_names import safe_name
from edge_runtime.typed_config import Wording, convert, shown
from edge_runtime.yamlfile import read_yaml_mapping
from registration.case_classes import class_lists
from registration.case_example import CASE_EXAMPLE  # noqa: F401  (re-exported: `sonomap register --example`)
from registration.case_paths import path_slip
from registration.case_schema import (
    DEFAULT_CANCER_CLASSES,
    DEFAULT_EXCLUDE_CLASSES,
    DEFAULT_IGNORE_CLASSES,
    SLIDE_READERS,
    TIP_ENDS,
    CaseFile,
    NeedleSection,
    PathologySection,
)
from registration.cases.identity import identity_keys, patient_of
from registration.wsi_mpp import MAX_PLAUSIBLE_MPP, MIN_PLAUSIBLE_MPP, plausible

__all__ = [
    "DEFAULT_CANCER_CLASSES",
    "DEFAULT_EXCLUDE_CLASSES",
    "DEFAULT_IGNORE_CLASSES",
    "SLIDE_READERS",
    "TIP_ENDS",
]
MIN_SHRINKAGE, MAX_SHRINKAGE = 0.3, 1.2  # outside this a "shrinkage" is a unit mistake


@dataclass
class NeedleSpec:
    tip: tuple[float, float] | None  # None = auto-detect
    shaft: tuple[float, float] | None
    gauge: int = 14
    notch_mm: float | None = None
    tip_offset_mm: float | None = None
    width_mm: float | None = None

    @property
    def auto(self) -> bool:
        return self.tip is None


@dataclass
class TractSpec:
    start: tuple[float, float]
    end: tuple[float, float]
    width_mm: float


@dataclass
class PathologySpec:
    wsi: Path
    annotations: Path
    mpp: float | None = None
    annotation_mpp: float | None = None
    cancer_classes: tuple[str, ...] = DEFAULT_CANCER_CLASSES
    ignore_classes: tuple[str, ...] = DEFAULT_IGNORE_CLASSES
    exclude_classes: tuple[str, ...] = DEFAULT_EXCLUDE_CLASSES
    tip_end: str = "left"
    tip_end_given: bool = True  # False: case.yaml left it out, and the default side is assumed
    shrinkage: float | None = None
    fresh_length_mm: float | None = None
    flip_across: bool = False
    roi: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 level-0 px: one section
    reader: str = "auto"  # slide reader: auto (the one that opens the file), tifffile or openslide
    fragments: int | None = None  # pieces the lab counted (quality score), None = not recorded


@dataclass
class CaseSpec:
    path: Path
    id: str
    patient_id: str
    image: Path
    mm_per_pixel: tuple[float, float] | None
    frame: int
    needle: NeedleSpec | None
    tract: TractSpec | None
    pathology: PathologySpec
    source: dict = field(default_factory=dict)
    capture: dict = field(default_factory=dict)  # see docs/biopsy-capture.md
    dataset_image: Path | None = None  # frame written to the dataset (e.g. pre-fire), default: image
    dataset_frame: int = 0


class CaseWording(Wording):
    """case.yaml's message shapes: ``<file>: needle.gauge must be an integer, got 'x'``."""

    def bad_value(self, origin: str, key: str, want: str, value: Any) -> str:
        return f"{origin}: {key} must be {want}, got {shown(value)}"

    def unknown(self, origin: str, key: str, known: list[str]) -> str:
        section, _, name = key.rpartition(".")
        return self.unknown_keys(origin, section, [name], known)

    def unknown_keys(self, origin: str, section: str, names: list[str], known: list[str]) -> str:
        where = f" in '{section}'" if section else ""
        return f"{origin}: unknown key(s) {names}{where} (allowed: {known})"

    def not_mapping(self, origin: str, key: str, value: Any) -> str:
        return f"{origin}: '{key}' must be a mapping, got {type(value).__name__}"


WORDING = CaseWording()


def _file(base: Path, val: str | None, where: str, in_folder: str = "") -> Path:
    """``val`` (relative to ``base``, the case's folder) as the path of an existing file; ``where`` names
    case.yaml and the key. ConfigError when no path is given or it is a slip no file will mend
    (case_paths.py), InputError when it is no usable path, a folder (``in_folder``: which of its files
    to give) or missing."""
    if not val:
        raise ConfigError(f"{where}: expected a file path, got {val!r}")
    p = Path(val)
    p = p if p.is_absolute() else base / p
    try:
        found, folder = p.is_file(), p.is_dir()
    except (OSError, ValueError) as exc:  # e.g. a name longer than the file system allows
        raise InputError(f"{where}: not a usable file path ({exc.strerror or exc})") from exc
    if folder:  # "file not found" would send the user looking for a file that is plainly there
        raise InputError(f"{where}: {p} is a folder, not a file; give the file itself{in_folder}")
    if not found and p.exists():  # a pipe or a device: reading it would block, or never end
        raise InputError(
            f"{where}: {p} is not a regular file (a pipe, a device or a socket); give the file itself"
        )
    if not found:
        slip = path_slip(val, base)
        raise InputError(f"{where}: file not found: {p}") if slip is None else ConfigError(f"{where} {slip}")
    return p


def _scale(val) -> tuple[float, float] | None:
    if val is None:
        return None
    return (float(val), float(val)) if isinstance(val, (int, float)) else (float(val[0]), float(val[1]))


def _needle(val: str | NeedleSection | None, where: str) -> NeedleSpec | None:
    if val is None:
        return None
    if val == "auto":
        return NeedleSpec(tip=None, shaft=None)
    if val.tip == "auto":
        tip_pt, shaft_pt = None, None
    else:
        tip_pt = (float(val.tip[0]), float(val.tip[1]))
        if val.shaft is None:
            raise ConfigError(f"{where}: needle.shaft is required with an explicit needle.tip")
        shaft_pt = (float(val.shaft[0]), float(val.shaft[1]))
        if tip_pt == shaft_pt:
            raise ConfigError(f"{where}: needle.tip and needle.shaft are the same point")
    return NeedleSpec(
        tip=tip_pt,
        shaft=shaft_pt,
        gauge=val.gauge,
        notch_mm=None if val.notch_mm is None else float(val.notch_mm),
        tip_offset_mm=None if val.tip_offset_mm is None else float(val.tip_offset_mm),
        width_mm=None if val.width_mm is None else float(val.width_mm),
    )


def _float(val) -> float | None:
    return None if val is None else float(val)


def _pathology(p: PathologySection, base: Path, where: str, tip_end_given: bool = True) -> PathologySpec:
    shrink = _float(p.shrinkage)
    if shrink is not None and not MIN_SHRINKAGE <= shrink <= MAX_SHRINKAGE:
        raise ConfigError(
            f"{where}: pathology.shrinkage={shrink} is implausible "
            f"(expected slide/fresh length in [{MIN_SHRINKAGE}, {MAX_SHRINKAGE}])"
        )
    for key in ("mpp", "annotation_mpp"):
        value = getattr(p, key)
        if value is not None and not plausible(float(value)):  # the range simulate-biopsy --wsi-mpp offers
            raise ConfigError(
                f"{where}: pathology.{key}={value} is implausible (expected microns per pixel in "
                f"[{MIN_PLAUSIBLE_MPP:g}, {MAX_PLAUSIBLE_MPP:g}]: a unit mistake?)"
            )
    fresh = _float(p.fresh_length_mm)
    if shrink is not None and fresh is not None:
        raise ConfigError(f"{where}: give pathology.shrinkage or pathology.fresh_length_mm, not both")
    return PathologySpec(
        wsi=_file(base, p.wsi, f"{where}: pathology.wsi", " (a DICOM WSI: any one file of the series)"),
        annotations=_file(base, p.annotations, f"{where}: pathology.annotations"),
        mpp=_float(p.mpp),
        annotation_mpp=_float(p.annotation_mpp),
        **class_lists(p, where),
        tip_end=p.tip_end,
        tip_end_given=tip_end_given,
        shrinkage=shrink,
        fresh_length_mm=fresh,
        flip_across=p.flip_across,
        roi=None if p.roi is None else tuple(float(v) for v in p.roi),
        reader=p.reader,
        fragments=p.fragments,
    )


JSON_SCALARS = (str, int, float, bool, type(None))  # what report.json can hold as is


def _json_safe(value: Any, key: str, where: str) -> Any:
    """``value`` from YAML as report.json can hold it: a YAML date (``scanned: 2024-01-05``) becomes
    its ISO text; any other non-JSON value (binary, a set) is a ConfigError naming the key, here at
    load, not when report.json is written after the images."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, JSON_SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, f"{key}[{i}]", where) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {str(_json_safe(k, key, where)): _json_safe(v, f"{key}.{k}", where) for k, v in value.items()}
    raise ConfigError(
        f"{where}: {key} must be text, a number, true/false, a date, a list or a mapping, "
        f"got {type(value).__name__}"
    )


def load_case(path: str | Path) -> CaseSpec:
    """Read and validate CASE.yaml; raise ConfigError/InputError naming the file and key."""
    path = Path(path)
    where = str(path)
    data = read_yaml_mapping(path, "case file")  # a UTF-16 file or a tab: what to change, and where
    identity_keys(data, "", where)  # a patient id's own error (quote it; no name) before the schema's
    if data.get("id") is not None:
        case_id_of(data, path)  # the same advice for the case's own id, before the schema's
    raw = convert(data, CaseFile, where, WORDING)
    base = path.parent
    us = raw.ultrasound
    tract = None
    if raw.tract is not None:
        t = raw.tract
        tract = TractSpec(
            start=(float(t.start[0]), float(t.start[1])),
            end=(float(t.end[0]), float(t.end[1])),
            width_mm=float(t.width_mm),
        )
        if tract.start == tract.end:
            raise ConfigError(f"{where}: tract.start and tract.end are the same point")
    needle = _needle(raw.needle, where)
    if tract is None and needle is None:
        raise ConfigError(f"{where}: give 'needle' (points or auto) or an explicit 'tract'")
    # ids name files and folders of the dataset (images/<id>.png): one plain name each, never a path;
    # a folder's name stands in only when it could not be the patient's (cases/identity.py)
    case_id = safe_name(case_id_of(data, path), f"{where}: id")
    patient_id, _ = patient_of(data, case_id, where)
    return CaseSpec(
        path=path,
        id=case_id,
        patient_id=patient_id,
        image=_file(base, us.image, f"{where}: ultrasound.image"),
        mm_per_pixel=_scale(us.mm_per_pixel),
        frame=us.frame,
        needle=needle,
        tract=tract,
        pathology=_pathology(raw.pathology, base, where, "tip_end" in dict(data.get("pathology") or {})),
        source=_json_safe(dict(raw.source or {}), "source", where),
        capture=dict(raw.capture or {}),
        dataset_image=None
        if us.dataset_image is None
        else _file(base, us.dataset_image, f"{where}: ultrasound.dataset_image"),
        dataset_frame=us.dataset_frame,
    )
