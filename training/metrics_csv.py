"""An evaluation's ``metrics.csv``: one row per image, its exact confusion counts and its scores.

Columns: id, case_id, the counts (:data:`training.metrics.COUNTS`), the scores
(:data:`training.metrics.METRICS`, rounded to 8 decimals, for reading). Whatever computes with the
file (``evaluate --compare``, cross-validation's pooled figures) reads the counts and scores them
again (count first, score second), never the rounded score columns.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.atomic import atomic_write_csv
from edge_runtime.errors import InputError
from training.metrics import COUNTS, METRICS, Counts, scores


@dataclass
class ImageResult:
    id: str
    case_id: str
    counts: Counts
    scores: dict[str, float]


def write_metrics_csv(path: Path, results: list[ImageResult], extra: dict[str, list] | None = None) -> None:
    """RESULTS -> PATH, replaced whole (an earlier file stays until the new one is complete);
    ``extra``: more columns after case_id (name -> one value per image)."""
    extra = extra or {}
    rows = (
        [
            r.id,
            r.case_id,
            *(values[j] for values in extra.values()),
            *(getattr(r.counts, k) for k in COUNTS),
            *(f"{r.scores[m]:.8f}" for m in METRICS),
        ]
        for j, r in enumerate(results)
    )
    atomic_write_csv(path, ["id", "case_id", *extra, *COUNTS, *METRICS], rows)


def read_metrics_csv(path: Path) -> dict[str, dict]:
    """PATH -> image id -> its row (strings), in file order."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not readable as an evaluation's metrics.csv ({exc})") from exc
    missing = [c for c in ("id", "case_id", *COUNTS) if rows and c not in rows[0]]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}")
    return {row["id"]: row for row in rows}


def row_counts(row: dict, path: Path | str = "metrics.csv") -> Counts:
    """One row's exact counts; a value that is no whole number is an error naming the file and id."""
    try:
        return Counts(*(int(row[k]) for k in COUNTS))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: image {row.get('id')!r}: counts must be whole numbers ({exc})") from exc


def exact_scores(rows: dict[str, dict], ids: list[str]) -> dict[str, np.ndarray]:
    """metrics.csv rows -> metric -> per-image scores in ``ids`` order, scored again from each row's
    integer counts. The file's score columns are rounded to 8 decimals: a B - A below that would
    read as 0 (dropped by the Wilcoxon test) and two close differences as a tie (which changes the
    test's p-value method), so the paired statistics never use them."""
    per = [scores(row_counts(rows[i])) for i in ids]
    return {m: np.array([s[m] for s in per], dtype=np.float64) for m in METRICS}
