"""Which patient a case belongs to: the key that keeps one patient's cores in one dataset split.

One case (:func:`patient_of`). Input: a case.yaml mapping and its case id. Output:
``(patient_id, source)``, first found of

1. ``patient_id`` at the top of case.yaml (a research team's own cases);
2. ``pathology.patient_id``: the pseudonymous id the lab enters with the slide;
3. ``capture.study_id``: the pseudonymous study id the operator gave ``sonomap live/replay``;
4. the case id (for a captured case, its folder name): every core its own patient.

Many cases (:func:`patient_groups`). Input: case id -> case.yaml mapping. Output: case id -> group
key. The first-found rule alone splits one patient when the lab's id is on some of its cores only:
two cores of one session share ``capture.study_id`` BX-0042, one slide came back with
``pathology.patient_id`` pat-1, and the cores would resolve to pat-1 and BX-0042. So cores that share
*any* of the ids above are one group (union-find), named by its best id in the order above. A study
id found on cores with different patient ids is logged as a warning: the group keeps them together,
which never leaks a patient across splits, but the ids need a look.

Each id goes into cases.csv, report.json and the concordance report, so each must pass the rule a
study id passes at capture (``check_study_id``, edge_runtime/biopsy/study_id.py): a short pseudonym
with a letter and a digit, never a name (``Doe^Jane``) or a bare hospital number (``12345678``). The
refusal does not repeat the value. An id must also be YAML text: typed unquoted, ``0042`` reads as
the octal number 34 and ``1970-01-01`` as a date, so one patient's quoted and unquoted ids would
differ and the patient could span two splits; such a value is refused with the advice to quote it.

The case id (``case_id_of`` in edge_runtime/biopsy/study_id.py) is case.yaml's ``id``, else its
folder's name, and it becomes the patient id above, a dataset file name and the QA image's header.
A folder is often named after the patient, and an ``id`` may be typed the same way, so either must
pass the study id rule too, or be the name a capture gives its folder
(``<UTC YYYYmmddTHHMMSSZ>-<number>``); else the case is refused, telling the user to write ``id``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from edge_runtime.biopsy.study_id import check_study_id
from edge_runtime.errors import ConfigError

log = logging.getLogger("sonomap.registration")

FROM_CASE, FROM_PATHOLOGY, FROM_CAPTURE, FROM_ID = (
    "patient_id",
    "pathology.patient_id",
    "capture.study_id",
    "case id",
)
# Which id names a group: a patient id before a study id before a case id (the order above).
RANK = {FROM_CASE: 0, FROM_PATHOLOGY: 0, FROM_CAPTURE: 1, FROM_ID: 2}
PATIENT_KEYS = (FROM_CASE, FROM_PATHOLOGY)


def checked_id(value, key: str, where: str) -> str:
    """``value`` of case.yaml's ``key`` as an id; ConfigError naming ``where`` and ``key`` for a value
    that is not YAML text or does not pass the study id rule (module docstring)."""
    if not isinstance(value, str):
        raise ConfigError(
            f"{where}: {key} must be text, got a YAML {type(value).__name__}: put the id in quotes "
            f"({key}: 'P-0042'); unquoted, 0042 reads as the number 34 and 1970-01-01 as a date"
        )
    return check_study_id(value, f"{where}: {key}")


def identity_keys(raw: Mapping, case_id: str, where: str) -> list[tuple[str, str]]:
    """Every id of the case.yaml mapping ``raw`` as ``(key, value)``, in the order of the module
    docstring; ``[("case id", case_id)]`` when it has none. ConfigError naming ``where`` and the key
    for a value :func:`checked_id` refuses."""
    pathology = raw.get("pathology") if isinstance(raw.get("pathology"), dict) else {}
    capture = raw.get("capture") if isinstance(raw.get("capture"), dict) else {}
    found = [
        (key, checked_id(value, key, where))
        for value, key in (
            (raw.get("patient_id"), FROM_CASE),
            (pathology.get("patient_id"), FROM_PATHOLOGY),
            (capture.get("study_id"), FROM_CAPTURE),
        )
        if value is not None
    ]
    return found or [(FROM_ID, case_id)]


def patient_of(raw: dict, case_id: str, where: str) -> tuple[str, str]:
    """(patient id, the key it came from) of the case.yaml mapping ``raw`` alone; see the module
    docstring. Over several cores use :func:`patient_groups`, which joins cores sharing any id."""
    key, value = identity_keys(raw, case_id, where)[0]
    return value, key


def patient_groups(cases: Mapping[str, Mapping], where: Mapping[str, str] | None = None) -> dict[str, str]:
    """case id -> patient group key, for ``cases`` (case id -> case.yaml mapping).

    Cores sharing any id value are one group, also through other cores (union-find). Ids are
    matched by value whatever key holds them: an earlier run's report.json and cases.csv keep only
    the id chosen, not its key, and a chance match between namespaces only joins groups, which
    never puts one patient in two splits. ``where`` (case id -> its case.yaml path) names the file
    in errors and warnings; the case id is used without it. The result does not depend on the
    order of ``cases``.
    """
    where = where or {}
    keys = {cid: identity_keys(raw, cid, where.get(cid, cid)) for cid, raw in cases.items()}
    parent: dict[str, str] = {}

    def find(value: str) -> str:
        parent.setdefault(value, value)
        while parent[value] != value:
            parent[value] = parent[parent[value]]  # path halving keeps the trees flat
            value = parent[value]
        return value

    for ids in keys.values():
        first = find(ids[0][1])
        for _, value in ids[1:]:
            parent[find(value)] = first
    best: dict[str, tuple[int, str]] = {}
    for ids in keys.values():
        for key, value in ids:
            root = find(value)
            best[root] = min(best.get(root, (RANK[key], value)), (RANK[key], value))
    for message in study_conflicts(keys, where):
        log.warning(message)
    return {cid: best[find(ids[0][1])][1] for cid, ids in keys.items()}


def study_conflicts(keys: Mapping[str, list[tuple[str, str]]], where: Mapping[str, str]) -> list[str]:
    """One message per study id that cores with different patient ids carry (``keys``: case id ->
    :func:`identity_keys`), naming the study id, the patient ids and the case files."""
    by_study: dict[str, dict[str, str]] = {}
    for cid, ids in sorted(keys.items()):
        patient = next((v for k, v in ids if k in PATIENT_KEYS), None)
        for key, value in ids:
            if key == FROM_CAPTURE and patient is not None:
                by_study.setdefault(value, {})[cid] = patient
    messages = []
    for study, members in sorted(by_study.items()):
        if len(set(members.values())) > 1:
            listed = ", ".join(f"{where.get(c, c)} ({p})" for c, p in members.items())
            messages.append(
                f"{FROM_CAPTURE} {study!r} is on cores of different patient ids: {listed}; they are kept "
                "in one split as one patient. Correct the study id or the patient ids if they differ."
            )
    return messages
