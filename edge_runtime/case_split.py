"""Train/val/test split by case (patient): the one splitter every stage uses, and the one reader
of the file a split is kept in, a dataset's ``cases.csv``.

Registration's ``register-batch`` (patients of a biopsy batch) and training's ``prepare-busi``
(near-duplicate groups of a public set) both call :func:`split_cases`, so one set of cases with
one seed gets one split wherever it is made. It lives on edge_runtime's ground floor because
registration and training may both import that and must not import each other.

Input: case ids (duplicates are one case), a seed, optionally a stratum per case and an earlier
split to keep. Output: case id -> "train" | "val" | "test". Numpy only; writes nothing.

:func:`read_cases_csv` reads ``DATASET/cases.csv`` (columns id,case_id,split; case_id is the
patient) for training's dataset reader, the concordance's patients and register-batch's kept
splits alike, so a row one of them accepts is accepted by all, and a bad row is one error naming
the file, line and column.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_runtime.csv_text import read_csv_text
from edge_runtime.errors import InputError
from edge_runtime.safe_names import safe_name

SPLITS = ("train", "val", "test")
CASES_CSV = "cases.csv"  # DATASET/cases.csv: one row per image
CASES_COLUMNS = ("id", "case_id", "split")
# The study's 70/20/10 patient split (train, val, test).
SPLIT_FRACTIONS = (0.7, 0.2, 0.1)
# From this many cases on (per stratum) every split gets at least one.
MIN_CASES_ALL_SPLITS = 3


def split_counts(n: int, fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> dict[str, int]:
    """How many of ``n`` cases go to each split; every split that can be non-empty is.

    1 case: train. 2: train + test (evaluation needs a test set more than model selection needs a
    val set). 3 or more: val and test get their rounded share, at least one each; train the rest.
    """
    if n < MIN_CASES_ALL_SPLITS:
        return {"train": min(n, 1), "val": 0, "test": max(n - 1, 0)}
    test = max(1, round(n * fractions[2]))
    val = max(1, round(n * fractions[1]))
    return {"train": n - val - test, "val": val, "test": test}


def split_cases(
    case_ids,
    seed: int = 0,
    fractions: tuple[float, float, float] = SPLIT_FRACTIONS,
    strata: dict[str, str] | None = None,
    existing: dict[str, str] | None = None,
) -> dict[str, str]:
    """Seeded split of cases, stratified by ``strata`` (case -> stratum) when given.

    ``existing`` (case -> split, e.g. from an earlier cases.csv) is kept as it is: a case never
    moves between splits when later cases are added. New cases first fill a split that
    :func:`split_counts` promises for the grown stratum but that is still empty (from
    MIN_CASES_ALL_SPLITS cases on, every split), then the splits furthest below their share,
    within their stratum. The order the ids come in does not matter.
    """
    cases = sorted(set(case_ids))
    known = set(cases)
    kept = {c: s for c, s in (existing or {}).items() if c in known and s in SPLITS}
    rng = np.random.default_rng(seed)
    strata_members: dict[str, list[str]] = {}
    for case in cases:
        strata_members.setdefault((strata or {}).get(case, ""), []).append(case)
    out: dict[str, str] = {}
    for key in sorted(strata_members):
        members = strata_members[key]
        if kept:
            out.update(_extend(members, kept, rng, fractions))
        else:
            out.update(_fresh(members, rng, fractions))
    return out


def _fresh(cases: list[str], rng: np.random.Generator, fractions) -> dict[str, str]:
    """Permuted ranks: the first go to test, the next to val, the rest to train."""
    counts = split_counts(len(cases), fractions)
    order = rng.permutation(len(cases))
    n_test, n_val = counts["test"], counts["val"]
    return {
        cases[idx]: "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
        for rank, idx in enumerate(order)
    }


def _extend(cases: list[str], kept: dict[str, str], rng: np.random.Generator, fractions) -> dict[str, str]:
    """Keep the earlier split; each new case goes to a split :func:`split_counts` promises to be
    non-empty and that still is (test before val, as with two cases), otherwise to the split with
    the largest deficit. Slides come back in batches: without the first rule a val or test split
    could stay empty for many patients, and training refuses an empty split."""
    share = dict(zip(SPLITS, fractions, strict=True))
    out = {c: kept[c] for c in cases if c in kept}
    new = [c for c in cases if c not in kept]
    counts = {name: sum(1 for s in out.values() if s == name) for name in SPLITS}
    for idx in rng.permutation(len(new)):
        total = len(out) + 1
        promised = split_counts(total, fractions)
        empty = [n for n in reversed(SPLITS) if promised[n] > 0 and counts[n] == 0]  # test first
        if empty:
            name = empty[0]
        else:
            name = max(SPLITS, key=lambda n: share[n] * total - counts[n])  # largest deficit first
        out[new[idx]] = name
        counts[name] += 1
    return out


@dataclass(frozen=True)
class CaseRow:
    """One row of cases.csv: the image id (images/<id>.png), its patient and its split; ``line``
    is where the row ends in the file (a quoted value may span lines)."""

    id: str
    case_id: str
    split: str
    line: int


def _text(path: Path) -> str:
    """The file as text (:func:`edge_runtime.csv_text.read_csv_text`); a missing one is named as the
    dataset's index."""
    if not path.exists():
        raise InputError(f"{path}: dataset index not found (expected DATASET/{CASES_CSV})")
    return read_csv_text(path, ",".join(CASES_COLUMNS))


