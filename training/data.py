"""Dataset layout reader and validator (the split itself: :mod:`edge_runtime.case_split`).

Layout (the contract between registration/prepare-busi and training)::

    DATASET/images/<id>.png   8-bit grayscale ultrasound image
    DATASET/labels/<id>.png   uint8, same size: 0 tissue without cancer, 1 cancer, 255 unknown (ignored)
    DATASET/cases.csv         columns id,case_id,split  (split: train|val|test; case_id = patient)

Every problem (missing column, unknown split, one case in two splits, empty split,
size mismatch, label value outside {0, 1, 255}, an image or label whose header declares more than
:data:`MAX_DATASET_PIXELS`) raises an error naming the file; cases.csv is read by
:func:`edge_runtime.case_split.read_cases_csv`, which names the line and column too.

The pixel limit: a small PNG may declare a huge size (a decompression bomb: a 30000x30000 PNG of zeros
is about 1 MB on disk and 900 MB decoded as gray, 2.7 GB as RGB), so every image and label is refused
from its PNG, JPEG or BMP header (:func:`edge_runtime.image_files.read_image`'s ``max_pixels``) before
it is decoded. The limit is generous, never a real dataset image's: BUSI images are about 500x600
(0.3 Mpx) and registered needle-tract images a few thousand px on a side at most (4000x3000 is
12 Mpx), while :data:`MAX_DATASET_PIXELS` (8192x8192, 67.1 Mpx, four times the runtime's largest
frame, :data:`edge_runtime.sources.frame_size.MAX_FRAME_PIXELS`) costs at most 67 MB as 8-bit gray.
A format whose header is not read (TIFF, WebP) is left to OpenCV's own limit (2^30 px).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.case_split import CASES_CSV, SPLITS, read_cases_csv
from edge_runtime.errors import InputError
from edge_runtime.image_files import ImageTooLarge, read_image

IGNORE_INDEX = 255
CANCER = 1
LABEL_VALUES = (0, CANCER, IGNORE_INDEX)
# The most pixels an image or label of the dataset may declare (module docstring: why this much)
MAX_DATASET_PIXELS = 8192 * 8192


@dataclass(frozen=True)
class Sample:
    id: str
    case_id: str
    split: str
    image: Path
    label: Path


def read_cases(root: str | Path) -> list[Sample]:
    """DATASET dir -> all samples listed in DATASET/cases.csv, in file order, each image and label
    file checked to exist; an empty DATASET, or a file given for it, is refused naming it. The rows are
    read and checked by edge_runtime.case_split.read_cases_csv, the one reader of cases.csv
    (register-batch and the concordance read it there too)."""
    if not str(root).strip():  # Path("") is the working folder: an unset variable is no dataset
        raise InputError(
            "the dataset folder is empty: give the folder holding cases.csv, images/ and labels/"
        )
    root = Path(root)
    if root.is_file():  # e.g. DATASET/cases.csv given for DATASET
        raise InputError(f"{root}: is a file; give the dataset folder holding cases.csv, images/ and labels/")
    csv_path = root / CASES_CSV
    samples = []
    for row in read_cases_csv(csv_path):
        sample = Sample(
            row.id,
            row.case_id,
            row.split,
            root / "images" / f"{row.id}.png",
            root / "labels" / f"{row.id}.png",
        )
        for path in (sample.image, sample.label):
            if not path.is_file():
                raise InputError(f"{path}: listed in {csv_path} (line {row.line}) but missing")
        samples.append(sample)
    return samples


def select_split(samples: list[Sample], split: str, root: str | Path = "") -> list[Sample]:
    """Samples of one split; an empty split is an error (naming the dataset's cases.csv)."""
    if split not in SPLITS:
        raise InputError(f"split {split!r} is not one of {SPLITS}")
    chosen = [s for s in samples if s.split == split]
    if not chosen:
        raise InputError(f"{Path(root) / CASES_CSV}: split {split!r} is empty")
    return chosen


def _decode(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """The image file at PATH, decoded with ``flags``; refused from its header, before decoding, when
    it declares more than :data:`MAX_DATASET_PIXELS` (one line naming the file, its size and the limit)."""
    try:
        return read_image(path, flags, max_pixels=MAX_DATASET_PIXELS)
    except ImageTooLarge as exc:
        raise InputError(
            f"{path}: declares {exc.width}x{exc.height} px ({exc.width * exc.height / 1e6:.1f} Mpx), more than "
            f"the {MAX_DATASET_PIXELS / 1e6:.1f} Mpx a dataset image or label may have (MAX_DATASET_PIXELS); "
            "refused before decoding"
        ) from exc


def read_unlabelled(path: Path) -> np.ndarray:
    """An unlabelled image (pretrain's) as 8-bit gray, as prepare-busi's duplicate check reads it
    (:func:`edge_runtime.near_duplicates.read_gray`: a 16-bit image scaled to 8 bits), under the same
    size limit as a dataset image: the folders pretrain takes may hold anything."""
    return _decode(Path(path), cv2.IMREAD_GRAYSCALE)


def read_label(sample: Sample, image_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Sample -> its label (uint8 HxW), validated: single channel, 8-bit, values in {0, 1, 255}, and
    the image's size when IMAGE_SHAPE is given. Without it the image is not read: for a caller that
    needs the labels alone (:mod:`training.mask_filter_fit`'s smallest lesion)."""
    label = _decode(sample.label)
    if label.ndim != 2 or label.dtype != np.uint8:
        raise InputError(
            f"{sample.label}: label must be single-channel uint8, got shape {label.shape} {label.dtype}"
        )
    if image_shape is not None and label.shape != image_shape:
        raise InputError(
            f"{sample.label}: label size {label.shape[::-1]} != image size {image_shape[::-1]} "
            f"({sample.image.name})"
        )
    bad = np.setdiff1d(np.unique(label), LABEL_VALUES)
    if bad.size:
        raise InputError(f"{sample.label}: label values {bad.tolist()} outside {{0, 1, 255}}")
    return label


def read_pair(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Sample -> (gray uint8 HxW, label uint8 HxW), validated."""
    gray = _decode(sample.image)
    if gray.ndim == 3:
        gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)  # tolerate gray stored as RGB
    if gray.dtype != np.uint8:
        raise InputError(f"{sample.image}: expected 8-bit grayscale, got {gray.dtype}")
    return gray, read_label(sample, gray.shape)


def image_stats(samples: list[Sample], grays: Iterable[np.ndarray] | None = None) -> tuple[float, float]:
    """Mean and std of pixel values (scaled to [0, 1]) over the given images: GRAYS, the samples' images
    already read (in order), else each read here, one at a time."""
    total, sq, count = 0.0, 0.0, 0
    for gray in grays if grays is not None else (read_pair(s)[0] for s in samples):
        g = gray.astype(np.float64) / 255.0
        total += g.sum()
        sq += (g * g).sum()
        count += g.size
    mean = total / count
    return float(mean), float(np.sqrt(max(sq / count - mean * mean, 1e-12)))
