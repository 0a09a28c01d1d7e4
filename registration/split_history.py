"""The split every case of a register-batch dataset was ever given, kept after the case leaves it.

cases.csv lists only the cases in the dataset now. A patient whose every core fails for its own
inputs (a slide the scanner cut short, an annotation on the wrong slide) leaves cases.csv with them;
once the lab fixes the inputs the cores come back, and without this file their patient would be split
afresh: one evaluated in test could come back in train. So register-batch keeps
``DATASET/split_history.csv`` (``id,case_id,split``): each case id's last patient and split, written
before cases.csv on every run. A patient with no core in cases.csv now takes its split from here, by
its cores' ids, else by its patient key (a new core of a patient whose other cores are all out);
cases.csv decides for a patient with a core in it (batch_dataset.kept_splits).

Input and output: that file. Files: read, and written atomically.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from edge_runtime.atomic import atomic_write_csv
from edge_runtime.case_split import SPLITS
from edge_runtime.csv_text import read_csv_text
from edge_runtime.errors import InputError

SPLIT_HISTORY = "split_history.csv"
COLUMNS = ("id", "case_id", "split")


def read_split_history(ds: Path) -> dict[str, tuple[str, str]]:
    """id -> (patient, split) from DATASET/split_history.csv (empty when there is none yet). InputError naming the
    file and line for text that is not UTF-8 CSV, a missing column, an empty id or patient, a split not in SPLITS
    or an id listed twice: a row skipped here would let its patient be split afresh, and of two rows
    (a hand edit, two copies joined) neither can be known to be the split the patient was evaluated in."""
    path = ds / SPLIT_HISTORY
    if not path.is_file():
        return {}
    reader = csv.reader(io.StringIO(read_csv_text(path, ",".join(COLUMNS)), newline=""))
    out: dict[str, tuple[str, str]] = {}
    first_line: dict[str, int] = {}
    try:
        header = [name.strip() for name in next(reader, [])]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise InputError(f"{path}:1: missing column(s) {missing}; need {list(COLUMNS)}")
        at = {c: header.index(c) for c in COLUMNS}
        for fields in reader:
            if not fields:
                continue
            sid, patient, split = (fields[at[c]].strip() if at[c] < len(fields) else "" for c in COLUMNS)
            if not sid or not patient or split not in SPLITS:
                raise InputError(
                    f"{path}:{reader.line_num}: needs an id, a case_id and a split in {list(SPLITS)}, "
                    f"has {sid!r}, {patient!r}, {split!r}"
                )
            if sid in first_line:
                raise InputError(
                    f"{path}:{reader.line_num}: id {sid!r} listed twice (first on line {first_line[sid]})"
                )
            out[sid], first_line[sid] = (patient, split), reader.line_num
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num}: not a valid CSV ({exc})") from None
    return out


def write_split_history(ds: Path, history: dict[str, tuple[str, str]]) -> None:
    """DATASET/split_history.csv from ``history`` (id -> (patient, split)), sorted by id, atomically."""
    atomic_write_csv(ds / SPLIT_HISTORY, COLUMNS, [(sid, *history[sid]) for sid in sorted(history)])
