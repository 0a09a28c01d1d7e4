"""register-batch: many cases -> the training dataset layout, resumable, never stopped by one bad case.

Input: CASES_DIR with <case>/case.yaml (any depth). Output in DATASET/:
  images/<id>.png            8-bit gray ultrasound frame
  labels/<id>.png            0 tissue / 1 cancer / 255 unknown
  registration/<id>/         label.png, qa.png, us.png, report.json of the case
  cases.csv                  id,case_id,split (case_id = patient; one patient never in two splits,
                             and a patient keeps its split when later runs add cases; the split is
                             edge_runtime.case_split's, the one prepare-busi uses)
  batch_report.json          done / skipped (already done) / failed cases with their one-line errors,
                             the cases held out for review (quality below --min-quality), and the
                             pending cases with what each lacks

A pending case is one still waiting for something registration needs (a captured biopsy whose
slide and annotation are not back yet; registration/cases/status.py): it is listed with what it
lacks, not registered and not a failure, and a later run picks it up once the lab has filled it in.

With ``min_quality`` a case whose registration quality score (report.json ``quality.score``)
is below it is registered (its registration/<id>/ folder is kept for review) but not put in
images/, labels/ or cases.csv; it is listed under ``low_quality`` with its weakest part.

A case counts as done when registration/<id>/report.json exists and images/ + labels/ hold
its files; every file is written atomically, so an interrupted run resumes cleanly. A done case is
registered again (listed under ``registered_again``) when its report.json is not of case.yaml as
it is now: the file changed since (e.g. a corrected patient_id) or the report is damaged
(batch_reports.py). Cases sharing an id are all refused before anything is registered.
A damaged report.json of a case not in this run is left out of cases.csv and listed as failed.

cases.csv is rebuilt from registration/*/report.json, so a DATASET this command did not build
(e.g. one from prepare-busi, whose cases.csv rows have no registration/<id>/report.json) is
refused before anything is written: rebuilding would drop those rows.
"""

from __future__ import annotations

import csv
import io
import logging
import traceback
from pathlib import Path

import cv2
from tqdm import tqdm

from edge_runtime.atomic import atomic_write_png
from edge_runtime.case_report import REPORT, read_report
from edge_runtime.case_split import SPLITS, split_cases
from edge_runtime.errors import InputError, SonomapError
from edge_runtime.near_duplicates import merge_near_duplicate_cases
from edge_runtime.privacy import redact
from edge_runtime.yamlfile import read_yaml_mapping
from registration.batch_reports import stale_reason
from registration.case import CaseSpec, load_case
from registration.cases.status import find_case_files, lacks_of
from registration.pipeline import register_case
from registration.report import write_json, write_text

log = logging.getLogger("sonomap.registration")


def _read_existing(ds: Path) -> dict[str, str]:
    path = ds / "cases.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        return {r["case_id"]: r["split"] for r in csv.DictReader(fh) if r.get("case_id") and r.get("split")}


def refuse_foreign_dataset(ds: Path) -> None:
    """InputError when DS/cases.csv has rows that no DS/registration/<id>/report.json backs: the
    rebuilt cases.csv would lose them (and leave their images and labels orphaned)."""
    path = ds / "cases.csv"
    if not path.is_file():
        return
    with open(path, newline="") as fh:
        ids = [r.get("id") or "" for r in csv.DictReader(fh)]
    foreign = [i for i in ids if not (ds / "registration" / i / "report.json").is_file()]
    if foreign:
        raise InputError(
            f"--out {ds}: its cases.csv has {len(foreign)} row(s) not made by register-batch (no "
            f"registration/<id>/report.json, e.g. {foreign[0]!r}); register into a new dataset folder"
        )


def find_cases(cases_dir: Path) -> list[Path]:
    cases_dir = Path(cases_dir)
    if not cases_dir.is_dir():
        raise InputError(f"{cases_dir}: cases folder not found")
    found = find_case_files(cases_dir)
    if not found:
        raise InputError(f"{cases_dir}: no */case.yaml found")
    return found


def _is_done(ds: Path, case_id: str) -> bool:
    return all(
        p.is_file()
        for p in (
            ds / "registration" / case_id / "report.json",
            ds / "images" / f"{case_id}.png",
            ds / "labels" / f"{case_id}.png",
        )
    )


def _write_cases_csv(ds: Path, seed: int, failed: list, dedup: bool = False) -> dict:
    """cases.csv from every completed case in the dataset (this run's and earlier runs'); a damaged
    report.json leaves its case out and is added to ``failed`` naming the file."""
    rows = []
    for rep in sorted((ds / "registration").glob(f"*/{REPORT}")):
        try:
            r = read_report(rep)
        except InputError as exc:
            failed.append(_failure(rep, exc))
            continue
        if _is_done(ds, r["case_id"]):
            rows.append((r["case_id"], r["patient_id"]))
    if dedup:  # optional check; imagehash is imported only when asked for
        merged = merge_near_duplicate_cases({c: ds / "images" / f"{c}.png" for c, _ in rows}, dict(rows))
        rows = [(c, merged[c]) for c, _ in rows]
    splits = split_cases([p for _, p in rows], seed, existing=_read_existing(ds))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "case_id", "split"])
    counts = dict.fromkeys(SPLITS, 0)
    for cid, pid in rows:
        w.writerow([cid, pid, splits[pid]])
        counts[splits[pid]] += 1
    write_text(ds / "cases.csv", buf.getvalue())
    return counts


