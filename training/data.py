"""Dataset layout reader and validator (the split itself: :mod:`edge_runtime.case_split`).

Layout (the contract between registration/prepare-busi and training)::

    DATASET/images/<id>.png   8-bit grayscale ultrasound image
    DATASET/labels/<id>.png   uint8, same size: 0 tissue without cancer, 1 cancer, 255 unknown (ignored)
    DATASET/cases.csv         columns id,case_id,split  (split: train|val|test; case_id = patient)

Every problem (missing column, unknown split, one case in two splits, empty split,
size mismatch, label value outside {0, 1, 255}) raises an error naming the file; cases.csv is read
by :func:`edge_runtime.case_split.read_cases_csv`, which names the line and column too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.case_split import CASES_CSV, SPLITS, read_cases_csv
from edge_runtime.errors import InputError
from edge_runtime.image_files import read_image

IGNORE_INDEX = 255
CANCER = 1
LABEL_VALUES = (0, CANCER, IGNORE_INDEX)


@dataclass(frozen=True)
class Sample:
    id: str
    case_id: str
    split: str
    image: Path
    label: Path


def read_cases(root: str | Path) -> list[Sample]:
    """DATASET dir -> all samples listed in DATASET/cases.csv, in file order, each image and label
    file checked to exist. The rows are read and checked by edge_runtime.case_split.read_cases_csv,
    the one reader of cases.csv (register-batch and the concordance read it there too)."""
    root = Path(root)
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


def read_pair(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Sample -> (gray uint8 HxW, label uint8 HxW), validated."""
    gray = read_image(sample.image)
    if gray.ndim == 3:
        gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)  # tolerate gray stored as RGB
    if gray.dtype != np.uint8:
        raise InputError(f"{sample.image}: expected 8-bit grayscale, got {gray.dtype}")
    label = read_image(sample.label)
    if label.ndim != 2 or label.dtype != np.uint8:
        raise InputError(
            f"{sample.label}: label must be single-channel uint8, got shape {label.shape} {label.dtype}"
        )
    if label.shape != gray.shape:
        raise InputError(
            f"{sample.label}: label size {label.shape[::-1]} != image size {gray.shape[::-1]} "
            f"({sample.image.name})"
        )
    bad = np.setdiff1d(np.unique(label), LABEL_VALUES)
    if bad.size:
        raise InputError(f"{sample.label}: label values {bad.tolist()} outside {{0, 1, 255}}")
    return gray, label


def image_stats(samples: list[Sample]) -> tuple[float, float]:
    """Mean and std of pixel values (scaled to [0, 1]) over the given images."""
    total, sq, count = 0.0, 0.0, 0
    for s in samples:
        g = read_pair(s)[0].astype(np.float64) / 255.0
        total += g.sum()
        sq += (g * g).sum()
        count += g.size
    mean = total / count
    return float(mean), float(np.sqrt(max(sq / count - mean * mean, 1e-12)))