def read_cases_csv(path: str | Path) -> list[CaseRow]:
    """DATASET/cases.csv at ``path`` -> its rows in file order, each checked.

    Refused, naming the file and line (and the column, by its name): a missing file, text that is
    not UTF-8 or not CSV, a missing column, a row with more fields than the header (a comma inside
    a value shifts every later one; a shorter row's missing values are empty), an id that is not a plain file name (ConfigError:
    it names images/<id>.png), an empty case_id, a split not in SPLITS, an id listed twice, and a
    patient (case_id) in two splits. Blank lines are skipped; values are stripped; other columns
    are allowed and ignored. Reads the file only.
    """
    path = Path(path)
    reader = csv.reader(io.StringIO(_text(path), newline=""))
    rows: list[CaseRow] = []
    try:
        header = next(reader, [])
        missing = [c for c in CASES_COLUMNS if c not in header]
        if missing:
            raise InputError(f"{path}:1: missing column(s) {missing}; need {list(CASES_COLUMNS)}")
        at = {c: header.index(c) for c in CASES_COLUMNS}
        first_line: dict[str, int] = {}
        split_of: dict[str, tuple[str, int]] = {}
        for fields in reader:
            if not fields:
                continue
            rows.append(_row(path, reader.line_num, fields, len(header), at, first_line, split_of))
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num}: not a valid CSV ({exc})") from None
    return rows


def _row(path, line, fields, width, at, first_line, split_of) -> CaseRow:
    """One checked row (see :func:`read_cases_csv`); ``first_line`` (id -> line) and ``split_of``
    (case_id -> (split, line)) carry what earlier rows held."""
    where = f"{path}:{line}"
    if len(fields) > width:  # an unquoted comma in a value: every later value sits one column off
        raise InputError(f"{where}: {len(fields)} fields, the header has {width} (a comma inside a value?)")
    # a short row (a spreadsheet leaves trailing empty cells out) has its missing values empty
    sid, case, split = (fields[at[c]].strip() if at[c] < len(fields) else "" for c in CASES_COLUMNS)
    sid = safe_name(sid, f"{where}: id")  # names images/<id>.png and evaluate's pred/<id>.png
    if not case:
        raise InputError(f"{where}: case_id is empty (the patient image {sid!r} belongs to)")
    if split not in SPLITS:
        raise InputError(f"{where}: split {split!r} is not one of {SPLITS}")
    if sid in first_line:
        raise InputError(f"{where}: id {sid!r} listed twice (first on line {first_line[sid]})")
    first_line[sid] = line
    earlier, earlier_line = split_of.setdefault(case, (split, line))
    if earlier != split:
        raise InputError(
            f"{where}: case {case!r} is in both {earlier!r} (line {earlier_line}) and {split!r}; "
            "a patient's images belong to one split"
        )
    return CaseRow(sid, case, split, line)
