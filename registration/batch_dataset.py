"""register-batch's training layout in DATASET: which cases it holds, and what leaves it.

Files: ``images/<id>.png`` and ``labels/<id>.png`` (copies of ``registration/<id>/us.png`` and
``label.png``), ``cases.csv`` (id,case_id,split) and ``removed/images|labels/<id>.png``.

The layout holds exactly the cases registered from their current inputs in this run's CASES_DIR
(skipped as done or registered now, and not held for review). Every other case's image and label
are moved to ``removed/`` by :func:`set_aside` and listed with the reason (now pending, failed,
held for review, or no case.yaml under CASES_DIR has its id any more), so ``sonomap train`` never
trains on a label its inputs no longer give, and nothing is deleted unreported. A later removal of
the same id replaces the earlier set-aside copy. ``registration/<id>/`` (report, qa, label) stays.

A folder register-batch did not make is never used as DATASET (:func:`check_dataset_folder`): it would
move that folder's images to ``removed/`` and write its own files beside the folder's.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.atomic import atomic_write_csv, atomic_write_png
from edge_runtime.batch_report import BATCH_REPORT
from edge_runtime.case_split import CASES_CSV, SPLITS, read_cases_csv, split_cases
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.image_files import UnreadableImage, read_image
from edge_runtime.near_duplicates import merge_near_duplicate_cases
from edge_runtime.yamlfile import read_yaml_mapping
from registration.cases.identity import patient_groups
from registration.split_history import SPLIT_HISTORY, read_split_history, write_split_history

LAYOUT = {"images": "us.png", "labels": "label.png"}  # dataset folder -> registration/<id>/ file it copies
REMOVED = "removed"  # DATASET/removed/<images|labels>/<id>.png (<id>~2.png, ...): what left the dataset
# Everything register-batch writes at the top of DATASET, each a folder or a file.
FOLDERS = frozenset({*LAYOUT, "registration", REMOVED})
FILES = frozenset({CASES_CSV, BATCH_REPORT, SPLIT_HISTORY})
# Written only by register-batch (cases.csv is prepare-busi's and crossval's too); registration/ is
# made before anything else, so a first run that was stopped has it.
MARKERS = ("registration/", BATCH_REPORT)
GONE = "no case.yaml under CASES_DIR registers it now (case removed, or its case.yaml does not load)"


def _not_a_dataset(ds: Path, flag: str, why: str, new_ok: bool) -> ConfigError:
    tail = (
        " and is left alone; give a new or empty folder"
        if new_ok
        else "; give the folder register-batch --out wrote"
    )
    return ConfigError(f"{flag} {ds}: {why}, so the folder is not a register-batch dataset{tail}")


def check_dataset_folder(ds: Path, flag: str, new_ok: bool) -> None:
    """Refuse (ConfigError naming ``flag``) a DS that is not a register-batch dataset: a file, or a
    folder holding none of :data:`MARKERS`. With ``new_ok`` (register-batch --out, which moves images
    away and writes beside what is there) DS may also be new or empty, and must hold nothing
    register-batch does not write (hidden names aside: temp files, .DS_Store). Without it (cases
    --dataset, which only reads and would list every case as ready to register from a mistyped
    path) DS must be an existing dataset. Reads only."""
    if ds.exists() and not ds.is_dir():
        raise ConfigError(f"{flag} {ds}: is a file; give a register-batch dataset folder")
    if not ds.is_dir():
        if new_ok:
            return
        raise ConfigError(f"{flag} {ds}: folder not found; give the folder register-batch --out wrote")
    entries = {p.name: p for p in ds.iterdir() if not p.name.startswith(".")}
    own = {
        name for name, p in entries.items() if name in FOLDERS and p.is_dir() or name in FILES and p.is_file()
    }
    foreign = sorted(set(entries) - own)
    if new_ok and foreign:
        name = foreign[0]
        if name in FILES | FOLDERS:  # one of its own names, as the other kind (a folder cases.csv)
            kind = "file" if name in FILES else "folder"
            raise _not_a_dataset(
                ds, flag, f"holds {name}, which is not the {kind} register-batch writes there", new_ok
            )
        raise _not_a_dataset(ds, flag, f"holds {name}, which register-batch does not write", new_ok)
    if (entries or not new_ok) and not own & {"registration", BATCH_REPORT}:
        why = f"holds {sorted(entries)[0]} but neither {' nor '.join(MARKERS)}" if entries else "is empty"
        raise _not_a_dataset(ds, flag, why, new_ok)


def is_done(ds: Path, case_id: str) -> bool:
    """registration/<id>/report.json, images/<id>.png and labels/<id>.png all exist."""
    files = [ds / "registration" / case_id / "report.json"]
    files += [ds / folder / f"{case_id}.png" for folder in LAYOUT]
    return all(p.is_file() for p in files)


def _gray(path: Path) -> np.ndarray:
    """The 8-bit gray PNG at ``path``, decoded from its bytes (OpenCV's imread crashes on a path that
    is not valid UTF-8, and names the file past the log filters); InputError naming it otherwise."""
    try:
        return read_image(path, cv2.IMREAD_GRAYSCALE)
    except UnreadableImage as exc:
        raise InputError(f"{exc}; register the case again") from exc


def copy_into_layout(ds: Path, case_id: str) -> None:
    """images/<id>.png and labels/<id>.png from registration/<id>/, each written atomically; both
    decoded before either is written."""
    reg = ds / "registration" / case_id
    images = {folder: _gray(reg / name) for folder, name in LAYOUT.items()}
    for folder, img in images.items():
        atomic_write_png(ds / folder / f"{case_id}.png", img)


def set_aside(ds: Path, keep: set[str], reasons: dict[str, str]) -> list[dict]:
    """Move images/labels of every id not in ``keep`` to removed/; return ``[{id, reason, moved}]``
    sorted by id, ``reason`` from ``reasons`` (else :data:`GONE`), ``moved`` the new paths
    relative to DATASET."""
    ids = {p.stem for folder in LAYOUT for p in (ds / folder).glob("*.png")} - keep
    return [
        {"id": case_id, "reason": reasons.get(case_id, GONE), "moved": retire_copies(ds, case_id)}
        for case_id in sorted(ids)
    ]


def retire_copies(ds: Path, case_id: str) -> list[str]:
    """Move the case's images/ and labels/ copies (those there) to removed/; returns the new paths
    relative to DATASET. Called too before a case is registered again: its new report.json is
    written before its new copies, and a run stopped between them must not leave the old label
    beside a report that marks the case done (:func:`is_done`)."""
    moved = []
    for folder in LAYOUT:
        src = ds / folder / f"{case_id}.png"
        if not src.is_file():
            continue
        dst = _unused(ds / REMOVED / folder / src.name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)  # same file system: a rename, never a half-copied file
        moved.append(dst.relative_to(ds).as_posix())
    return moved


def _unused(path: Path) -> Path:
    """``path``, or ``<stem>~N<suffix>`` with the smallest N not taken: a case retired twice (registered
    again after a second revision) keeps both earlier copies in removed/, the older never replaced."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}~{n}{path.suffix}")
    return candidate


