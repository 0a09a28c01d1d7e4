"""The dataset register-batch leaves holds exactly the cases registered from their current inputs in
this CASES_DIR: a case retracted to pending, one that now fails (in registration or at load) and one
deleted from CASES_DIR leave cases.csv, images/ and labels/; their image and label are moved to
removed/ and listed (batch_report.json and stdout, with the count), never deleted unreported.
--min-quality also holds out cases already done, by their stored quality score."""

from __future__ import annotations

import csv
import json
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


def _ids(ds) -> set[str]:
    with open(ds / "cases.csv", newline="") as fh:
        return {r["id"] for r in csv.DictReader(fh)}


def _pngs(ds, folder) -> set[str]:
    return {p.stem for p in (ds / folder).glob("*.png")}


def test_retracted_failing_and_deleted_cases_leave_the_dataset_and_are_listed(cases, tmp_path):
    ds = tmp_path / "ds"
    sonomap("register-batch", cases, "--out", ds, "--no-progress")
    retracted, failing, unloadable, deleted, kept = sorted(p.name for p in cases.iterdir())
    assert _ids(ds) == {retracted, failing, unloadable, deleted, kept}
    old_label = (ds / "labels" / f"{failing}.png").read_bytes()

    case = yaml.safe_load((cases / retracted / "case.yaml").read_text())
    case["pathology"]["wsi"] = None  # the lab withdrew the slide: pending again
    (cases / retracted / "case.yaml").write_text(yaml.safe_dump(case))
    (cases / failing / "core.geojson").write_text("{broken")  # its registration now fails
    (cases / unloadable / "case.yaml").write_text("id: [unclosed\n")  # its case.yaml no longer loads
    shutil.rmtree(cases / deleted)

    out = sonomap("register-batch", cases, "--out", ds, "--no-progress")
    report = json.loads((ds / "batch_report.json").read_text())
    assert (report["skipped_done"], report["pending"], report["failed"]) == (1, 1, 2)
    gone = {retracted, failing, unloadable, deleted}
    assert _ids(ds) == {kept}  # sonomap train reads cases.csv: only the current case
    assert _pngs(ds, "images") == _pngs(ds, "labels") == {kept}
    assert _pngs(ds, "removed/images") == _pngs(ds, "removed/labels") == gone
    # the failed re-registration did not cost the earlier label before it failed: set aside intact
    assert (ds / "removed" / "labels" / f"{failing}.png").read_bytes() == old_label
    assert report["removed"] == 4
    reasons = {r["id"]: r["reason"] for r in report["removed_cases"]}
    assert set(reasons) == gone
    assert reasons[retracted].startswith("pending") and reasons[failing].startswith("failed")
    assert reasons[unloadable].startswith("failed") and reasons[deleted].startswith("no case.yaml")
    assert "removed from the dataset: 4" in out.stdout
    assert all(f"  removed: {i} (" in out.stdout for i in gone)

    again = register_batch(cases, ds, progress=False)  # nothing left to remove: none listed twice
    assert again["removed"] == 0 and _ids(ds) == {kept}


def test_min_quality_holds_out_cases_already_done(cases, tmp_path):
    ds = tmp_path / "ds"
    register_batch(cases, ds, progress=False)
    scores = {
        p.parent.name: json.loads(p.read_text())["quality"]["score"]
        for p in (ds / "registration").glob("*/report.json")
    }
    q = max(scores.values())
    low = {i for i, score in scores.items() if score < q}
    assert low and low != set(scores)  # the simulated cases differ in quality
    out = sonomap("register-batch", cases, "--out", ds, "--no-progress", "--min-quality", q)
    report = json.loads((ds / "batch_report.json").read_text())
    assert report["registered"] == 0  # decided by the stored scores, without registering again
    assert {h["id"] for h in report["low_quality"]} == low and report["held_for_review"] == len(low)
    assert _ids(ds) == _pngs(ds, "images") == set(scores) - low
    assert _pngs(ds, "removed/labels") == low
    assert all((ds / "registration" / i / "qa.png").is_file() for i in low)  # kept for review
    assert all(f"  review: {i} quality" in out.stdout for i in low)


def _split_of(ds) -> dict[str, tuple[str, str]]:
    with open(ds / "cases.csv", newline="") as fh:
        return {r["id"]: (r["case_id"], r["split"]) for r in csv.DictReader(fh)}


def test_cores_sharing_a_study_id_are_one_patient_even_when_the_lab_named_only_one(cases, tmp_path):
    """A session's cores carry its study id; the lab's patient id came back on one slide only. Both
    cores are one patient in one split, also after a later run joins a third core to them."""
    first, second, third, *_ = sorted(p.name for p in cases.iterdir())
    for name, extra in ((first, {"pathology": {"patient_id": "pat-a1"}}), (second, {})):
        path = cases / name / "case.yaml"
        case = yaml.safe_load(path.read_text())
        case.pop("patient_id", None)
        case.setdefault("capture", {})["study_id"] = "BX-0042"
        case["pathology"].update(extra.get("pathology", {}))
        path.write_text(yaml.safe_dump(case))
    ds = tmp_path / "ds"
    register_batch(cases, ds, progress=False)
    rows = _split_of(ds)
    assert rows[first] == rows[second] and rows[first][0] == "pat-a1"
    # the third core turns out to be the same patient's: it joins the split the group already had
    path = cases / third / "case.yaml"
    case = yaml.safe_load(path.read_text())
    case.pop("patient_id", None)
    case["pathology"]["patient_id"] = "pat-a1"
    path.write_text(yaml.safe_dump(case))
    register_batch(cases, ds, progress=False)
    again = _split_of(ds)
    assert again[first] == again[second] == again[third] == rows[first]
