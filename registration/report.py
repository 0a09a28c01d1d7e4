"""Output files of one registration: atomic writers and the label statistics of report.json.

Every file is written to a temporary name in the same folder and renamed, so a crash or a
Ctrl-C never leaves a half-written label that a later batch run would take as done.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.atomic import atomic_write_bytes, atomic_write_text
from edge_runtime.errors import InputError


def write_png(path: Path, img: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise InputError(f"{path}: PNG encoding failed")
    atomic_write_bytes(path, buf.tobytes())


def write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def label_stats(label: np.ndarray, band: np.ndarray, mm_per_px: tuple[float, float]) -> dict:
    """Counts first: band / known / cancer pixels, then the fractions derived from them."""
    band_px = int(band.sum())
    known = label != 255
    known_px = int(known.sum())
    cancer_px = int((label == 1).sum())
    px_mm2 = mm_per_px[0] * mm_per_px[1]
    return {
        "band_px": band_px,
        "known_px": known_px,
        "cancer_px": cancer_px,
        "tissue_px": known_px - cancer_px,
        "known_fraction": round(known_px / band_px, 4) if band_px else 0.0,
        "cancer_fraction": round(cancer_px / known_px, 4) if known_px else 0.0,
        "cancer_area_mm2": round(cancer_px * px_mm2, 4),
    }
