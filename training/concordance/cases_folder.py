"""Every case under a cases folder: its core, or the reason it is not scored, made to be shared.

Input: a folder of captured cases (``<case>/case.yaml`` at any depth) and the ``register-batch
--out`` folder (DATASET). Output: the :class:`~training.concordance.cores.Core` of every case that
can be scored (one case: cores.py), each with its patient from DATASET's ``cases.csv``, and a
``{case, reason}`` entry for every other one.

A skipped case goes into the report, which is made to be shared: it is named by its case.yaml's id
(the capture's), or by its position among the case files when it has no usable id, never by its
folder (which may sit in a folder named after the patient), and its reason names no path below the
cases folder (:func:`skip_entry`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from edge_runtime.batch_report import last_batch
from edge_runtime.biopsy.study_id import without_case_folder
from edge_runtime.case_split import CASES_CSV, read_cases_csv
from edge_runtime.errors import InputError, SonomapError
from edge_runtime.yamlfile import read_yaml_mapping
from training.concordance.case_ids import case_id_of, shared_ids
from training.concordance.cores import Core, load_core

CASES_LABEL = "CASES"  # how outputs name the cases folder given: never by its name (public_reason)


def find_case_files(cases_dir: Path) -> list[Path]:
    """Every case.yaml under cases_dir, sorted; hidden folders (captures being written) skipped.
    (The same rule as registration/cases/status.py; training does not import registration.)"""
    return sorted(
        p
        for p in cases_dir.rglob("case.yaml")
        if not any(part.startswith(".") for part in p.relative_to(cases_dir).parts[:-1])
    )


def load_cores(cases_dir: str | Path, dataset: str | Path) -> tuple[list[Core], list[dict]]:
    """(cores, skipped) over every case under cases_dir; skipped = [{case, reason}]."""
    cases_dir, dataset = Path(cases_dir), Path(dataset)
    if not cases_dir.is_dir():
        raise InputError(f"{cases_dir}: cases folder not found")
    if not (dataset / "registration").is_dir():
        raise InputError(f"{dataset}: no registration/ folder (the output of `sonomap register-batch`)")
    cores, skipped = [], []
    patients = dataset_patients(dataset)
    # read when a first core is missing from the dataset's images, then kept for every other one
    last_of = functools.cache(functools.partial(last_batch, dataset))
    found = find_case_files(cases_dir)
    shared = shared_ids(found, case_id_of)  # a copied case folder: one registration, scored once per copy
    for position, case_yaml in enumerate(found, start=1):
        try:
            if case_yaml in shared:
                raise InputError(f"{case_yaml}: {shared[case_yaml]}")
            core = load_core(case_yaml, dataset, last_of)
        except SonomapError as exc:
            skipped.append(skip_entry(exc, case_yaml, f"case {position} of {len(found)}", cases_dir, dataset))
            continue
        core.patient_id = patients.get(core.id, core.patient_id)
        cores.append(core)
    return cores, skipped


def skip_entry(exc: Exception, case_yaml: Path, position: str, cases_dir: Path, dataset: Path) -> dict:
    """``{case, reason}`` for a case that is not scored. ``case``: its case.yaml's id when it passes
    the case id rule (:func:`case_id_of`), else ``position``; ``reason``: the error with the case's folder left out
    (:func:`without_case_folder`: ``case.yaml: ...``, ``case.yaml: prefire_mask.png: ...``) and the cases folder and dataset named
    by their base names (:func:`public_reason`)."""
    try:
        case = read_yaml_mapping(case_yaml, "case file")
        name = position if case.get("id") is None else case_id_of(case_yaml, case)
    except SonomapError:  # unreadable, or an id the case id rule refuses (a name, a path): its position
        name = position
    text = without_case_folder(str(exc), case_yaml.parent)
    return {"case": name, "reason": public_reason(text, cases_dir, dataset)}


def public_reason(text: str, cases_dir: Path, dataset: Path) -> str:
    """``text`` with the cases folder named :data:`CASES_LABEL` and the dataset by its base name, as
    the report's header names them: the reasons go into report.md and concordance.json, which are
    made to be shared, and a folder above them may be named after the patient. The cases folder
    itself may be too (a folder per patient), and no rule tells ``Doe_Jane`` from ``cases``."""
    labels = ((cases_dir, CASES_LABEL), (dataset, dataset.name))
    spelled = {
        (str(form), label)
        for folder, label in labels
        for form in (folder, folder.absolute(), folder.resolve())
    }
    for path, name in sorted(spelled, key=lambda pair: -len(pair[0])):  # the longest spelling first
        text = text.replace(path, name)
    return text


def dataset_patients(dataset: Path) -> dict[str, str]:
    """id -> patient from DATASET/cases.csv ({} without one), read by the one reader of that file
    (edge_runtime.case_split.read_cases_csv: a bad row is an error naming its line, as training
    would refuse it). register-batch writes there the patient each core belongs to after joining
    cores that share any patient or study id, which a single report.json cannot know; the bootstrap
    resamples these patients."""
    path = dataset / CASES_CSV
    if not path.is_file():
        return {}
    return {row.id: row.case_id for row in read_cases_csv(path)}