def _failure(case_yaml: Path, error: Exception | str) -> dict:
    """batch_report.json's record of one failed case; its error names the case file once (an
    error that already starts with it is not prefixed again) and holds no DICOM identifiers."""
    text = str(error)
    if isinstance(error, Exception) and not isinstance(error, SonomapError):
        # recorded with its type and location, to be found in the code
        tb = traceback.extract_tb(error.__traceback__)[-1]
        text = f"{type(error).__name__}: {error} (at {Path(tb.filename).name}:{tb.lineno})"
    if not text.startswith(str(case_yaml)):
        text = f"{case_yaml}: {text}"
    entry = {"case": str(case_yaml), "error": redact(text)}
    log.warning("%s", entry["error"])
    return entry


def _load_cases(cases: list[Path], failed: list, pending: list) -> list[tuple[Path, CaseSpec]]:
    """(case file, spec) of every case ready to register. Pending cases go to ``pending``; a case
    that does not load, and every case whose id another case also has, to ``failed``: all of
    this before anything is registered, so no case is taken as done on another's outputs."""
    loaded = []
    for case_yaml in cases:
        try:
            waiting = _pending(case_yaml)
            if waiting is not None:
                pending.append(waiting)
                continue
            loaded.append((case_yaml, load_case(case_yaml)))
        except Exception as exc:  # one bad case never stops the batch (Ctrl-C still does)
            failed.append(_failure(case_yaml, exc))
    by_id: dict[str, list[Path]] = {}
    for case_yaml, spec in loaded:
        by_id.setdefault(spec.id, []).append(case_yaml)
    ready = []
    for case_yaml, spec in loaded:
        others = [str(p) for p in by_id[spec.id] if p != case_yaml]
        if others:
            failed.append(
                _failure(
                    case_yaml,
                    f"case id {spec.id!r} is also used by {', '.join(others)}; give each case its own id",
                )
            )
        else:
            ready.append((case_yaml, spec))
    return ready


def _pending(case_yaml: Path) -> dict | None:
    """{case, id, lacks} when the case lacks something registration needs, else None
    (a case.yaml that is not even a mapping is left to the loader's error)."""
    try:
        raw = read_yaml_mapping(case_yaml, "case file")
    except SonomapError:
        return None
    missing = [str(x) for x in lacks_of(raw, case_yaml.parent) if x.required]
    if not missing:
        return None
    return {"case": str(case_yaml), "id": str(raw.get("id") or case_yaml.parent.name), "lacks": missing}


def register_batch(
    cases_dir,
    out_dataset,
    seed: int = 0,
    progress: bool = True,
    min_quality: float | None = None,
    dedup: bool = False,
) -> dict:
    """Register every case under cases_dir into out_dataset; return the batch summary dict."""
    ds = Path(out_dataset)
    cases = find_cases(Path(cases_dir))
    refuse_foreign_dataset(ds)
    for sub in ("images", "labels", "registration"):
        (ds / sub).mkdir(parents=True, exist_ok=True)
    done, skipped, failed, held, pending, again = [], [], [], [], [], []
    ready = _load_cases(cases, failed, pending)
    for case_yaml, spec in tqdm(ready, desc="register", unit="case", disable=not progress):
        try:
            reg = ds / "registration" / spec.id
            if _is_done(ds, spec.id):
                stale = stale_reason(reg / REPORT, spec)
                if stale is None:
                    skipped.append(spec.id)
                    continue
                # the dataset's copy is another version's: it leaves cases.csv unless this run redoes it
                again.append({"id": spec.id, "reason": redact(stale)})
                for sub in ("images", "labels"):
                    (ds / sub / f"{spec.id}.png").unlink(missing_ok=True)
            report = register_case(case_yaml, reg, spec)
            q = report["quality"]
            if min_quality is not None and q["score"] < min_quality:
                held.append(
                    {
                        "id": spec.id,
                        "case": str(case_yaml),
                        "quality": q["score"],
                        "weakest": q["weakest"],
                        "qa": str(reg / "qa.png"),
                    }
                )
                continue
            atomic_write_png(
                ds / "images" / f"{spec.id}.png", cv2.imread(str(reg / "us.png"), cv2.IMREAD_GRAYSCALE)
            )
            atomic_write_png(
                ds / "labels" / f"{spec.id}.png", cv2.imread(str(reg / "label.png"), cv2.IMREAD_GRAYSCALE)
            )
            done.append(
                {
                    "id": spec.id,
                    "quality": report["quality"]["score"],
                    "cancer_fraction": report["label"]["cancer_fraction"],
                    "known_fraction": report["label"]["known_fraction"],
                    "warnings": report["warnings"],
                }
            )
        except Exception as exc:  # one bad case never stops the batch (Ctrl-C still does)
            failed.append(_failure(case_yaml, exc))
    counts = _write_cases_csv(ds, seed, failed, dedup)
    summary = {
        "dataset": str(ds),
        "registered": len(done),
        "skipped_done": len(skipped),
        "failed": len(failed),
        "splits": counts,
        "done": done,
        "skipped": skipped,
        "registered_again": again,
        "failures": failed,
        "min_quality": min_quality,
        "held_for_review": len(held),
        "low_quality": held,
        "pending": len(pending),
        "pending_cases": pending,
        "warnings": sum(len(d["warnings"]) for d in done),
    }
    write_json(ds / "batch_report.json", summary)
    return summary
