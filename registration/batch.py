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
its files; every file is written atomically, so an interrupted run resumes cleanly.

cases.csv is rebuilt from registration/*/report.json, so a DATASET this command did not build
(e.g. one from prepare-busi, whose cases.csv rows have no registration/<id>/report.json) is
refused before anything is written: rebuilding would drop those rows.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import traceback
from pathlib import Path

import cv2
from tqdm import tqdm

from edge_runtime.atomic import atomic_write_png
from edge_runtime.case_split import SPLITS, split_cases
from edge_runtime.errors import InputError, SonomapError
from edge_runtime.near_duplicates import merge_near_duplicate_cases
from edge_runtime.privacy import redact
from edge_runtime.yamlfile import read_yaml_mapping
from registration.case import load_case
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


def _write_cases_csv(ds: Path, seed: int, dedup: bool = False) -> dict:
    """cases.csv from every completed case in the dataset (this run's and earlier runs')."""
    rows = []
    for rep in sorted((ds / "registration").glob("*/report.json")):
        r = json.loads(rep.read_text())
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
    done, skipped, failed, held, pending, seen = [], [], [], [], [], {}
    for case_yaml in tqdm(cases, desc="register", unit="case", disable=not progress):
        try:
            waiting = _pending(case_yaml)
            if waiting is not None:
                pending.append(waiting)
                continue
            spec = load_case(case_yaml)
            if spec.id in seen:
                raise InputError(f"{case_yaml}: case id {spec.id!r} already used by {seen[spec.id]}")
            seen[spec.id] = case_yaml
            if _is_done(ds, spec.id):
                skipped.append(spec.id)
                continue
            reg = ds / "registration" / spec.id
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
        except SonomapError as exc:
            failed.append({"case": str(case_yaml), "error": redact(str(exc))})  # no DICOM identifiers
            log.warning("%s: %s", case_yaml, exc)
        except Exception as exc:
            # stop an overnight batch; it is recorded with its type and location (Ctrl-C still stops)
            tb = traceback.extract_tb(exc.__traceback__)[-1]
            failed.append(
                {
                    "case": str(case_yaml),
                    "error": redact(f"{type(exc).__name__}: {exc} (at {Path(tb.filename).name}:{tb.lineno})"),
                }
            )
            log.warning("%s: unexpected %s: %s", case_yaml, type(exc).__name__, exc)
    counts = _write_cases_csv(ds, seed, dedup)
    summary = {
        "dataset": str(ds),
        "registered": len(done),
        "skipped_done": len(skipped),
        "failed": len(failed),
        "splits": counts,
        "done": done,
        "skipped": skipped,
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
