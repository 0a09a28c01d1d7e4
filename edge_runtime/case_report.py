"""A registered case's ``report.json``: the contract between registration and the stages that read
its output (register-batch's re-runs, training's concordance).

Input: ``DATASET/registration/<id>/report.json`` as ``sonomap register-batch`` writes it. Output:
the report as a dict whose ``case_id`` (the folder's name) and ``patient_id`` are text, or one
InputError naming the file. It sits on the runtime's ground floor, beside the other shared
contracts, because registration and training are peers that may not import each other.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge_runtime.errors import InputError
from edge_runtime.manifest import sha256_file

REPORT = "report.json"
TEXT_FIELDS = ("case_id", "patient_id")  # what cases.csv and the concordance take from each report


def read_report(path: Path) -> dict:
    """The report.json at ``path``, its ``case_id`` the folder's name and ``patient_id`` text;
    InputError naming the file when it is damaged (cut short, not an object, a field missing)."""
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


def made_from(report: dict, case_yaml: Path) -> bool:
    """Whether the report was made from ``case_yaml`` as it reads now (the sha256 it recorded)."""
    recorded = report.get("case_file") if isinstance(report.get("case_file"), dict) else {}
    return recorded.get("sha256") == sha256_file(case_yaml)
