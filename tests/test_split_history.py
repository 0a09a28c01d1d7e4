"""register-batch's split_history.csv: cases.csv lists only the cases in the dataset now, so the split
each core ever had (with its patient) is remembered there, and a patient whose cores left the dataset
for a while (a failed registration, a withdrawn slide) comes back in the split it had: one evaluated
in test must never come back in train. cases.csv still decides for a patient with a core in it (a
hand-moved patient stays moved), and a damaged history stops the run before anything moves. Real
register-batch runs on simulated cases."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml
from cli import sonomap

from registration.batch import register_batch

N_CASES = 5


@pytest.fixture()
def cases(simulated_cases, tmp_path):
    return Path(shutil.copytree(simulated_cases(N_CASES), tmp_path / "cases"))


def _split_of(ds) -> dict[str, tuple[str, str]]:
    with open(ds / "cases.csv", newline="") as fh:
        return {r["id"]: (r["case_id"], r["split"]) for r in csv.DictReader(fh)}


def _history(ds) -> dict[str, tuple[str, str]]:
    with open(ds / "split_history.csv", newline="") as fh:
        return {r["id"]: (r["case_id"], r["split"]) for r in csv.DictReader(fh)}


def _patient(case_yaml: Path, patient: str) -> None:
    case = yaml.safe_load(case_yaml.read_text())
    case["patient_id"] = patient
    case_yaml.write_text(yaml.safe_dump(case))


def test_a_patient_whose_cores_all_failed_gets_its_split_back_once_they_register_again(
    simulated_cases, tmp_path
):
    """The patient's only core failed for a while (its annotation broken); meanwhile a new patient
    came and took the emptied test place. Without the history the core came back in train."""
    cases = Path(shutil.copytree(simulated_cases(N_CASES + 1), tmp_path / "cases"))
    later = sorted(p.name for p in cases.iterdir())[-1]
    aside = tmp_path / "later"
    shutil.move(cases / later, aside)  # its biopsy comes later
    ds = tmp_path / "ds"
    register_batch(cases, ds, progress=False)
    first = _split_of(ds)
    (tested,) = [i for i, (_, split) in first.items() if split == "test"]
    annotation = cases / tested / "core.geojson"
    good = annotation.read_bytes()
    annotation.write_text("{broken")
    shutil.move(aside, cases / later)
    register_batch(cases, ds, progress=False)
    assert tested not in _split_of(ds) and _split_of(ds)[later][1] == "test"  # the new patient took it
    annotation.write_bytes(good)  # the lab sent the annotation again
    report = register_batch(cases, ds, progress=False)
    assert report["registered"] == 1 and not report["moved_cases"]
    assert _split_of(ds)[tested] == first[tested]
    assert _history(ds) == _split_of(ds)


def test_a_new_core_of_a_patient_whose_cores_are_all_out_joins_the_split_they_had(simulated_cases, tmp_path):
    """The history keeps each core's patient: a new core of a patient whose earlier cores are all out
    of the dataset goes where they were (a new patient arriving with it takes another place), and they
    come back there, never split afresh apart."""
    cases = Path(shutil.copytree(simulated_cases(N_CASES + 2), tmp_path / "cases"))
    *_, new_core, new_patient = sorted(p.name for p in cases.iterdir())
    aside = tmp_path / "aside"
    for name in (new_core, new_patient):
        shutil.move(cases / name, aside / name)
    ds = tmp_path / "ds"
    register_batch(cases, ds, progress=False)
    (tested,) = [i for i, (_, split) in _split_of(ds).items() if split == "test"]
    patient = _split_of(ds)[tested][0]
    annotation = cases / tested / "core.geojson"
    good = annotation.read_bytes()
    annotation.write_text("{broken")  # the patient's only core leaves the dataset
    _patient(aside / new_core / "case.yaml", patient)  # a second biopsy of the same patient
    for name in (new_core, new_patient):
        shutil.move(aside / name, cases / name)
    register_batch(cases, ds, progress=False)
    assert tested not in _split_of(ds) and _split_of(ds)[new_core] == (patient, "test")
    annotation.write_bytes(good)
    register_batch(cases, ds, progress=False)
    assert _split_of(ds)[tested] == _split_of(ds)[new_core] == (patient, "test")


def test_a_patient_moved_by_hand_in_cases_csv_stays_moved_when_its_other_cores_return(cases, tmp_path):
    """cases.csv decides for a patient with a core in it: the history of cores that were out does not
    outvote a move made by hand (the docs' advice when a split has no cancer)."""
    names = sorted(p.name for p in cases.iterdir())
    for name in names[:3]:
        _patient(cases / name / "case.yaml", "PX-01")
    ds = tmp_path / "ds"
    register_batch(cases, ds, progress=False)
    was = _split_of(ds)[names[0]][1]
    moved_to = next(s for s in ("test", "val", "train") if s != was)
    good = {name: (cases / name / "core.geojson").read_bytes() for name in names[1:3]}
    for name in good:
        (cases / name / "core.geojson").write_text("{broken")  # two of its three cores leave
    register_batch(cases, ds, progress=False)
    rows = (ds / "cases.csv").read_text().replace(f"PX-01,{was}", f"PX-01,{moved_to}")
    (ds / "cases.csv").write_text(rows)  # its remaining core moved by hand
    for name, annotation in good.items():  # the lab sends the two annotations again
        (cases / name / "core.geojson").write_bytes(annotation)
    report = register_batch(cases, ds, progress=False)
    assert {_split_of(ds)[n] for n in names[:3]} == {("PX-01", moved_to)}
    # the two returning cores follow their patient, and are listed as moved from where they were
    assert report["moved_cases"] == [{"id": n, "from": was, "to": moved_to} for n in names[1:3]]


def test_a_damaged_split_history_stops_the_run_before_anything_moves(cases, tmp_path):
    ds = tmp_path / "ds"
    register_batch(cases, ds, progress=False)
    before = (ds / "cases.csv").read_bytes()
    shutil.rmtree(cases / sorted(p.name for p in cases.iterdir())[0])  # would leave the dataset
    (ds / "split_history.csv").write_text("id,case_id,split\nsrc-1,P-1,holdout\n")
    run = sonomap("register-batch", cases, "--out", ds, "--no-progress", check=False)
    assert run.returncode == 2, run.stderr
    assert "split_history.csv:2: needs an id, a case_id and a split in ['train', 'val', 'test']" in run.stderr
    assert "'holdout'" in run.stderr
    assert (ds / "cases.csv").read_bytes() == before and not (ds / "removed").exists()


def test_an_id_listed_twice_in_split_history_stops_the_run_before_anything_moves(cases, tmp_path):
    """Two rows for one id (a hand edit, two copies of the file joined) cannot say which split its
    patient was evaluated in: taking the last would bring a core that left test back in train,
    unlisted among the moved cases. The run stops naming both lines, as cases.csv's reader does."""
    ds = tmp_path / "ds"
    register_batch(cases, ds, progress=False)
    (tested,) = [i for i, (_, split) in _split_of(ds).items() if split == "test"]
    patient = _split_of(ds)[tested][0]
    aside = tmp_path / "aside"
    shutil.move(cases / tested, aside)  # its core leaves the dataset for a while
    register_batch(cases, ds, progress=False)
    history = ds / "split_history.csv"
    history.write_text(history.read_text() + f"{tested},{patient},train\n")
    shutil.move(aside, cases / tested)
    before = (ds / "cases.csv").read_bytes()
    run = sonomap("register-batch", cases, "--out", ds, "--no-progress", check=False)
    assert run.returncode == 2, run.stderr
    line = len(history.read_text().splitlines())
    assert f"split_history.csv:{line}: id '{tested}' listed twice (first on line " in run.stderr
    assert (ds / "cases.csv").read_bytes() == before and not (ds / "images" / f"{tested}.png").exists()
