"""register-batch's reading of the reports already in DATASET/registration/<id>/report.json.

A report written by an earlier run decides two things: whether a case is skipped as done, and
which patient its row in cases.csv belongs to. Both must hold for the case.yaml as it is now:

* :func:`stale_reason` says why a stored report does not belong to the loaded case (another
  case.yaml with the same id, or this one edited since, e.g. a corrected ``patient_id``), so the
  batch registers the case again instead of keeping a patient split it no longer agrees with;
* :func:`read_report` turns a damaged report.json (cut short, not an object, a field missing or
  of the wrong type) into one InputError naming the file, so one bad file is one failed case,
  not a crash of the whole batch after all its work.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge_runtime.errors import InputError
from edge_runtime.manifest import sha256_file
from registration.case import CaseSpec

REPORT = "report.json"
TEXT_FIELDS = ("case_id", "patient_id")  # what cases.csv takes from each report


def read_report(path: Path) -> dict:
    """The report.json at ``path`` (DATASET/registration/<id>/report.json), its ``case_id`` the
    folder's name and ``patient_id`` text; InputError naming the file otherwise."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: damaged report.json ({exc}); register the case again") from exc
    if not isinstance(report, dict):
        raise InputError(f"{path}: damaged report.json (not a JSON object); register the case again")
    for key in TEXT_FIELDS:
        if not isinstance(report.get(key), str) or not report[key]:
            raise InputError(
                f"{path}: damaged report.json ({key!r} missing or not text); register the case again"
            )
    if report["case_id"] != path.parent.name:
        raise InputError(
            f"{path}: damaged report.json (case_id {report['case_id']!r} is not its folder's name)"
        )
    return report


def stale_reason(path: Path, spec: CaseSpec) -> str | None:
    """Why the stored report at ``path`` is not this case's registration as case.yaml now reads,
    or None when it is (the same case file content and patient)."""
    try:
        report = read_report(path)
    except InputError as exc:
        return str(exc)
    recorded = report.get("case_file") if isinstance(report.get("case_file"), dict) else {}
    if recorded.get("sha256") != sha256_file(spec.path):
        return f"{spec.path}: changed since it was registered (or another case.yaml has its id)"
    if report["patient_id"] != spec.patient_id:
        return f"{spec.path}: patient_id is now {spec.patient_id!r}, registered as {report['patient_id']!r}"
    return None
