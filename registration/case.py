"""case.yaml: schema, defaults and validation for one biopsy case.

Input: a case.yaml path. Output: a validated ``CaseSpec`` whose file paths are absolute
(relative paths are resolved against the folder holding case.yaml). Every problem raises
``ConfigError``/``InputError`` naming the file and the key, so a research team can fix its
own cases without reading code.

The full example with every key is ``CASE_EXAMPLE`` (case_example.py; ``sonomap register --example``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.safe_names import safe_name
from edge_runtime.yamlfile import read_yaml_mapping
from registration.case_example import CASE_EXAMPLE  # noqa: F401  (re-exported: `sonomap register --example`)
from registration.cases.identity import patient_of

DEFAULT_CANCER_CLASSES = (
    "Tumor",
    "Tumour",
    "Cancer",
    "Carcinoma",
    "Invasive carcinoma",
    "DCIS",
    "Malignant",
    "_0",
    "_1",
)
DEFAULT_IGNORE_CLASSES = (
    "Stroma",
    "Other",
    "Normal",
    "Benign",
    "Necrosis",
    "Immune cells",
    "Region*",
    "Ignore*",
    "Tissue",
    "Fat",
)
DEFAULT_EXCLUDE_CLASSES = ("_2", "Exclusion", "Exclude")
TIP_ENDS = ("left", "right", "top", "bottom")
TOP_KEYS = {
    "id",
    "patient_id",
    "source",
    "ultrasound",
    "needle",
    "tract",
    "pathology",
    "notes",
    "capture",
}  # capture: provenance written by `sonomap live/replay --cases` (not used here)
US_KEYS = {"image", "mm_per_pixel", "frame", "dataset_image", "dataset_frame"}
NEEDLE_KEYS = {"tip", "shaft", "gauge", "notch_mm", "tip_offset_mm", "width_mm"}
TRACT_KEYS = {"start", "end", "width_mm"}
PATH_KEYS = {
    "wsi",
    "roi",
    "mpp",
    "annotations",
    "annotation_mpp",
    "cancer_classes",
    "ignore_classes",
    "exclude_classes",
    "tip_end",
    "shrinkage",
    "fresh_length_mm",
    "flip_across",
    "reader",
    "fragments",
    "patient_id",  # the pseudonymous patient id the lab enters (registration/cases/identity.py)
}
SLIDE_READERS = ("auto", "tifffile", "openslide")
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


def _section(d: dict, key: str, allowed: set, where: str, required: bool = True) -> dict | None:
    val = d.get(key)
    if val is None:
        if required:
            raise ConfigError(f"{where}: missing key '{key}'")
        return None
    if not isinstance(val, dict):
        raise ConfigError(f"{where}: '{key}' must be a mapping, got {type(val).__name__}")
    unknown = set(val) - allowed
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(unknown)} in '{key}' (allowed: {sorted(allowed)})"
        )
    return val


def _point(val, where: str) -> tuple[float, float]:
    if (
        not isinstance(val, (list, tuple))
        or len(val) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in val)
    ):
        raise ConfigError(f"{where}: expected a pixel point [x, y], got {val!r}")
    return float(val[0]), float(val[1])


def _positive(val, where: str, allow_none: bool = True) -> float | None:
    if val is None and allow_none:
        return None
    if not isinstance(val, (int, float)) or isinstance(val, bool) or not val > 0:
        raise ConfigError(f"{where}: expected a positive number, got {val!r}")
    return float(val)


def _scale(val, where: str) -> tuple[float, float] | None:
    if val is None:
        return None
    if isinstance(val, (list, tuple)):
        if len(val) != 2:
            raise ConfigError(f"{where}: expected a number or [x, y], got {val!r}")
        return _positive(val[0], where), _positive(val[1], where)
    v = _positive(val, where)
    return v, v


def _names(val, default: tuple[str, ...], where: str) -> tuple[str, ...]:
    if val is None:
        return default
    if isinstance(val, str):
        val = [val]
    if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
        raise ConfigError(f"{where}: expected a list of class names, got {val!r}")
    return tuple(val)


def _file(base: Path, val, where: str) -> Path:
    if not isinstance(val, str) or not val:
        raise ConfigError(f"{where}: expected a file path, got {val!r}")
    p = Path(val)
    p = p if p.is_absolute() else base / p
    try:
        found = p.is_file()
    except (OSError, ValueError) as exc:  # e.g. a name longer than the file system allows
        raise InputError(f"{where}: not a usable file path ({exc.strerror or exc})") from exc
    if not found:
        raise InputError(f"{where}: file not found: {p}")
    return p


def _needle(val, where: str) -> NeedleSpec | None:
    if val is None:
        return None
    if val == "auto":
        return NeedleSpec(tip=None, shaft=None)
    if not isinstance(val, dict):
        raise ConfigError(f"{where}: 'needle' must be 'auto' or a mapping")
    unknown = set(val) - NEEDLE_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(unknown)} in 'needle' (allowed: {sorted(NEEDLE_KEYS)})"
        )
    gauge = val.get("gauge", 14)
    if not isinstance(gauge, int) or isinstance(gauge, bool):
        raise ConfigError(f"{where}: needle.gauge must be an integer, got {gauge!r}")
    tip = val.get("tip", "auto")
    if tip == "auto":
        tip_pt, shaft_pt = None, None
    else:
        tip_pt = _point(tip, f"{where}: needle.tip")
        if "shaft" not in val:
            raise ConfigError(f"{where}: needle.shaft is required with an explicit needle.tip")
        shaft_pt = _point(val["shaft"], f"{where}: needle.shaft")
        if tip_pt == shaft_pt:
            raise ConfigError(f"{where}: needle.tip and needle.shaft are the same point")
    return NeedleSpec(
        tip=tip_pt,
        shaft=shaft_pt,
        gauge=gauge,
        notch_mm=_positive(val.get("notch_mm"), f"{where}: needle.notch_mm"),
        tip_offset_mm=_tip_offset(val.get("tip_offset_mm"), where),
        width_mm=_positive(val.get("width_mm"), f"{where}: needle.width_mm"),
    )


def _tip_offset(val, where: str) -> float | None:
    if val is None:
        return None
    if not isinstance(val, (int, float)) or isinstance(val, bool) or val < 0:
        raise ConfigError(f"{where}: needle.tip_offset_mm must be a number >= 0, got {val!r}")
    return float(val)


def _roi(val, where: str) -> tuple[float, float, float, float] | None:
    if val is None:
        return None
    if (
        not isinstance(val, list)
        or len(val) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in val)
        or not (val[2] > val[0] and val[3] > val[1])
    ):
        raise ConfigError(
            f"{where}: expected [x0, y0, x1, y1] in level-0 pixels with x1 > x0, y1 > y0, got {val!r}"
        )
    return tuple(float(v) for v in val)


def _count(val, where: str) -> int | None:
    if val is None:
        return None
    if isinstance(val, bool) or not isinstance(val, int) or val < 1:
        raise ConfigError(f"{where} must be a whole number >= 1, got {val!r}")
    return val


def _pathology(p: dict, base: Path, where: str) -> PathologySpec:
    for key in ("wsi", "annotations"):
        if key not in p:
            raise ConfigError(f"{where}: missing key 'pathology.{key}'")
    tip_end = p.get("tip_end", "left")
    if tip_end not in TIP_ENDS:
        raise ConfigError(f"{where}: pathology.tip_end must be one of {TIP_ENDS}, got {tip_end!r}")
    shrink = _positive(p.get("shrinkage"), f"{where}: pathology.shrinkage")
    if shrink is not None and not MIN_SHRINKAGE <= shrink <= MAX_SHRINKAGE:
        raise ConfigError(
            f"{where}: pathology.shrinkage={shrink} is implausible "
            f"(expected slide/fresh length in [{MIN_SHRINKAGE}, {MAX_SHRINKAGE}])"
        )
    fresh = _positive(p.get("fresh_length_mm"), f"{where}: pathology.fresh_length_mm")
    if shrink is not None and fresh is not None:
        raise ConfigError(f"{where}: give pathology.shrinkage or pathology.fresh_length_mm, not both")
    reader = p.get("reader", "auto")
    if reader not in SLIDE_READERS:
        raise ConfigError(f"{where}: pathology.reader must be one of {SLIDE_READERS}, got {reader!r}")
    flip = p.get("flip_across", False)
    if not isinstance(flip, bool):
        raise ConfigError(f"{where}: pathology.flip_across must be true or false")
    return PathologySpec(
        wsi=_file(base, p["wsi"], f"{where}: pathology.wsi"),
        annotations=_file(base, p["annotations"], f"{where}: pathology.annotations"),
        mpp=_positive(p.get("mpp"), f"{where}: pathology.mpp"),
        annotation_mpp=_positive(p.get("annotation_mpp"), f"{where}: pathology.annotation_mpp"),
        cancer_classes=_names(
            p.get("cancer_classes"), DEFAULT_CANCER_CLASSES, f"{where}: pathology.cancer_classes"
        ),
        ignore_classes=_names(
            p.get("ignore_classes"), DEFAULT_IGNORE_CLASSES, f"{where}: pathology.ignore_classes"
        ),
        exclude_classes=_names(
            p.get("exclude_classes"), DEFAULT_EXCLUDE_CLASSES, f"{where}: pathology.exclude_classes"
        ),
        tip_end=tip_end,
        shrinkage=shrink,
        fresh_length_mm=fresh,
        flip_across=flip,
        roi=_roi(p.get("roi"), f"{where}: pathology.roi"),
        reader=reader,
        fragments=_count(p.get("fragments"), f"{where}: pathology.fragments"),
    )


def load_case(path: str | Path) -> CaseSpec:
    """Read and validate CASE.yaml; raise ConfigError/InputError naming the file and key."""
    path = Path(path)
    raw = read_yaml_mapping(path, "case file")
    where = str(path)
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: {sorted(TOP_KEYS)})")
    base = path.parent
    us = _section(raw, "ultrasound", US_KEYS, where)
    if "image" not in us:
        raise ConfigError(f"{where}: missing key 'ultrasound.image'")
    frame, dframe = us.get("frame", 0), us.get("dataset_frame", 0)
    for key, val in (("frame", frame), ("dataset_frame", dframe)):
        if not isinstance(val, int) or isinstance(val, bool) or val < 0:
            raise ConfigError(f"{where}: ultrasound.{key} must be an integer >= 0, got {val!r}")
    dimage = us.get("dataset_image")
    tract_raw = _section(raw, "tract", TRACT_KEYS, where, required=False)
    tract = None
    if tract_raw is not None:
        for key in ("start", "end", "width_mm"):
            if key not in tract_raw:
                raise ConfigError(f"{where}: missing key 'tract.{key}'")
        tract = TractSpec(
            start=_point(tract_raw["start"], f"{where}: tract.start"),
            end=_point(tract_raw["end"], f"{where}: tract.end"),
            width_mm=_positive(tract_raw["width_mm"], f"{where}: tract.width_mm", False),
        )
        if tract.start == tract.end:
            raise ConfigError(f"{where}: tract.start and tract.end are the same point")
    needle = _needle(raw.get("needle"), where)
    if tract is None and needle is None:
        raise ConfigError(f"{where}: give 'needle' (points or auto) or an explicit 'tract'")
    path_raw = _section(raw, "pathology", PATH_KEYS, where)
    # ids name files and folders of the dataset (images/<id>.png): one plain name each, never a path
    case_id = safe_name(raw["id"] if raw.get("id") is not None else base.resolve().name, f"{where}: id")
    patient_id, _ = patient_of(raw, case_id, where)
    source, capture = raw.get("source") or {}, raw.get("capture") or {}
    for key, val in (("source", source), ("capture", capture)):
        if not isinstance(val, dict):
            raise ConfigError(f"{where}: '{key}' must be a mapping, got {type(val).__name__}")
    return CaseSpec(
        path=path,
        id=case_id,
        patient_id=patient_id,
        image=_file(base, us["image"], f"{where}: ultrasound.image"),
        mm_per_pixel=_scale(us.get("mm_per_pixel"), f"{where}: ultrasound.mm_per_pixel"),
        frame=frame,
        needle=needle,
        tract=tract,
        pathology=_pathology(path_raw, base, where),
        source=dict(source),
        capture=dict(capture),
        dataset_image=None if dimage is None else _file(base, dimage, f"{where}: ultrasound.dataset_image"),
        dataset_frame=dframe,
    )