def patient_rows(case_files: dict[str, Path], names: dict[str, str]) -> list[tuple[str, str]]:
    """[(id, patient group)] for the cases in the layout (``case_files``: id -> its case.yaml): cores
    that share any patient or study id are one patient (registration.cases.identity.patient_groups),
    so a session whose slides came back with the lab's id on some cores only stays in one split.
    Its warnings name a case by ``names`` (a case.yaml's path -> its place, ``case 2 of 5``), never by
    a path under CASES_DIR, whose folders may be named after the patient."""
    raws = {cid: read_yaml_mapping(path, "case file") for cid, path in case_files.items()}
    groups = patient_groups(raws, {cid: names.get(str(path), cid) for cid, path in case_files.items()})
    return [(cid, groups[cid]) for cid in case_files]


def previous_splits(ds: Path) -> dict[str, str]:
    """id -> split of the dataset's cases.csv (empty when there is none yet). The one reader of
    cases.csv: a row training would refuse is refused here too, rather than skipped (a skipped row's
    patient would be split afresh, and could move from test to train)."""
    path = ds / CASES_CSV
    return {row.id: row.split for row in read_cases_csv(path)} if path.is_file() else {}


def kept_splits(
    before: dict[str, str], rows: list[tuple[str, str]], history: dict[str, tuple[str, str]] | None = None
) -> dict[str, str]:
    """patient -> split kept from the dataset's cases.csv (``before``: id -> split), matched by case
    id: a patient's key can change between runs (two groups joined, a lab id added), its cores' ids do
    not. A patient whose cores sat in several splits (written before they were known to be one, or
    joined by --dedup) takes the split most of them were in (the first in SPLITS order on a tie): from
    now on all of them are there. A patient with no core in cases.csv takes its split from ``history``
    (split_history.csv: id -> (patient, split)), by its cores' ids, else by its patient key: its cores
    left the dataset for a while (failed, pending), and a new core of the patient may come first."""
    history = history or {}
    votes = _votes(rows, before)
    for patient, remembered in _votes(rows, {cid: split for cid, (_, split) in history.items()}).items():
        votes.setdefault(patient, remembered)
    by_key: dict[str, Counter] = {}
    for patient, split in history.values():
        by_key.setdefault(patient, Counter())[split] += 1
    for _, patient in rows:
        if patient not in votes and patient in by_key:
            votes[patient] = by_key[patient]
    return {p: max(SPLITS, key=lambda s: (v[s], -SPLITS.index(s))) for p, v in votes.items()}


