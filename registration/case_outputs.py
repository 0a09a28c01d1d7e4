"""The output folder of one registered case (OUT): what goes in it, and the refusal to let it replace an input.

Files in OUT: us.png (the 8-bit gray ultrasound frame the label belongs to: ultrasound.dataset_image/
dataset_frame when given, e.g. the pre-fire frame, else the registered frame; for DICOM the decoded
frame), label.png (ultrasound size; 0 tissue, 1 cancer, 255 unknown), qa.png, and report.json,
written last: its presence means the case is complete. report.json records the input files by
content (SHA-256 and size), never by path or name (report.py). Every file is written atomically
(report.py). An OUT where one of these files would be an input of the case (us.png beside case.yaml,
``--out`` the case's own folder), or that holds any case.yaml (another case's folder), is refused
before anything is read or written.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np

from edge_runtime.atomic import atomic_path, png_bytes, same_file
from edge_runtime.errors import InputError
from edge_runtime.stop_signals import signals_held
from registration.case import CaseSpec
from registration.report import input_file, report_text, without_input_paths
from registration.ultrasound import UltrasoundImage, is_dicom, load_ultrasound

OUTPUT_FILES = ("us.png", "label.png", "qa.png", "report.json")  # what register_case writes in OUT


def input_keys(spec: CaseSpec) -> dict[str, str]:
    """Each input file's path -> the case.yaml key that names it (what report.json says instead)."""
    keys = {
        str(spec.path): "case.yaml",
        str(spec.image): "ultrasound.image",
        str(spec.pathology.wsi): "pathology.wsi",
        str(spec.pathology.annotations): "pathology.annotations",
    }
    if spec.dataset_image is not None:
        keys[str(spec.dataset_image)] = "ultrasound.dataset_image"
    return keys


def refuse_overwriting_inputs(spec: CaseSpec, out: Path) -> None:
    """InputError naming ``out`` when it cannot be the output folder (a file is there, or a folder,
    device or FIFO where one of its files goes), or naming it and the case.yaml key when an output
    file would replace an input. Checked before the
    registration runs, so a wrong --out costs no minutes of work."""
    for folder in (out, *out.parents):
        if folder.exists() and not folder.is_dir():
            raise InputError(f"--out {out}: {folder} is a file, not a folder")
    for name in OUTPUT_FILES:  # found while writing, this would come after the first files were replaced
        target = out / name
        if target.exists() and not target.is_file():
            kind = "a folder" if target.is_dir() else "a device, pipe or socket"
            raise InputError(
                f"--out {out}: {name} is {kind}, not a file; remove it or choose another output folder"
            )
    for path, key in input_keys(spec).items():
        for name in OUTPUT_FILES:
            if same_file(out / name, path):
                raise InputError(
                    f"--out {out}: {name} would overwrite the case's input {key}; choose another output folder"
                )
    if (
        out / "case.yaml"
    ).is_file():  # another case's folder (its own is named above): its us.png is that case's input
        raise InputError(
            f"--out {out}: holds a case.yaml, so it is a case's folder whose files are inputs "
            "(its us.png would be replaced); choose another output folder"
        )


def ultrasound_file(path: Path) -> dict:
    """report.json's record of an ultrasound input: its format and content digest (report.py)."""
    return {"format": "dicom" if is_dicom(path) else "raster", **input_file(path)}


def dataset_frame(spec: CaseSpec, us: UltrasoundImage) -> np.ndarray:
    """The image the label belongs to in the dataset: ultrasound.dataset_image/dataset_frame
    (e.g. the pre-fire frame, anatomy not hidden by the needle echo) or the registered frame.
    InputError naming case.yaml when that image's size differs from the registered one."""
    if spec.dataset_image is None and spec.dataset_frame == 0:
        return us.gray
    path = spec.dataset_image or spec.image
    other = load_ultrasound(path, us.mm_per_px, spec.dataset_frame, [], "ultrasound.dataset_frame")
    if other.shape != us.shape:
        raise InputError(
            f"{spec.path}: ultrasound.dataset_image {path} is {other.shape[1]}x{other.shape[0]} but "
            f"the registered image is {us.shape[1]}x{us.shape[0]}"
        )
    return other.gray


def write_outputs(
    out: Path, spec: CaseSpec, us: UltrasoundImage, label: np.ndarray, qa: np.ndarray, report: dict
) -> dict:
    """Write OUT/us.png (:func:`dataset_frame`), label.png, qa.png and, last, report.json with every
    input path in it replaced by the case.yaml key naming it; return that report.

    The four are written as one set: each under a hidden name first, and only once all are whole are
    they renamed into place, report.json last. A failure before that (an input, the disk full, an
    interrupt) leaves an earlier run's outputs as they were, byte for byte; the earlier report.json
    is removed just before the renames, since report.json marks the case complete and an old one
    beside new images would pass a half-renamed case off as done. SIGINT and SIGTERM are held from
    that removal to the last rename (edge_runtime/stop_signals.py): a stop then acts once the new set
    is whole, never between two renames."""
    report = without_input_paths(report, input_keys(spec))  # e.g. a warning that names the slide file
    files = {"report.json": report_text(report, f"{spec.path}: report.json").encode()}
    images = {"us.png": dataset_frame(spec, us), "label.png": label, "qa.png": qa}
    files.update({name: png_bytes(out / name, image) for name, image in images.items()})
    # held is left after renames (the renames run as renames' blocks end: report.json, entered first,
    # last), so the signals wait from the old report's removal to the last rename, not while writing
    with ExitStack() as held, ExitStack() as renames:
        staged = {name: renames.enter_context(atomic_path(out / name)) for name in files}
        for name, data in files.items():
            staged[name].write_bytes(data)
        held.enter_context(signals_held())
        (out / "report.json").unlink(missing_ok=True)
    return report
