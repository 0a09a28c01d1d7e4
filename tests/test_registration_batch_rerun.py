"""register-batch re-runs: a case.yaml edited after registration is registered again (its patient
never stale in cases.csv), a damaged report.json is one failed case naming the file, not a crash,
and cases sharing an id are all refused before anything is registered."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from registration.batch import register_batch
from registration.batch_summary import summary_lines


@pytest.fixture()
def cases(simulated_cases, tmp_path):
    return Path(shutil.copytree(simulated_cases(2), tmp_path / "cases"))


def _rows(ds) -> dict:
    with open(ds / "cases.csv", newline="") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


def _edit(case_yaml, **keys):
    c = yaml.safe_load(case_yaml.read_text())
    c.update(keys)
    case_yaml.write_text(yaml.safe_dump(c))


def test_a_corrected_patient_id_is_registered_again_and_keeps_the_patient_in_one_split(cases, tmp_path):
    ds = tmp_path / "ds"
    register_batch(cases, ds, progress=False)
    first, second = sorted(_rows(ds))
    was = {cid: row["split"] for cid, row in _rows(ds).items()}
    assert set(was.values()) == {"train", "test"}  # two patients: one in train, one in test
    _edit(cases / first / "case.yaml", patient_id=_rows(ds)[second]["case_id"])  # both cores: one patient
    s = register_batch(cases, ds, progress=False)
    assert (s["registered"], s["skipped_done"], s["failed"]) == (1, 1, 0)
    assert [a["id"] for a in s["registered_again"]] == [first]
    rows = _rows(ds)
    assert rows[first]["case_id"] == rows[second]["case_id"] and rows[first]["split"] == rows[second]["split"]
    # the move is reported, and the split it emptied (a tie goes to train, the first in SPLITS)
    (moved,) = [cid for cid in was if was[cid] != rows[cid]["split"]]
    assert s["moved_cases"] == [{"id": moved, "from": "test", "to": "train"}]
    assert s["emptied_splits"] == ["test"]
    printed = summary_lines(s, ds)
    assert (
        f"  moved: {moved} from test to train (its patient now has cases there: one split per patient)"
        in printed
    )
    assert any(line.startswith("warning: split 'test' is empty now") for line in printed)
    report = json.loads((ds / "registration" / first / "report.json").read_text())
    assert report["patient_id"] == rows[second]["case_id"]
    again = register_batch(cases, ds, progress=False)  # now up to date: skipped
    assert (again["registered"], again["skipped_done"]) == (0, 2)


def test_a_damaged_report_json_fails_that_case_only_and_the_batch_finishes(cases, tmp_path):
    ds = tmp_path / "ds"
    register_batch(cases, ds, progress=False)
    first, second = sorted(_rows(ds))
    (ds / "registration" / first / "report.json").write_text('{"patient_id": ')  # a case of this run
    ghost = ds / "registration" / "ghost" / "report.json"  # a case of an earlier run's cases folder
    ghost.parent.mkdir()
    ghost.write_text('{"patient_id": ')
    (ds / "batch_report.json").unlink()
    s = register_batch(cases, ds, progress=False)
    assert (s["registered"], s["skipped_done"], s["failed"]) == (1, 1, 1)
    assert [a["id"] for a in s["registered_again"]] == [first]
    # a dataset file is named by its path in the dataset
    assert s["failures"][0]["case"] == "registration/ghost/report.json"
    assert s["failures"][0]["error"].startswith("registration/ghost/report.json: damaged report.json")
    assert set(_rows(ds)) == {first, second}
    assert json.loads((ds / "batch_report.json").read_text())["failed"] == 1


def test_cases_sharing_an_id_are_all_refused_and_none_is_taken_as_done(cases, tmp_path):
    ds = tmp_path / "ds"
    original = sorted(p for p in cases.iterdir() if p.is_dir())[0]
    case_id = yaml.safe_load((original / "case.yaml").read_text())["id"]
    dup = cases / "dup"
    shutil.move(original, dup / "m_case")
    register_batch(cases, ds, progress=False)
    label = (ds / "labels" / f"{case_id}.png").read_bytes()
    shutil.copytree(dup / "m_case", dup / "a_case")  # the same id, sorting first
    _edit(dup / "a_case" / "case.yaml", notes="a copy")
    s = register_batch(cases, ds, progress=False)
    assert s["failed"] == 2 and s["registered"] == 0 and case_id not in s["skipped"]
    # dup/a_case and dup/m_case sort first of the three case files; each names the other by its place
    errors = {f["case"]: f["error"] for f in s["failures"]}
    assert errors["case 1 of 3"] == (
        f"case 1 of 3: case id {case_id!r} is also used by case 2 of 3; give each case its own id"
    )
    assert errors["case 2 of 3"] == (
        f"case 2 of 3: case id {case_id!r} is also used by case 1 of 3; give each case its own id"
    )
    assert str(cases) not in json.dumps(s["failures"])
    # an ambiguous id leaves the dataset, and nothing already written is lost: set aside, reported
    assert not (ds / "labels" / f"{case_id}.png").exists() and case_id not in _rows(ds)
    assert (ds / "removed" / "labels" / f"{case_id}.png").read_bytes() == label
    assert [r["id"] for r in s["removed_cases"]] == [case_id] and s["removed"] == 1


def test_a_broken_annotation_fails_naming_the_case_file_and_the_annotation(cases, tmp_path):
    broken = sorted(p for p in cases.iterdir() if p.is_dir())[0]
    gj = json.loads((broken / "core.geojson").read_text())
    gj["features"][0]["geometry"] = {"type": "MultiPolygon", "coordinates": [[]]}
    (broken / "core.geojson").write_text(json.dumps(gj))
    s = register_batch(cases, tmp_path / "ds", progress=False)
    assert (s["registered"], s["failed"]) == (1, 1)
    error = s["failures"][0]["error"]
    # the annotation is named by its case.yaml key: file names may carry the patient's name
    assert error.startswith("case 1 of 2: pathology.annotations feature 0: a polygon without rings")
    assert "core.geojson" not in error and str(cases) not in error
    assert error.count("case 1 of 2") == 1


def test_an_edited_case_that_now_fails_leaves_the_dataset_and_lists_as_failed(cases, tmp_path):
    from registration.cases.listing import list_cases

    ds = tmp_path / "ds"
    register_batch(cases, ds, progress=False)
    first, second = sorted(_rows(ds))
    _edit(cases / first / "case.yaml", notes="slide re-scanned")
    (cases / first / "core.geojson").write_text("{broken")
    s = register_batch(cases, ds, progress=False)
    assert [a["id"] for a in s["registered_again"]] == [first] and s["failed"] == 1
    assert set(_rows(ds)) == {second}  # its earlier version's image and label are not kept
    states = {status.id: state for status, state in list_cases(cases, ds)}
    assert states == {first: "failed", second: "registered"}


def test_a_run_stopped_between_a_cases_new_copies_never_leaves_its_old_label_taken_as_done(
    cases, tmp_path, monkeypatch
):
    """The pathologist revises an annotation (the cancer outline becomes stroma); the re-run is
    stopped (Ctrl-C, power) after the new report.json and images/ copy, before labels/. The next run
    must not take the case as done with labels/ still the old, cancer-bearing label training reads."""
    import registration.batch_dataset as batch_dataset

    ds = tmp_path / "ds"
    register_batch(cases, ds, progress=False)
    first, _ = sorted(_rows(ds))
    annotation = cases / first / "core.geojson"
    assert '"Tumor"' in annotation.read_text()
    annotation.write_text(annotation.read_text().replace('"Tumor"', '"Stroma"'))
    write = batch_dataset.atomic_write_png

    def stopped_before_labels(path, image):
        if Path(path).parent.name == "labels":
            raise KeyboardInterrupt  # the process ends here
        write(path, image)

    monkeypatch.setattr(batch_dataset, "atomic_write_png", stopped_before_labels)
    with pytest.raises(KeyboardInterrupt):
        register_batch(cases, ds, progress=False)
    monkeypatch.undo()
    s = register_batch(cases, ds, progress=False)
    assert first in [d["id"] for d in s["done"]]  # registered again, not skipped as done
    registered = cv2.imread(str(ds / "registration" / first / "label.png"), cv2.IMREAD_UNCHANGED)
    trained = cv2.imread(str(ds / "labels" / f"{first}.png"), cv2.IMREAD_UNCHANGED)
    assert not (registered == 1).any() and np.array_equal(trained, registered)