def _votes(rows: list[tuple[str, str]], split_of: dict[str, str]) -> dict[str, Counter]:
    """patient -> how many of its cores (``rows``: [(id, patient)]) ``split_of`` (id -> split) puts in
    each split; a patient none of whose cores it holds is left out."""
    votes: dict[str, Counter] = {}
    for cid, patient in rows:
        if cid in split_of:
            votes.setdefault(patient, Counter())[split_of[cid]] += 1
    return votes


def write_cases_csv(
    ds: Path, rows: list[tuple[str, str]], seed: int, dedup: bool = False
) -> tuple[dict, list[dict], list[str]]:
    """cases.csv from ``rows`` ([(id, patient)], the cases in the layout); return the split counts, the
    cases whose split changed (``[{id, from, to}]``: their patient joined one in another split) and
    the splits that held cases before and hold none now. A patient already in cases.csv keeps its
    split there; one whose cores were in it once keeps the split split_history.csv remembers
    (:func:`kept_splits`; edge_runtime.case_split). The history is written first, so a stop between
    the two files loses no case's split."""
    rows = sorted(rows)
    if dedup:  # optional check; imagehash is imported only when asked for
        merged = merge_near_duplicate_cases({c: ds / "images" / f"{c}.png" for c, _ in rows}, dict(rows))
        rows = [(c, merged[c]) for c, _ in rows]
    before = previous_splits(ds)
    history = read_split_history(ds)
    remembered = {**{c: split for c, (_, split) in history.items()}, **before}
    splits = split_cases([p for _, p in rows], seed, existing=kept_splits(before, rows, history))
    write_split_history(ds, {**history, **{c: (p, splits[p]) for c, p in rows}})
    atomic_write_csv(ds / CASES_CSV, ["id", "case_id", "split"], [(c, p, splits[p]) for c, p in rows])
    counts = Counter(splits[p] for _, p in rows)
    moved = [
        {"id": c, "from": remembered[c], "to": splits[p]}
        for c, p in rows
        if remembered.get(c, splits[p]) != splits[p]
    ]
    emptied = [s for s in SPLITS if s in before.values() and not counts[s]]
    return {split: counts[split] for split in SPLITS}, moved, emptied
