"""Which patient a case belongs to: the key that keeps one patient's cores in one dataset split.

Input: a case.yaml mapping and its case id. Output: ``(patient_id, source)``, first found of

1. ``patient_id`` at the top of case.yaml (a research team's own cases);
2. ``pathology.patient_id``: the pseudonymous id the lab enters with the slide;
3. ``capture.study_id``: the pseudonymous study id the operator gave ``sonomap live/replay``;
4. the case id (for a captured case, its folder name): every core its own patient.

Each must be one plain name (it becomes part of cases.csv and report.json), never a path.
"""

from __future__ import annotations

from edge_runtime.safe_names import safe_name

FROM_CASE, FROM_PATHOLOGY, FROM_CAPTURE, FROM_ID = (
    "patient_id",
    "pathology.patient_id",
    "capture.study_id",
    "case id",
)


def patient_of(raw: dict, case_id: str, where: str) -> tuple[str, str]:
    """(patient id, the key it came from) of the case.yaml mapping ``raw``; see the module docstring."""
    pathology = raw.get("pathology") if isinstance(raw.get("pathology"), dict) else {}
    capture = raw.get("capture") if isinstance(raw.get("capture"), dict) else {}
    for value, key in (
        (raw.get("patient_id"), FROM_CASE),
        (pathology.get("patient_id"), FROM_PATHOLOGY),
        (capture.get("study_id"), FROM_CAPTURE),
    ):
        if value is not None:
            return safe_name(value, f"{where}: {key}"), key
    return case_id, FROM_ID
