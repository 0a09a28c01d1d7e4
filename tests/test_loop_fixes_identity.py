"""Patient groups over many cases (registration.cases.identity.patient_groups): cores that share any
identity (patient id, the lab's patient id, the capture's study id) are one patient, whichever of
those each core happens to carry, so one patient never lands in two dataset splits."""

from __future__ import annotations

import logging

import pytest
import yaml
from captured_cases import write_captured_case

from edge_runtime.case_split import split_cases
from edge_runtime.errors import SonomapError
from registration.batch_dataset import patient_rows
from registration.cases.identity import patient_groups, patient_of


def _raw(folder) -> dict:
    return yaml.safe_load((folder / "case.yaml").read_text())


def _session(root, pathology_patient: dict[str, str | None], study: str | None) -> dict[str, dict]:
    """Captured cores of one session (case.yaml files written as the capture does); the lab's
    patient id entered on some slides only."""
    cases = {}
    for name, patient in pathology_patient.items():
        pathology = {"wsi": None, "annotations": None, "tip_end": "left", "shrinkage": None}
        if patient is not None:
            pathology["patient_id"] = patient
        cases[name] = _raw(write_captured_case(root / name, study_id=study, pathology=pathology))
    return cases


def test_cores_sharing_a_study_id_are_one_patient_though_only_one_has_the_lab_id(tmp_path):
    cases = _session(tmp_path, {"20261201T1Z-1": "pat-a1", "20261201T1Z-2": None}, study="BX-0042")
    # each core alone resolves to a different id: the leak
    assert {patient_of(raw, cid, cid)[0] for cid, raw in cases.items()} == {"pat-a1", "BX-0042"}
    groups = patient_groups(cases)
    assert groups == {"20261201T1Z-1": "pat-a1", "20261201T1Z-2": "pat-a1"}  # the patient id names it
    for seed in range(10):
        split = split_cases(groups.values(), seed=seed)
        assert len({split[groups[c]] for c in cases}) == 1


def test_groups_chain_through_shared_ids_and_stay_apart_otherwise(tmp_path):
    cases = {
        "c1": {"patient_id": "P1"},
        "c2": {"patient_id": "P1", "capture": {"study_id": "S1"}},
        "c3": {"capture": {"study_id": "S1"}},  # joined to c1 through c2
        "c4": {"capture": {"study_id": "S2"}},
        "c5": {},  # no identity at all: its own patient, named by its case id
        # an earlier run's report.json holds only the id it chose (here a study id): matched by value
        "c6": {"patient_id": "S2"},
    }
    groups = patient_groups(cases)
    assert groups == {"c1": "P1", "c2": "P1", "c3": "P1", "c4": "S2", "c5": "c5", "c6": "S2"}
    assert patient_groups(dict(reversed(list(cases.items())))) == groups  # order-free


def test_a_study_id_on_cores_of_different_patients_is_warned_and_kept_together(tmp_path, caplog):
    cases = {
        "z1": {"pathology": {"patient_id": "pat-a1"}, "capture": {"study_id": "BX-0042"}},
        "z2": {"pathology": {"patient_id": "pat-b1"}, "capture": {"study_id": "BX-0042"}},
        "z3": {"pathology": {"patient_id": "pat-c1"}, "capture": {"study_id": "BX-0043"}},
    }
    with caplog.at_level(logging.WARNING):
        groups = patient_groups(cases, where={"z1": "cases/z1/case.yaml", "z2": "cases/z2/case.yaml"})
    assert groups["z1"] == groups["z2"] == "pat-a1" and groups["z3"] == "pat-c1"
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1, warned
    assert "BX-0042" in warned[0] and "pat-a1" in warned[0] and "pat-b1" in warned[0]
    assert "cases/z1/case.yaml" in warned[0] and "cases/z2/case.yaml" in warned[0]


def test_a_path_as_an_id_is_an_error_naming_the_case_file_and_key():
    with pytest.raises(SonomapError, match=r"cases/z1/case.yaml: capture.study_id"):
        patient_groups({"z1": {"capture": {"study_id": "../x"}}}, where={"z1": "cases/z1/case.yaml"})


def test_register_batchs_patient_warning_names_cases_by_place_never_by_folder(tmp_path, caplog):
    """The dataset step's warning about a study id on two patients' cores: a case is named by its
    place among the case files, as every register-batch message names it, since the folders above
    may be named after the patient."""
    root = tmp_path / "Doe_Jane_1970"
    _session(root, {"20261201T1Z-1": "pat-a1", "20261201T1Z-2": "pat-b1"}, study="BX-0042")
    files = {f"c{n}": root / f"20261201T1Z-{n}" / "case.yaml" for n in (1, 2)}
    names = {str(path): f"case {n} of 2" for n, path in enumerate(files.values(), start=1)}
    with caplog.at_level(logging.WARNING):
        rows = patient_rows(files, names)
    assert rows[0][1] == rows[1][1]  # one patient, one split
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "case 1 of 2 (pat-a1)" in warned[0] and "case 2 of 2 (pat-b1)" in warned[0]
    assert "Doe_Jane" not in warned[0] and str(tmp_path) not in warned[0], warned[0]
