"""register-batch's reading of the reports already in DATASET/registration/<id>/report.json.

A report written by an earlier run decides two things: whether a case is skipped as done, and
which patient its row in cases.csv belongs to. Both must hold for the case.yaml as it is now:

* :func:`stale_reason` says why a stored report does not belong to the loaded case (another
  case.yaml with the same id, or this one edited since, e.g. a corrected ``patient_id``), so the
  batch registers the case again instead of keeping a patient split it no longer agrees with;
* a damaged report.json (:func:`edge_runtime.case_report.read_report`) is one InputError naming
  the file, so one bad file is one failed case, not a crash of the whole batch after all its work.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.case_report import made_from, read_report
from edge_runtime.errors import InputError
from registration.case import CaseSpec


def stale_reason(path: Path, spec: CaseSpec) -> str | None:
    """Why the stored report at ``path`` is not this case's registration as case.yaml now reads,
    or None when it is (the same case file content and patient)."""
    try:
        report = read_report(path)
    except InputError as exc:
        return str(exc)
    if not made_from(report, spec.path):
        return f"{spec.path}: changed since it was registered (or another case.yaml has its id)"
    if report["patient_id"] != spec.patient_id:
        return f"{spec.path}: patient_id is now {spec.patient_id!r}, registered as {report['patient_id']!r}"
    return None
