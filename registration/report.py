"""Output files of one registration: atomic writers, the label statistics of report.json, and how
report.json names its input files.

Every file is written to a temporary name in the same folder and renamed (edge_runtime.atomic), so
a crash or a Ctrl-C never leaves a half-written label that a later batch run would take as done.

report.json never holds an input file's path or name: file and folder names often carry the
patient's name or record number. An input is recorded by its SHA-256 and size
(:func:`input_file`), which whoever holds the file can match; a path inside a message is replaced
by the case.yaml key that names the file (:func:`without_input_paths`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.atomic import atomic_write_text
from edge_runtime.errors import SonomapError
from edge_runtime.jsonfile import atomic_write_json, json_text
from edge_runtime.manifest import sha256_file


def write_json(path: Path, obj) -> None:
    atomic_write_json(path, obj)


def report_text(obj, where: str) -> str:
    """``obj`` as JSON text; SonomapError naming ``where`` when it holds a value JSON cannot."""
    try:
        return json_text(obj) + "\n"
    except (TypeError, ValueError) as exc:  # e.g. a date; case.py converts those at load
        raise SonomapError(f"{where}: cannot be written ({exc})") from exc


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


def input_file(path: Path) -> dict:
    """report.json's record of one input file: ``{"sha256", "bytes"}`` of its content, read once
    more in full; not its path or name."""
    return {"sha256": sha256_file(path), "bytes": Path(path).stat().st_size}


def without_input_paths(value: Any, labels: dict[str, str]) -> Any:
    """``value`` (report.json's dicts, lists and strings) with every input file's path replaced by
    the case.yaml key naming it. ``labels``: path -> key, e.g. ``{"/cases/Doe_Jane/core.svs":
    "pathology.wsi"}`` turns ``/cases/Doe_Jane/core.svs: 2 serial sections...`` into
    ``pathology.wsi: 2 serial sections...``. Paths, not bare names: a name such as ``core`` would
    also replace that word in every message."""
    pairs = sorted(labels.items(), key=lambda pair: len(pair[0]), reverse=True)  # a path before its prefix

    def clean(item: Any) -> Any:
        if isinstance(item, str):
            for text, key in pairs:
                item = item.replace(text, key)
            return item
        if isinstance(item, dict):
            return {k: clean(v) for k, v in item.items()}
        if isinstance(item, list):
            return [clean(v) for v in item]
        if isinstance(item, tuple):
            return tuple(clean(v) for v in item)
        return item

    return clean(value)
