"""Dataset layout reader and validator (the split itself: :mod:`edge_runtime.case_split`).

Layout (the contract between registration/prepare-busi and training)::

    DATASET/images/<id>.png   8-bit grayscale ultrasound image
    DATASET/labels/<id>.png   uint8, same size: 0 tissue without cancer, 1 cancer, 255 unknown (ignored)
    DATASET/cases.csv         columns id,case_id,split  (split: train|val|test; case_id = patient)

Every problem (missing column, unknown split, one case in two splits, empty split,
size mismatch, label value outside {0, 1, 255}) raises an error naming the file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.case_split import SPLITS
from edge_runtime.errors import InputError
from edge_runtime.safe_names import safe_name

REQUIRED_COLUMNS = ("id", "case_id", "split")
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
    """DATASET dir -> all samples listed in cases.csv (files checked to exist)."""
    root = Path(root)
    csv_path = root / "cases.csv"
    if not csv_path.is_file():
        raise InputError(f"{csv_path}: dataset index not found (expected DATASET/cases.csv)")
    # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name (as
    # prepare-busi reads index.csv)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{csv_path}: missing column(s) {missing}; need {list(REQUIRED_COLUMNS)}")
            rows = list(reader)
    except UnicodeDecodeError:
        raise InputError(f"{csv_path}: not UTF-8 text; save it as UTF-8 CSV (id,case_id,split)") from None
    except csv.Error as exc:
        raise InputError(f"{csv_path}:{reader.line_num}: not a valid CSV ({exc})") from None
    samples, split_of_case, seen = [], {}, set()
    for line, row in enumerate(rows, start=2):
        sid, case, split = (row[c].strip() if row[c] else "" for c in REQUIRED_COLUMNS)
        sid = safe_name(sid, f"{csv_path}:{line}: id")  # names images/<id>.png and evaluate's pred/<id>.png
        if split not in SPLITS:
            raise InputError(f"{csv_path}:{line}: split {split!r} is not one of {SPLITS}")
        if sid in seen:
            raise InputError(f"{csv_path}:{line}: id {sid!r} listed twice")
        seen.add(sid)
        if split_of_case.setdefault(case, split) != split:
            raise InputError(
                f"{csv_path}:{line}: case {case!r} is in both {split_of_case[case]!r} and {split!r}"
            )
        sample = Sample(sid, case, split, root / "images" / f"{sid}.png", root / "labels" / f"{sid}.png")
        for path in (sample.image, sample.label):
            if not path.is_file():
                raise InputError(f"{path}: listed in {csv_path} but missing")
        samples.append(sample)
    return samples


def select_split(samples: list[Sample], split: str, root: str | Path = "") -> list[Sample]:
    """Samples of one split; an empty split is an error (naming the dataset's cases.csv)."""
    if split not in SPLITS:
        raise InputError(f"split {split!r} is not one of {SPLITS}")
    chosen = [s for s in samples if s.split == split]
    if not chosen:
        raise InputError(f"{Path(root) / 'cases.csv'}: split {split!r} is empty")
    return chosen


def read_pair(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Sample -> (gray uint8 HxW, label uint8 HxW), validated."""
    gray = cv2.imread(str(sample.image), cv2.IMREAD_UNCHANGED)
    if gray is None:
        raise InputError(f"{sample.image}: not a readable image")
    if gray.ndim == 3:
        gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)  # tolerate gray stored as RGB
    if gray.dtype != np.uint8:
        raise InputError(f"{sample.image}: expected 8-bit grayscale, got {gray.dtype}")
    label = cv2.imread(str(sample.label), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise InputError(f"{sample.label}: not a readable image")
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
