"""register-batch: many cases -> the training dataset layout, resumable, never stopped by one bad case
(only by a disk that refuses a write: batch_faults.py).

Input: CASES_DIR with <case>/case.yaml (any depth). Output in DATASET/:
  images/<id>.png            8-bit gray ultrasound frame
  labels/<id>.png            0 tissue / 1 cancer / 255 unknown
  registration/<id>/         label.png, qa.png, us.png, report.json of the case, and input_stats.json
                             (batch_reports.py)
  cases.csv                  id,case_id,split (case_id = patient: cores sharing any patient or study
                             id are one, batch_dataset.patient_rows; one patient never in two splits,
                             and a patient keeps its split when later runs add cases; the split is
                             edge_runtime.case_split's, the one prepare-busi uses)
  removed/                   images/ and labels/ of cases that left the dataset (batch_dataset.py)
  split_history.csv          id,case_id,split of every case ever in cases.csv: a case that left and
                             comes back takes its split again (registration/split_history.py)
  batch_report.json          done / skipped (already done) / failed cases with their one-line errors,
                             the cases held out for review (quality below --min-quality), the
                             pending cases with what each lacks, the cases removed from the
                             dataset with the reason, and with --dedup the patients joined into one
                             case by a near-duplicate image (merged_cases, also printed)

The dataset (images/, labels/, cases.csv) holds exactly the cases registered from their current
inputs in this CASES_DIR. A case now pending, failed, held for review or gone from CASES_DIR leaves
it: its image and label are moved to removed/ and listed under ``removed_cases`` (also printed).

A pending case is one still waiting for something registration needs (a captured biopsy whose
slide and annotation are not back yet; registration/cases/status.py): it is listed with what it
lacks, not registered and not a failure, and a later run picks it up once the lab has filled it in.

With ``min_quality`` a case whose registration quality score (report.json ``quality.score``)
is below it is registered (its registration/<id>/ folder is kept for review) but not put in
images/, labels/ or cases.csv; it is listed under ``low_quality`` with its weakest part. A case
already done is held by its stored report's score, without registering it again.

A case counts as done when registration/<id>/report.json exists, images/ + labels/ hold its files
and the report was made from case.yaml and the input files it names as they read now (their
SHA-256; batch_reports.py): a revised annotation or slide, an edited case.yaml (e.g. a corrected
patient_id) or a damaged report has the case registered again (listed under ``registered_again``).
Every file is written atomically and a case's earlier image and label are replaced only once its
new registration succeeded, so an interrupted run resumes cleanly. Cases sharing an id, a slide or
an annotation file are all refused before anything is registered. A damaged report.json of a case
not in this run is listed as failed.

What is persisted, logged or printed names a case by its place among CASES_DIR's case.yaml files
(``case 3 of 12``, in the order ``sonomap cases CASES_DIR`` lists them: cases/status.case_names) or by its
id, an input file by its case.yaml key (``pathology.wsi: ...``) and a QA image by its path in DATASET;
never by a path or file name under CASES_DIR, whose folders are often named after the patient.

A DATASET this command did not build is refused before anything is written or moved: one whose
cases.csv rows have no registration/<id>/report.json (e.g. prepare-busi's: rebuilding cases.csv would
drop those rows), one holding anything this command does not write (a BUSI folder's masks/, a training
run's best.pt), and one holding files but neither registration/ nor batch_report.json (an images/
folder of someone else's, whose images would be moved to removed/). A new or empty DATASET is fine.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from edge_runtime.batch_report import BATCH_REPORT
from edge_runtime.case_report import REPORT, read_report
from edge_runtime.case_split import CASES_CSV, read_cases_csv
from edge_runtime.errors import InputError
from edge_runtime.privacy import redact
from registration.batch_cases import FAILED_NOW, dataset_paths, failure_entry, find_cases, load_cases
from registration.batch_dataset import (
    check_dataset_folder,
    copy_into_layout,
    is_done,
    patient_rows,
    retire_copies,
    set_aside,
    write_cases_csv,
)
from registration.batch_faults import report_mark, stop_on_write_fault
from registration.batch_reports import (
    check_stored,
    confirmed_after,
    input_labels,
    stats_before,
    write_input_stats,
)
from registration.case import CaseSpec
from registration.cases.status import case_names
from registration.pipeline import register_case
from registration.report import without_input_paths, write_json
from registration.split_history import read_split_history

HELD_NOW = "held for review: quality below --min-quality (see low_quality)"


def refuse_foreign_dataset(ds: Path) -> None:
    """InputError when DS/cases.csv has rows that no DS/registration/<id>/report.json backs: the
    rebuilt cases.csv would lose them (and leave their images and labels orphaned); ConfigError when
    DS is neither new, empty nor a register-batch dataset (batch_dataset.check_dataset_folder): its
    images would be moved to removed/ and the dataset's files written beside its own; InputError for a
    damaged split_history.csv, found here rather than after cases were moved. Reads only."""
    path = ds / CASES_CSV
    if path.is_file():  # first: for a prepare-busi dataset the rows it would lose are the clearer reason
        _refuse_foreign_rows(ds, path)
    check_dataset_folder(ds, "--out", new_ok=True)
    read_split_history(ds)


def _refuse_foreign_rows(ds: Path, path: Path) -> None:
    ids = [row.id for row in read_cases_csv(path)]  # a malformed row stops the batch before it starts
    foreign = [i for i in ids if not (ds / "registration" / i / "report.json").is_file()]
    if foreign:
        raise InputError(
            f"--out {ds}: its cases.csv has {len(foreign)} row(s) not made by register-batch (no "
            f"registration/<id>/report.json, e.g. {foreign[0]!r}); register into a new dataset folder"
        )


def _held(spec: CaseSpec, name: str, report: dict) -> dict:
    q = report["quality"]
    qa = f"registration/{spec.id}/qa.png"  # in DATASET
    return {"id": spec.id, "case": name, "quality": q["score"], "weakest": q["weakest"], "qa": qa}


def _below(report: dict, min_quality: float | None) -> bool:
    return min_quality is not None and report["quality"]["score"] < min_quality


def _damaged_elsewhere(ds: Path, ids: set[str], failed: list) -> None:
    """A damaged registration/<id>/report.json of a case not in this run, listed as failed naming
    the file (a case of this run is registered again instead)."""
    for rep in sorted((ds / "registration").glob(f"*/{REPORT}")):
        if rep.parent.name in ids:
            continue
        try:
            read_report(rep)
        except InputError as exc:
            failed.append(failure_entry(rep, exc, {str(rep): rep.relative_to(ds).as_posix()}))


def _merged_patients(ds: Path, rows: list[tuple[str, str]]) -> list[list[str]]:
    """Patients that --dedup joined into one case (a near-duplicate image in each), each list sorted:
    cases.csv's case_id names the joined case, ``rows`` (id, patient) each image's own patient."""
    patient = dict(rows)
    members: dict[str, set[str]] = {}
    for row in read_cases_csv(ds / CASES_CSV):
        members.setdefault(row.case_id, set()).add(patient[row.id])
    return sorted(sorted(group) for group in members.values() if len(group) > 1)


def register_batch(
    cases_dir,
    out_dataset,
    seed: int = 0,
    progress: bool = True,
    min_quality: float | None = None,
    dedup: bool = False,
) -> dict:
    """Register every case under cases_dir into out_dataset; return the batch summary dict (also
    written as batch_report.json), the cases removed from the dataset under ``removed_cases``."""
    ds = Path(out_dataset)
    cases = find_cases(Path(cases_dir))
    refuse_foreign_dataset(ds)
    for sub in ("images", "labels", "registration"):
        (ds / sub).mkdir(parents=True, exist_ok=True)
    done, skipped, failed, held, pending, again = [], [], [], [], [], []
    left: dict[str, str] = {}  # id -> why the case is not in the dataset after this run
    kept: list[str] = []  # ids of the cases in the dataset
    retired: dict[str, list[str]] = {}  # id -> its old copies, moved to removed/ before registering again
    names = {**case_names(cases), **dataset_paths(ds)}  # what messages name cases and dataset files by
    ready = load_cases(cases, names, failed, pending, left)
    for case_yaml, spec in tqdm(ready, desc="register", unit="case", disable=not progress):
        mark = None
        try:
            reg = ds / "registration" / spec.id
            if is_done(ds, spec.id):
                stored = check_stored(reg / REPORT, spec)
                if stored.stale is None:
                    if stored.confirmed != stored.stats:  # next time these files need not be hashed
                        write_input_stats(reg / REPORT, stored.confirmed)
                    if _below(stored.report, min_quality):
                        held.append(_held(spec, names[str(case_yaml)], stored.report))
                        left[spec.id] = HELD_NOW
                    else:
                        skipped.append(spec.id)
                        kept.append(spec.id)
                    continue
                # the dataset's copy is another version's: replaced once this run registers it anew
                stale = without_input_paths(stored.stale, {**input_labels(case_yaml), **names})
                again.append({"id": spec.id, "reason": redact(stale)})
            mark = report_mark(reg / REPORT)  # its old copies go back if the disk fails before it is replaced
            retired[spec.id] = retire_copies(ds, spec.id)  # no old copy beside a new report.json
            before = stats_before(spec)
            report = register_case(case_yaml, reg, spec)
            write_input_stats(reg / REPORT, confirmed_after(report, before))
            if _below(report, min_quality):
                held.append(_held(spec, names[str(case_yaml)], report))
                left[spec.id] = HELD_NOW
                continue
            copy_into_layout(ds, spec.id)
            kept.append(spec.id)
            done.append(
                {
                    "id": spec.id,
                    "quality": report["quality"]["score"],
                    "cancer_fraction": report["label"]["cancer_fraction"],
                    "known_fraction": report["label"]["known_fraction"],
                    "warnings": report["warnings"],
                }
            )
        except Exception as exc:  # one bad case never stops the batch (a full disk, Ctrl-C do)
            stop_on_write_fault(exc, ds, spec.id, names[str(case_yaml)], retired.get(spec.id, []), mark)
            failed.append(failure_entry(case_yaml, exc, names, spec.id))
            left[spec.id] = FAILED_NOW
    for entry in again:  # the old copies it replaced, in removed/ (a failed case's are under removed_cases)
        entry["moved"] = [] if entry["id"] in left else retired.get(entry["id"], [])
        entry["failed"] = left.get(entry["id"]) == FAILED_NOW  # tried again, not registered: see failures
    _damaged_elsewhere(ds, {spec.id for _, spec in ready}, failed)
    removed = {r["id"]: r for r in set_aside(ds, set(kept), left)}
    for i in left:  # a case whose old copies were retired before it failed: listed once, all its moves
        if retired.get(i):
            entry = removed.setdefault(i, {"id": i, "reason": left[i], "moved": []})
            entry["moved"] = retired[i] + entry["moved"]
    removed = sorted(removed.values(), key=lambda r: r["id"])
    files = {spec.id: case_yaml for case_yaml, spec in ready}
    rows = patient_rows({cid: files[cid] for cid in kept}, names)
    counts, moved, emptied = write_cases_csv(ds, rows, seed, dedup)
    summary = {
        # the folder's name only: this file travels with the dataset, the path above it is the user's
        "dataset": ds.resolve().name,
        "registered": len(done),
        "skipped_done": len(skipped),
        "failed": len(failed),
        "splits": counts,
        # patients --dedup put in one split because their images are near-duplicates (cases.csv: P1+P7)
        "merged_cases": _merged_patients(ds, rows) if dedup else [],
        # cases whose patient joined one in another split (a corrected id, --dedup): now in its split
        "moved_cases": moved,
        "emptied_splits": emptied,
        "done": done,
        "skipped": skipped,
        "registered_again": again,
        "failures": failed,
        "min_quality": min_quality,
        "held_for_review": len(held),
        "low_quality": held,
        "pending": len(pending),
        "pending_cases": pending,
        "removed": len(removed),
        "removed_cases": removed,
        "warnings": sum(len(d["warnings"]) for d in done),
    }
    write_json(ds / BATCH_REPORT, summary)
    return summary
