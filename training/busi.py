"""`sonomap prepare-busi`: the BUSI release (images/, masks/, index.csv) -> the dataset layout.

Labels: malignant lesion pixels = 1 (cancer); benign masses and all other pixels = 0.
BUSI has no patient ids, so each image is its own case (case_id = id) and the split is by
image id: 70/20/10, seeded, stratified by malignant/benign so every split has both.
"""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.atomic import atomic_path
from edge_runtime.errors import InputError
from training.data import CANCER, split_cases

SPLIT_FRACTIONS = (0.7, 0.2, 0.1)
MALIGNANT = "malignant"
BENIGN = "benign"


def read_busi_index(busi: Path) -> list[dict]:
    index = busi / "index.csv"
    if not index.is_file():
        raise InputError(f"{index}: BUSI index not found (expected DIR/index.csv with id,label)")
    with open(index, newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"id", "label"} <= set(reader.fieldnames or []):
            raise InputError(f"{index}: needs columns id,label")
        rows = list(reader)
    for line, row in enumerate(rows, start=2):
        if row["label"] not in (MALIGNANT, BENIGN):
            raise InputError(f"{index}:{line}: label {row['label']!r} is not malignant|benign")
    if not rows:
        raise InputError(f"{index}: no images listed")
    return rows


def prepare_busi(busi: str | Path, out: str | Path, seed: int = 0) -> dict:
    """Write DATASET/images, DATASET/labels, DATASET/cases.csv; returns split counts."""
    busi, out = Path(busi), Path(out)
    rows = read_busi_index(busi)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    for row in rows:
        sid = row["id"]
        img_path, mask_path = busi / "images" / f"{sid}.png", busi / "masks" / f"{sid}.png"
        gray = cv2.imread(str(img_path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise InputError(f"{img_path}: missing or unreadable")
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise InputError(f"{mask_path}: missing or unreadable")
        if mask.shape != gray.shape:
            raise InputError(f"{mask_path}: size {mask.shape[::-1]} != image size {gray.shape[::-1]}")
        label = np.zeros_like(mask)
        if row["label"] == MALIGNANT:
            label[mask > 0] = CANCER
        cv2.imwrite(str(out / "images" / f"{sid}.png"), gray)  # PNG is lossless: same pixels, 8-bit gray
        cv2.imwrite(str(out / "labels" / f"{sid}.png"), label)
    strata = {r["id"]: r["label"] for r in rows}
    split = split_cases([r["id"] for r in rows], SPLIT_FRACTIONS, seed, strata)
    with atomic_path(out / "cases.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "case_id", "split"])
        for row in rows:
            writer.writerow([row["id"], row["id"], split[row["id"]]])
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(split[row["id"]], {}).setdefault(row["label"], 0)
        counts[split[row["id"]]][row["label"]] += 1
    return counts
