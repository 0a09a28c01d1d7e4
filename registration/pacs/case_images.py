"""The images a captured case's ``case.yaml`` names, read for DICOM export: the pre-fire ROI and the
live prediction saved with it (``capture.prediction``: the class-id mask PNG and the 16-bit
probability PNG with its ``prob_scale``).

Input: the case folder and its ``case.yaml`` mappings. Output: the pixels, checked against what the
capture writes (inside the folder, single-channel, the right depth, probabilities within [0, 1]).
Every problem is an ``InputError`` naming the key and the file's base name only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.errors import InputError
from edge_runtime.image_files import UnreadableImage, read_image
from edge_runtime.prediction_pngs import MAX_CLASS, MAX_PROB_SCALE
from edge_runtime.typed_config import shown

MAX_FRAME = 2**31 - 1  # a frame index; the DICOM text quoting it is cut at 64 characters, a number never


@dataclass(frozen=True)
class Prediction:
    mask: np.ndarray  # bool (rows, cols): the cancer class of the saved class-id mask
    probability: np.ndarray  # float32 (rows, cols) in [0, 1]
    frame: int


def inside_case(folder: Path, name: str, key: str) -> Path:
    """``folder / name`` when ``name`` is a relative path that stays inside ``folder`` (links
    resolved), as the capture writes it. Anything else could be any image on the machine (a whole
    screen with a name burnt in) exported as the case's ROI; the error names the key only."""
    path = folder / name
    try:
        inside = not Path(name).is_absolute() and path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL in the name: not the capture's either
        inside = False
    if not inside:
        raise InputError(
            f"{key}: expected a file inside the case folder, as the capture writes it (e.g. prefire.png)"
        )
    return path


def case_png(folder: Path, name: str, key: str, dtype) -> np.ndarray:
    """The image case.yaml's ``key`` names (``name``, relative to ``folder`` and inside it). Errors
    name the key and the file's base name only: the value may run through folders named after the patient."""
    path = inside_case(folder, name, key)
    try:
        image = read_image(path, cv2.IMREAD_UNCHANGED)  # any path, not only UTF-8 ones
    except UnreadableImage as exc:
        raise InputError(f"{key}: {Path(name).name}: unreadable image ({exc.reason})") from exc
    if image.dtype != dtype or image.ndim != 2:
        raise InputError(
            f"{key}: {Path(name).name}: expected a single-channel {np.dtype(dtype).name} image, "
            f"got {image.dtype} {image.shape}"
        )
    return image


def case_key(mapping: dict, key: str, where: str, kind):
    """``mapping[key]`` when it is a ``kind`` (never a bool for int); else InputError naming ``where.key``."""
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        # shown() cuts the value: a long or deeply nested one would make a line of megabytes
        raise InputError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {shown(value)}")
    return value


def read_prediction(folder: Path, pred: dict, shape: tuple[int, int], where: str) -> Prediction:
    """``capture.prediction`` (``pred``, at ``where``) read: the mask's cancer class and the
    probabilities, both of the pre-fire image's ``shape``."""
    mask = case_png(folder, case_key(pred, "mask", where, str), f"{where}.mask", np.uint8)
    prob = case_png(folder, case_key(pred, "prob", where, str), f"{where}.prob", np.uint16)
    scale = case_key(pred, "prob_scale", where, int)
    # the probability PNG holds round(p * prob_scale) in 16 bits: 0 would divide by zero, a scale
    # above the PNG's range could never show p = 1, and a value above the scale would be p > 1
    if not 1 <= scale <= MAX_PROB_SCALE:
        raise InputError(
            f"{where}.prob_scale: expected an integer in [1, {MAX_PROB_SCALE}], got {shown(scale)}"
        )
    if int(prob.max(initial=0)) > scale:
        raise InputError(
            f"{where}.prob: {Path(pred['prob']).name} holds {int(prob.max())}, above prob_scale {scale} "
            "(a probability above 1)"
        )
    cancer = case_key(pred, "cancer_class", where, int)
    if not 0 <= cancer <= MAX_CLASS:  # the mask PNG is 8-bit: any other class marks no pixel, a blank SEG
        raise InputError(
            f"{where}.cancer_class: expected an integer in [0, {MAX_CLASS}], got {shown(cancer)}"
        )
    for name, image in (("mask", mask), ("prob", prob)):
        if image.shape != shape:
            raise InputError(
                f"{where}.{name}: {Path(pred[name]).name}: {image.shape} does not match the pre-fire "
                f"image's {shape}"
            )
    return Prediction(mask == cancer, prob.astype(np.float32) / scale, frame_index(pred, where))


def frame_index(mapping: dict, where: str) -> int:
    """``mapping["frame"]`` (``where``: its section), a frame index in [0, MAX_FRAME], as the capture
    writes it; else InputError naming the key (the DICOM description quoting a longer one would cut it)."""
    frame = case_key(mapping, "frame", where, int)
    if not 0 <= frame <= MAX_FRAME:
        raise InputError(f"{where}.frame: expected an integer in [0, {MAX_FRAME}], got {shown(frame)}")
    return frame
