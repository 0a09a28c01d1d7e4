"""The cases of a register-batch run: found under CASES_DIR, loaded, pending or refused, and how a
failed case is recorded.

Input: CASES_DIR's case.yaml files and their names (``case 3 of 12``: cases/status.case_names).
Output: the (case file, spec) pairs ready to register (:func:`load_cases`), and the records
batch_report.json keeps of pending cases (:func:`pending_entry`) and failed ones
(:func:`failure_entry`). A record names a case by its name or id, an input file by its case.yaml
key and a dataset file by its path in DATASET; never by a path or file name under CASES_DIR,
whose folders are often named after the patient.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from edge_runtime.biopsy.study_id import case_id_of
from edge_runtime.errors import InputError, SonomapError
from edge_runtime.privacy import redact
from edge_runtime.yamlfile import read_yaml_mapping
from registration.batch_reports import input_labels, raw_case
from registration.batch_shared import case_ids, shared_ids_and_inputs
from registration.case import CaseSpec, load_case
from registration.cases.status import check_cases_folder, find_case_files, lacks_of
from registration.report import without_input_paths

log = logging.getLogger("sonomap.registration")

PENDING_NOW = "pending now (see pending_cases)"
FAILED_NOW = "failed in this run (see failures)"


def find_cases(cases_dir: Path) -> list[Path]:
    cases_dir = Path(cases_dir)
    check_cases_folder(cases_dir)  # a file given as CASES_DIR is said to be one
    found = find_case_files(cases_dir)
    if not found:
        raise InputError(f"{cases_dir}: no */case.yaml found")
    return found


def dataset_paths(ds: Path) -> dict[str, str]:
    """For :func:`failure_entry`'s ``names``: DATASET's path as given and resolved -> its files' paths
    in DATASET (``/home/jane/ds/registration/x`` -> ``registration/x``), and DATASET itself -> its
    folder's name. A message about a dataset file then names no folder above DATASET (batch_report.json
    travels with the dataset). A relative path of one part is left out: ``ds`` would also replace
    that word inside any message."""
    found = {}
    for path in {ds, ds.resolve()}:
        if path.is_absolute() or len(path.parts) > 1:
            found[f"{path}/"] = ""
            found[str(path)] = ds.resolve().name
    return found


def failure_entry(
    case_yaml: Path, error: Exception | str, names: dict[str, str], case_id: str | None = None
) -> dict:
    """batch_report.json's record of one failed case, by its name in ``names`` (:func:`case_names`,
    or a dataset file's path in DATASET); its error starts with that name once, names every case by
    its name and each input file by its case.yaml key, never by path, and holds no DICOM
    identifiers; with ``case_id`` whenever the case's id is known, loaded or not (``sonomap cases
    --dataset`` finds a case's failure by its id alone: its name, a place among the case files,
    belongs to another case once a case is added or removed). Logged as a warning."""
    text = str(error)
    if isinstance(error, Exception) and not isinstance(error, SonomapError):
        # recorded with its type and location, to be found in the code
        tb = traceback.extract_tb(error.__traceback__)[-1]
        text = f"{type(error).__name__}: {error} (at {Path(tb.filename).name}:{tb.lineno})"
    inputs = input_labels(case_yaml) if case_yaml.name == "case.yaml" else {}  # a dataset file names none
    text = without_input_paths(text, {**inputs, **names})  # a clash names the other case's case.yaml too
    name = names[str(case_yaml)]
    if not text.startswith(name):
        text = f"{name}: {text}"
    entry = {"case": name, "error": redact(text)}
    if case_id is not None:
        entry["id"] = case_id
    log.warning("%s", entry["error"])
    return entry


def dataset_key(case_yaml: Path) -> str:
    """The name a failed case's files would have in the dataset: its case.yaml's id, or its folder's
    name unchecked. Only looked up among files already there (batch_dataset.set_aside), never
    written anew, so a folder name the loader refuses is no leak here."""
    return str(raw_case(case_yaml).get("id") or case_yaml.parent.name)


def load_cases(
    cases: list[Path], names: dict[str, str], failed: list, pending: list, left: dict
) -> list[tuple[Path, CaseSpec]]:
    """(case file, spec) of every case ready to register. Pending cases go to ``pending``; a case
    that does not load, every case whose id another case also has (pending or broken ones
    included), and every case whose slide or annotation another case also names
    (batch_shared.py), to ``failed``: all of this before anything is registered, so no case is
    taken as done on another's outputs or paired with its pathology.
    ``names``: :func:`case_names`; ``left``: id -> why the case is not in the dataset now."""
    ids = case_ids(cases)
    loaded, waiting, broken = [], {}, {}
    for case_yaml in cases:
        try:
            entry = pending_entry(case_yaml, names[str(case_yaml)])
            if entry is None:
                loaded.append((case_yaml, load_case(case_yaml)))
            else:
                waiting[case_yaml] = entry
        except Exception as exc:  # one bad case never stops the batch (Ctrl-C still does)
            broken[case_yaml] = exc
    clashes = shared_ids_and_inputs(loaded, ids)
    for case_yaml in cases:  # recorded in the cases' order
        if case_yaml in broken:
            error = broken[case_yaml]
            if case_yaml in clashes:
                error = "; ".join([*clashes[case_yaml], str(error)])
            failed.append(failure_entry(case_yaml, error, names, ids.get(case_yaml)))
            left[dataset_key(case_yaml)] = FAILED_NOW
        elif case_yaml in clashes:
            case_id = ids.get(case_yaml) or dataset_key(case_yaml)
            failed.append(failure_entry(case_yaml, "; ".join(clashes[case_yaml]), names, case_id))
            left[case_id] = FAILED_NOW
        elif case_yaml in waiting:
            pending.append(waiting[case_yaml])
            left[waiting[case_yaml]["id"]] = PENDING_NOW
    return [(case_yaml, spec) for case_yaml, spec in loaded if case_yaml not in clashes]


def pending_entry(case_yaml: Path, name: str) -> dict | None:
    """{case: ``name``, id, lacks} when the case lacks something registration needs, else None
    (a case.yaml that is not even a mapping is left to the loader's error). ConfigError when its id
    would be a folder name that may be the patient's (edge_runtime/biopsy/study_id.case_id_of): the report lists it."""
    try:
        raw = read_yaml_mapping(case_yaml, "case file")
    except SonomapError:
        return None
    missing = [str(x) for x in lacks_of(raw, case_yaml.parent) if x.required]
    if not missing:
        return None
    return {"case": name, "id": case_id_of(raw, case_yaml), "lacks": missing}
