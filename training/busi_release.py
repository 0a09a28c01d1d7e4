"""Reading the BUSI release for `sonomap prepare-busi`: its ``index.csv`` and each image with its mask.

Input: the release folder, ``BUSI/index.csv`` (columns ``id,label``), ``images/<id>.png`` and
``masks/<id>.png``. Output: the index rows, each id one plain file name
(:func:`edge_runtime.safe_names.safe_name`: an id is joined to images/ and labels/ under the
dataset, so ``../x`` would write outside it) listed once, each label :data:`MALIGNANT` or
:data:`BENIGN`; and one image as (gray image, label): malignant lesion pixels = 1 (cancer), benign
masses and all other pixels = 0. Bad input is an InputError naming the file (and line). Writes nothing.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.csv_text import read_csv_text
from edge_runtime.errors import InputError
from edge_runtime.image_files import read_image
from edge_runtime.near_duplicates import read_gray
from edge_runtime.safe_names import safe_name
from training.data import CANCER

MALIGNANT = "malignant"
BENIGN = "benign"


def read_busi_index(busi: Path) -> list[dict]:
    """BUSI/index.csv -> its rows ({id, label}), checked as this module says."""
    index = busi / "index.csv"
    if not index.is_file():
        raise InputError(f"{index}: BUSI index not found (expected DIR/index.csv with id,label)")
    text = read_csv_text(index, "id,label")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not {"id", "label"} <= set(reader.fieldnames or []):
            raise InputError(f"{index}: needs columns id,label")
        rows = list(reader)
    except csv.Error as exc:
        raise InputError(f"{index}:{reader.line_num}: not a valid CSV ({exc})") from None
    first_line: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        # the id names images/<id>.png and labels/<id>.png under --out: one plain name, never a path
        row["id"] = safe_name(row["id"], f"{index}:{line}: id")
        if row["label"] not in (MALIGNANT, BENIGN):
            raise InputError(f"{index}:{line}: label {row['label']!r} is not malignant|benign")
        # one id names one image file: a repeat would be written once and listed twice in cases.csv
        seen = first_line.setdefault(row["id"], line)
        if seen != line:
            raise InputError(f"{index}:{line}: id {row['id']!r} listed twice (first on line {seen})")
    if not rows:
        raise InputError(f"{index}: no images listed")
    return rows


def read_busi_pair(busi: Path, image: Path, sid: str, malignant: bool) -> tuple[np.ndarray, np.ndarray]:
    """One kept image of the release -> (gray image, label), or an InputError naming the file. The
    image is read as the hashes and the contact sheet read it (:func:`read_gray`): one picture."""
    mask_path = busi / "masks" / f"{sid}.png"
    gray = read_gray(image)
    mask = read_image(mask_path, cv2.IMREAD_GRAYSCALE)
    if mask.shape != gray.shape:
        raise InputError(f"{mask_path}: size {mask.shape[::-1]} != image size {gray.shape[::-1]}")
    if malignant and not (mask > 0).any():  # it would be scored as an image without cancer
        raise InputError(
            f"{mask_path}: a malignant image whose mask marks no lesion; draw the lesion or leave the image out"
        )
    label = np.zeros_like(mask)
    if malignant:
        label[mask > 0] = CANCER
    return gray, label
