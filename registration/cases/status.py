"""What a case folder still lacks before registration can run, read from case.yaml alone.

Input: a ``case.yaml`` path (a captured biopsy, docs/biopsy-capture.md, or any other case).
Output: a :class:`CaseStatus`:

- ``pending``: something registration needs is not there yet (the slide, the annotation, the
  ultrasound scale, or a file the lab named but has not copied in). These are the cases waiting
  for pathology; they are listed, never counted as failures.
- ``complete``: nothing required is missing and registration's loader accepts the case.
- ``broken``: the case is wrong (case.yaml unreadable or refused, a bad key or value, a file
  name the file system cannot look up, or a path no file will mend: a Windows path, a ``~``,
  registration/case_paths.py); ``error`` is the one-line message, naming case.yaml and the key,
  never the name of a file it names. A key case.yaml does not have (``anotations:``) is looked for
  first: the key it was meant to be would otherwise read as missing, and the case wait for good.

``lacks`` also names what is recommended but not required: without ``pathology.shrinkage`` or
``fresh_length_mm`` registration assumes no tissue was lost and warns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge_runtime.biopsy.study_id import case_id_of
from edge_runtime.errors import ConfigError, InputError, SonomapError
from edge_runtime.manifest import SHA_SHOWN
from edge_runtime.typed_config import struct_in
from edge_runtime.typed_struct import fields
from edge_runtime.yamlfile import read_yaml_mapping
from registration.case import WORDING, CaseSpec, load_case
from registration.case_paths import path_slip
from registration.case_schema import CaseFile
from registration.cases.identity import patient_of

PENDING, COMPLETE, BROKEN = "pending", "complete", "broken"
CASE_FILE = "case.yaml"
SCALED_FORMATS = (".dcm", ".dicom")  # DICOM carries its own pixel spacing


@dataclass
class Lack:
    what: str  # e.g. "slide (pathology.wsi)"
    required: bool = True

    def __str__(self) -> str:
        return self.what if self.required else f"{self.what} (optional)"


@dataclass
class CaseStatus:
    case_yaml: Path
    id: str
    state: str
    lacks: list[Lack] = field(default_factory=list)
    error: str | None = None
    patient_id: str | None = None
    patient_source: str | None = None
    model: str | None = None  # capture.model sha256, short: the model version that saw the biopsy
    spec: CaseSpec | None = None  # the loaded case, when complete

    @property
    def missing_required(self) -> list[Lack]:
        return [x for x in self.lacks if x.required]


def _file_lack(base: Path, value, key: str, what: str) -> Lack | None:
    """The Lack of the file ``value`` (case.yaml key ``key``, relative to ``base``) names, or None
    when it is there (or not text, or a folder: the loader names those). InputError naming the case
    file and the key when the file system cannot even look the name up (longer than it allows, a
    folder that cannot be searched): a probe of a name the lab typed must not end the whole listing.
    ConfigError naming them when the value is a slip no file will ever mend (case_paths.path_slip)."""
    if value is None or value == "":
        return Lack(f"{what} ({key})")
    if not isinstance(value, str):
        return None  # of a wrong type: the loader names that
    try:
        # absolute paths pass through the join; a folder is no file to wait for: the loader names it
        present = (base / value).is_file() or (base / value).is_dir()
    except OSError as exc:
        # the reason only (strerror), never str(exc): that carries the file name
        raise InputError(
            f"{base / CASE_FILE}: {key}: the file it names cannot be looked up "
            f"({exc.strerror or type(exc).__name__})"
        ) from exc
    if not present:
        slip = path_slip(value, base)  # a Windows path, a '~', a stray space: it will never arrive
        if slip is not None:
            raise ConfigError(f"{base / CASE_FILE}: {key} {slip}")
        # named by its key, not its file name: the lab's file names often carry the patient's name,
        # and this text goes to batch_report.json, the log and stdout
        return Lack(f"{what} file ({key}) not in the folder yet")
    return None


def unknown_keys(
    raw: dict, cls: type = CaseFile, section: str = ""
) -> list[tuple[str, list[str], list[str]]]:
    """(section, its unknown keys, its allowed keys) for ``raw`` (a case.yaml mapping, checked against
    struct ``cls``) and each section in it with a key the struct does not have: all of them, where the
    loader names the first it meets."""
    types = {f.name: f.type for f in fields(cls)}
    found = []
    unknown = [str(key) for key in raw if key not in types]
    if unknown:
        found.append((section, unknown, sorted(types)))
    for key, value in raw.items():
        inner = struct_in(types[key]) if key in types else None
        if isinstance(value, dict) and inner is not None:
            found += unknown_keys(value, inner, f"{section}.{key}" if section else key)
    return found


def lacks_of(raw: dict, base: Path) -> list[Lack]:
    """What ``raw`` (a case.yaml mapping in folder ``base``) lacks; empty when nothing. ConfigError
    naming every key case.yaml does not have (a misspelt ``anotations:`` is no annotation to wait
    for), InputError naming the key when a file it names cannot be looked up (:func:`_file_lack`)."""
    unknown = unknown_keys(raw)
    if unknown:
        raise ConfigError("; ".join(WORDING.unknown_keys(str(base / CASE_FILE), *u) for u in unknown))
    for section in ("pathology", "ultrasound"):  # `pathology: 5` is no section to wait for either
        if raw.get(section) is not None and not isinstance(raw[section], dict):
            raise ConfigError(WORDING.not_mapping(str(base / CASE_FILE), section, raw[section]))
    out: list[Lack] = []
    path = raw.get("pathology")
    if not isinstance(path, dict):
        path = {}
        out.append(Lack("pathology section (pathology:)"))
    for key, what in (("wsi", "slide"), ("annotations", "annotation")):
        lack = _file_lack(base, path.get(key), f"pathology.{key}", what)
        if lack is not None:
            out.append(lack)
    us = raw.get("ultrasound") if isinstance(raw.get("ultrasound"), dict) else {}
    image = us.get("image")
    if image is None:
        out.append(Lack("ultrasound image (ultrasound.image)"))
    else:
        lack = _file_lack(base, image, "ultrasound.image", "ultrasound image")
        if lack is not None:
            out.append(lack)
        if us.get("mm_per_pixel") is None and Path(str(image)).suffix.lower() not in SCALED_FORMATS:
            out.append(Lack("ultrasound scale (ultrasound.mm_per_pixel)"))
    if raw.get("needle") is None and raw.get("tract") is None:
        out.append(Lack("needle or tract (needle: auto, or tip/shaft points)"))
    if path.get("shrinkage") is None and path.get("fresh_length_mm") is None:
        out.append(Lack("shrinkage (pathology.shrinkage or fresh_length_mm)", required=False))
    return out


def inspect_case(case_yaml: str | Path) -> CaseStatus:
    """The status of one case.yaml (module docstring); never raises for a bad case."""
    case_yaml = Path(case_yaml)
    try:
        raw = read_yaml_mapping(case_yaml, "case file")
    except SonomapError as exc:
        return CaseStatus(case_yaml, case_yaml.parent.name, BROKEN, error=str(exc))
    try:  # a folder name that could be the patient's is no id: register refuses it, so say so here
        case_id = case_id_of(raw, case_yaml)
    except SonomapError as exc:
        return CaseStatus(case_yaml, case_yaml.parent.name, BROKEN, error=str(exc))
    capture = raw.get("capture") if isinstance(raw.get("capture"), dict) else {}
    model = capture.get("model") if isinstance(capture.get("model"), dict) else {}
    status = CaseStatus(case_yaml, case_id, COMPLETE)
    status.model = str(model["sha256"])[:SHA_SHOWN] if model.get("sha256") else None
    try:
        status.lacks = lacks_of(raw, case_yaml.parent)
        status.patient_id, status.patient_source = patient_of(raw, case_id, str(case_yaml))
    except SonomapError as exc:
        status.state, status.error = BROKEN, str(exc)
        return status
    if status.missing_required:
        status.state = PENDING
        return status
    try:
        status.spec = load_case(case_yaml)
        status.id = status.spec.id
    except SonomapError as exc:
        status.state, status.error = BROKEN, str(exc)
    except OSError as exc:  # an input file the loader opens fails: the reason only, never its name
        status.state = BROKEN
        status.error = (
            f"{case_yaml}: an input file it names cannot be read ({exc.strerror or type(exc).__name__})"
        )
    return status


def check_cases_folder(cases_dir: Path) -> None:
    """InputError naming ``cases_dir`` when it is not a folder: a file given there is said to be one
    (the user gave a case.yaml or an archive), not reported as a folder not found."""
    if cases_dir.exists() and not cases_dir.is_dir():
        raise InputError(
            f"{cases_dir}: is a file, not a cases folder; give the folder holding <case>/case.yaml"
        )
    if not cases_dir.is_dir():
        raise InputError(f"{cases_dir}: cases folder not found")


def find_case_files(cases_dir: Path) -> list[Path]:
    """Every case.yaml under ``cases_dir`` (any depth), sorted; folders whose name starts with a
    dot are skipped (a capture still being written is ``.<name>.<host>-<pid>.partial``)."""
    return sorted(
        p
        for p in Path(cases_dir).rglob(CASE_FILE)
        if not any(part.startswith(".") for part in p.relative_to(cases_dir).parts[:-1])
    )


def case_names(cases: list[Path]) -> dict[str, str]:
    """Each case.yaml's path (as found and absolute) -> its name in what register-batch writes and
    logs: ``case N of M``, its place in ``cases`` (:func:`find_case_files`' sorted order), never a
    path under the cases folder, whose folders are often named after the patient."""
    names = {}
    for i, case_yaml in enumerate(cases, 1):
        for form in (str(case_yaml), str(case_yaml.absolute())):
            names[form] = f"case {i} of {len(cases)}"
    return names
