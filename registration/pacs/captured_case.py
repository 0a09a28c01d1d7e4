"""A captured biopsy case folder (written by ``sonomap live/replay --cases``) read for DICOM export.

Input: ``DIR/<id>/`` (at any depth under DIR) holding ``case.yaml`` (its ``capture:`` section), ``prefire.png`` and, when the
live prediction was saved, ``prefire_mask.png`` and ``prefire_prob.png`` (layout:
docs/biopsy-capture.md). Output: a :class:`CapturedCase` with the pixels and the provenance the DICOM
objects carry (the images it names are read and checked by :mod:`registration.pacs.case_images`).
Every problem is an ``InputError`` naming the file and key. Registration's own loader
is not used: it refuses a case whose pathology is still pending, and export happens before that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.typed_config import finite, shown
from edge_runtime.yamlfile import read_yaml_mapping
from registration.cases.status import find_case_files
from registration.pacs.case_images import Prediction, case_key, case_png, frame_index, read_prediction

CASE_FILE = "case.yaml"
FIRST_NUMBER = 1  # capture numbers count from 1 (the DICOM series number is the capture number)
# DICOM IS (Series Number) holds < 2**31, and the segmentation's series adds 1000 to the number:
# no run captures anywhere near this many
MAX_NUMBER = 2**30
XY = 2  # ultrasound.mm_per_pixel as [x, y]
MAX_DICOM_SIDE = int(np.iinfo(np.uint16).max)  # Rows and Columns are US (unsigned 16-bit) in DICOM
# The id the capture gives a case (edge_runtime/biopsy/case_writer.py): the post-fire frame's UTC time
# and the capture number, then -2, -3 ... when another session took that name. The export files and
# labels a case by this id only, never by its folder's name: a folder may be copied or renamed (after
# the patient, even), its case.yaml id stays what the capture wrote.
CAPTURE_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9]+(?:-[0-9]+)?")
ID_RULE = "<UTC time>-<capture number> as the capture writes it, e.g. 20261130T055254Z-1"
UTC_RULE = "an ISO time with its offset from UTC, as the capture writes it, e.g. 2026-11-30T03:45:35.495Z"
# What the capture writes as capture.trigger (edge_runtime/biopsy/observer.py, marks.py): it goes into
# SeriesDescription, so nothing else (a name typed into the file by hand) is exported
TRIGGERS = ("fire", "key", "http", "signal")
TRIGGER = re.compile("|".join(TRIGGERS))
# capture.model.name is the model manifest's name (sonomap-cpu-fast-unet) and goes into
# ManufacturerModelName and the algorithm name: a name of this form, LO's 64 characters at most, is
# kept as it is; anything else in it was not written by the capture
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MODEL_NAME_RULE = "letters, digits, '.', '_' and '-', at most 64, as in the model's manifest"
SHA256 = re.compile(r"[0-9a-fA-F]{64}")  # the model file's hash, into AlgorithmVersion
ROI_KEYS = 4  # capture.roi: [x, y, w, h] in source pixels; prefire.png is that crop


@dataclass(frozen=True)
class CapturedCase:
    folder: Path
    case_id: str  # case.yaml's id, <UTC time>-<n> (CAPTURE_ID)
    number: int  # capture number within its run
    trigger: str  # fire | key | http | signal
    study_id: str | None  # capture.study_id as entered at session start; None when none was entered
    prefire: np.ndarray  # uint8 gray ROI
    prefire_frame: int
    prefire_utc: datetime  # aware, in UTC: case.yaml's time converted from its own offset
    mm_per_pixel: tuple[float, float] | None  # (x, y): across and down the image
    model_name: str
    model_sha256: str
    prediction: Prediction | None


def case_folders(cases_dir: str | Path) -> list[Path]:
    """The case folders under ``cases_dir``, at any depth, in name (time) order.

    Found as every other step finds them (registration.cases.status.find_case_files): the biopsy
    loop keeps one folder per procedure, CASES/<patient>/<case>/, and a capture still being written
    (``.<name>.<host>-<pid>.partial``) is skipped. InputError when ``cases_dir`` is not a folder, holds
    no case, or holds two cases whose case.yaml gives one id (a backup copy of a case folder: both
    would be exported as two cores, the second written over the first), naming both case.yaml files.
    """
    root = Path(cases_dir)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder of captured cases")
    folders = sorted((p.parent for p in find_case_files(root)), key=lambda p: (p.name, str(p)))
    if not folders:
        raise InputError(f"{root}: no captured case (*/{CASE_FILE}) found")
    seen: dict[str, Path] = {}
    for folder in folders:
        case_id = _raw_id(folder / CASE_FILE)
        if case_id is None:
            continue  # that case fails on its own turn, with read_case's error
        if case_id in seen:
            raise InputError(
                f"{seen[case_id] / CASE_FILE} and {folder / CASE_FILE}: two cases with id {case_id!r} "
                "(a copy of one case folder?); keep one of them, nothing was exported"
            )
        seen[case_id] = folder
    return folders


def _raw_id(path: Path) -> str | None:
    """case.yaml's id when the file loads and the id is a capture id, else None (read_case then
    refuses the case with the reason)."""
    try:
        value = read_yaml_mapping(path, "captured case").get("id")
    except (ConfigError, OSError):
        return None
    return value if isinstance(value, str) and CAPTURE_ID.fullmatch(value) else None


def capture_id_of(doc: dict, path: Path) -> str:
    """The case's id from its case.yaml mapping ``doc``; InputError naming the file and key when it
    is not a capture id. The value is not repeated: it may be anything typed by hand, a name too."""
    value = doc.get("id")
    if not isinstance(value, str) or CAPTURE_ID.fullmatch(value) is None:
        raise InputError(f"{path}: id: not a capture id ({ID_RULE}); the export files a case under its id")
    return value


def utc_of(value: str, key: str) -> datetime:
    """``value`` (case.yaml's ``key``) as an aware time in UTC. A time with another offset is converted
    (its UTC date decides the study); a time without one is refused: it could be the cart's local
    time or UTC, and a wrong guess files the core under another day's study. The value is not
    repeated in an error: it is typed by hand when it is wrong, and may be anything, a name too."""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"{key}: not an ISO time; expected {UTC_RULE}") from exc
    if when.utcoffset() is None:
        raise InputError(f"{key}: no offset from UTC; expected {UTC_RULE}")
    try:  # 0001-01-01T00:00+05:00 falls in year 0 in UTC, 9999-12-31T23:00-05:00 in year 10000
        return when.astimezone(timezone.utc)
    except OverflowError as exc:
        raise InputError(f"{key}: outside the years 1-9999 once in UTC; expected {UTC_RULE}") from exc


def _chosen(value: str, pattern, key: str, rule: str) -> str:
    """``value`` when ``pattern`` matches it whole; else InputError naming ``key`` and the ``rule``,
    without the value (text typed into case.yaml by hand, a patient's name perhaps)."""
    if pattern.fullmatch(value) is None:
        raise InputError(f"{key}: expected {rule}; the export puts it into DICOM text")
    return value


def _roi_size(cap: dict, where: str) -> tuple[int, int]:
    """(rows, cols) of ``capture.roi`` ([x, y, w, h]): the size of the pre-fire crop the capture wrote."""
    roi = cap.get("roi")
    if not (
        isinstance(roi, list)
        and len(roi) == ROI_KEYS
        and all(type(v) is int for v in roi)
        and min(roi[2:]) > 0
    ):
        raise InputError(
            f"{where}.roi: expected [x, y, w, h] (whole pixels, as the capture writes it), got {shown(roi)}"
        )
    if max(roi[2:]) > MAX_DICOM_SIDE:
        raise InputError(
            f"{where}.roi: {roi[2]} x {roi[3]} pixels; DICOM rows and columns hold at most {MAX_DICOM_SIDE}"
        )
    return roi[3], roi[2]


def _scale(value, path: Path) -> tuple[float, float] | None:
    """``ultrasound.mm_per_pixel`` as (x, y): the capture writes one positive number (or none), and
    case.yaml also takes ``[x, y]`` (registration reads both); anything else is an edit DICOM's
    PixelSpacing cannot carry."""
    if value is None:
        return None
    pair = value if isinstance(value, list) and len(value) == XY else [value, value]
    if not all(finite(v) and v > 0 for v in pair):
        raise InputError(
            f"{path}: ultrasound.mm_per_pixel: expected a finite number > 0 or [x, y] of them, got {shown(value)}"
        )
    return float(pair[0]), float(pair[1])


def read_case(folder: str | Path) -> CapturedCase:
    """The case in ``folder`` (see module docstring)."""
    folder = Path(folder)
    path = folder / CASE_FILE
    try:
        doc = read_yaml_mapping(path, "captured case")
    except ConfigError as exc:
        raise InputError(str(exc)) from exc
    where = f"{path}: capture"
    cap = doc.get("capture")
    if not isinstance(cap, dict):
        raise InputError(f"{path}: no 'capture' section (not a case written by --cases)")
    pre = case_key(cap, "pre_fire", where, dict)
    image = case_png(
        folder, case_key(pre, "image", f"{where}.pre_fire", str), f"{where}.pre_fire.image", np.uint8
    )
    rows, cols = _roi_size(cap, where)
    if image.shape != (rows, cols):  # not the ROI crop the capture wrote: a whole screen, another image
        raise InputError(
            f"{where}.pre_fire.image: {image.shape[1]} x {image.shape[0]} pixels, not capture.roi's "
            f"{cols} x {rows} (the capture writes the ROI only)"
        )
    when = utc_of(case_key(pre, "utc", f"{where}.pre_fire", str), f"{where}.pre_fire.utc")
    model = case_key(cap, "model", where, dict)
    us = doc.get("ultrasound")
    if us is not None and not isinstance(us, dict):  # a hand edit: `ultrasound: postfire.png`
        raise InputError(
            f"{path}: ultrasound: expected a section (image, mm_per_pixel, ...), got {shown(us)}"
        )
    scale = _scale((us or {}).get("mm_per_pixel"), path)
    pred = cap.get("prediction")
    study = cap.get("study_id")
    case_id = capture_id_of(doc, path)
    number = case_key(cap, "number", where, int)
    if not FIRST_NUMBER <= number <= MAX_NUMBER:
        raise InputError(
            f"{where}.number: expected an integer in [{FIRST_NUMBER}, {MAX_NUMBER}], got {shown(number)}"
        )
    return CapturedCase(
        folder=folder,
        case_id=case_id,
        number=number,
        trigger=_chosen(
            case_key(cap, "trigger", where, str), TRIGGER, f"{where}.trigger", f"one of {', '.join(TRIGGERS)}"
        ),
        study_id=None if study is None else str(study),
        prefire=image,
        prefire_frame=frame_index(pre, f"{where}.pre_fire"),
        prefire_utc=when,
        mm_per_pixel=scale,
        model_name=_chosen(
            case_key(model, "name", f"{where}.model", str), MODEL_NAME, f"{where}.model.name", MODEL_NAME_RULE
        ),
        model_sha256=_chosen(
            case_key(model, "sha256", f"{where}.model", str), SHA256, f"{where}.model.sha256", "64 hex digits"
        ),
        prediction=None
        if pred is None
        else read_prediction(folder, pred, image.shape, f"{where}.prediction"),
    )
