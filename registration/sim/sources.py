"""The simulators' source images: BUSI-layout images with their lesion masks, found, labelled and read.

A user's own images may be named after the patient, so outside the command line that names a file,
a source is known by the SHA-256 of its content (:class:`SimSource`). A lesion mask is the lesion's
truth pixel for pixel: one of another size (another image's mask) would put the lesion elsewhere, so
:func:`read_pair` refuses it, for simulate-biopsy and simulate-procedure alike.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.csv_text import read_csv_text
from edge_runtime.errors import InputError
from edge_runtime.image_files import UnreadableImage, read_image
from edge_runtime.manifest import sha256_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
PSEUDONYM_HEX = 12  # hex digits of the image's SHA-256 in its pseudonymous patient id
INDEX_COLUMNS = "id,label"  # what list_sources reads of BUSI's index.csv
MALIGNANT = "malignant"
BUSI_LABELS = (MALIGNANT, "benign", "normal")  # BUSI's classes, its file names' prefixes
LESION_LEVEL = 127  # a 0/255 lesion mask is lesion above this


@dataclass(frozen=True)
class SimSource:
    """One source image and its lesion mask, known outside this module only by the image's digest."""

    image: Path
    mask: Path
    sha256: str  # of the image file's bytes

    @property
    def patient_id(self) -> str:
        """Pseudonymous patient id: the same for every case made from this image, no file name in it."""
        return f"src-{self.sha256[:PSEUDONYM_HEX]}"

    @property
    def label(self) -> str:
        """How messages name this source: by digest, never by its file name."""
        return f"source image {self.patient_id}"


def busi_labels(index: Path) -> dict[str, str]:
    """id -> label (one of BUSI_LABELS, read case aside and without surrounding blanks) of BUSI's
    ``index.csv``. Read as prepare-busi reads it (a spreadsheet's byte-order mark accepted): InputError
    naming the file, and the line, when it is not UTF-8 or not CSV, has no id and label columns, a label
    that is not BUSI's (``cancer``: it would otherwise count as no cancer) or an id labelled twice apart."""
    text = read_csv_text(index, INDEX_COLUMNS)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    labels: dict[str, tuple[str, int]] = {}
    try:
        if not set(INDEX_COLUMNS.split(",")) <= set(reader.fieldnames or []):
            raise InputError(f"{index}: needs columns {INDEX_COLUMNS} (BUSI layout)")
        for row in reader:
            label = (row["label"] or "").strip().lower()
            if label not in BUSI_LABELS:
                raise InputError(
                    f"{index}:{reader.line_num}: label {row['label']!r} of {row['id']!r} is not one of "
                    f"BUSI's ({', '.join(BUSI_LABELS)})"
                )
            earlier = labels.setdefault(row["id"], (label, reader.line_num))
            if earlier[0] != label:
                raise InputError(
                    f"{index}:{reader.line_num}: {row['id']!r} is labelled {label} here and {earlier[0]} "
                    f"on line {earlier[1]}"
                )
    except csv.Error as exc:
        raise InputError(f"{index}:{reader.line_num}: not a valid CSV ({exc})") from None
    return {image_id: label for image_id, (label, _) in labels.items()}


def malignant_ids(index: Path) -> set[str]:
    """The ids that BUSI's ``index.csv`` labels malignant (errors as :func:`busi_labels`)."""
    return {image_id for image_id, label in busi_labels(index).items() if label == MALIGNANT}


def list_sources(images_dir: Path, masks_dir: Path) -> list[SimSource]:
    """Malignant images (index.csv label) or all images with a lesion mask, each with its digest."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    if not images_dir.is_dir():
        raise InputError(f"--images {images_dir}: not a folder")
    if not masks_dir.is_dir():
        raise InputError(f"--masks {masks_dir}: not a folder")
    index = images_dir.parent / "index.csv"
    malignant = malignant_ids(index) if index.is_file() else None
    out = []
    for img in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        if malignant is not None and img.stem not in malignant:
            continue
        mask = next(
            (masks_dir / (img.stem + s) for s in IMAGE_SUFFIXES if (masks_dir / (img.stem + s)).is_file()),
            None,
        )
        if mask is not None:
            out.append(SimSource(img, mask, sha256_file(img)))
    if not out:
        raise InputError(f"--images {images_dir}: no images with a matching lesion mask in {masks_dir}")
    return out


def read_pair(image: Path, mask: Path, image_name: str, mask_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(gray image, lesion as bool) of an image and its 0/255 lesion mask. InputError, naming the file
    as ``image_name`` or ``mask_name`` (a digest where the file name must not be shown), when either
    cannot be read or the mask's size is not the image's."""
    gray, lesion = (_read(path, name) for path, name in ((image, image_name), (mask, mask_name)))
    if lesion.shape != gray.shape:
        (mh, mw), (ih, iw) = lesion.shape, gray.shape
        raise InputError(
            f"{mask_name}: size {mw}x{mh} px differs from its image's {iw}x{ih} px: a lesion mask must be "
            "its own image's, pixel for pixel"
        )
    return gray, lesion > LESION_LEVEL


def _read(path: Path, name: str) -> np.ndarray:
    try:
        return read_image(path, cv2.IMREAD_GRAYSCALE)
    except UnreadableImage as exc:  # the reason without the path: the caller names the file
        raise InputError(f"{name}: unreadable image ({exc.reason})") from exc
