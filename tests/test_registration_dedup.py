"""register-batch --dedup: two patient ids whose ultrasound images are one scan become one split group."""

from __future__ import annotations

import csv
import json
import shutil

import yaml
from cli import sonomap

from registration.batch import register_batch
from registration.sim.biopsy_core import CoreParams
from registration.sim.simulate import SimParams, simulate_cases


def cases_with_a_copied_scan(busi_sample, cases, n: int):
    """``n`` simulated cases plus ``copy_case1``: the first case's scan filed under another patient id.
    Returns the first case's folder."""
    s = simulate_cases(
        busi_sample / "images",
        busi_sample / "masks",
        cases,
        n,
        seed=41,
        params=SimParams(core=CoreParams(mpp=8.0)),
    )
    first = cases / s["cases"][0]["case_id"]
    copy = cases / "copy_case1"  # the same scan filed under another patient id
    shutil.copytree(first, copy)
    spec = yaml.safe_load((copy / "case.yaml").read_text())
    spec["id"], spec["patient_id"] = "copy_case1", "OTHER-PATIENT-9"
    (copy / "case.yaml").write_text(yaml.safe_dump(spec))
    return first


def test_dedup_joins_patients_that_share_a_scan(busi_sample, tmp_path):
    cases = tmp_path / "cases"
    first = cases_with_a_copied_scan(busi_sample, cases, 3)

    plain = register_batch(cases, tmp_path / "plain", progress=False)
    rows = {r["id"]: r for r in csv.DictReader(open(tmp_path / "plain" / "cases.csv"))}
    assert plain["registered"] == 4 and rows["copy_case1"]["case_id"] == "OTHER-PATIENT-9"  # patient ids kept
    assert plain["merged_cases"] == []

    register_batch(cases, tmp_path / "dedup", progress=False, dedup=True)
    rows = {r["id"]: r for r in csv.DictReader(open(tmp_path / "dedup" / "cases.csv"))}
    joined = rows[first.name]["case_id"]
    assert "OTHER-PATIENT-9" in joined.split("+") and rows["copy_case1"]["case_id"] == joined
    # the report names the patients joined, each list sorted, as cases.csv's case_id joins them
    report = json.loads((tmp_path / "dedup" / "batch_report.json").read_text())
    assert report["merged_cases"] == [sorted(joined.split("+"))] and len(joined.split("+")) == 2
    assert rows["copy_case1"]["split"] == rows[first.name]["split"]
    assert len({r["case_id"] for r in rows.values()}) == 3  # the other patients stay apart


def test_the_command_prints_each_merge(busi_sample, tmp_path):
    cases = tmp_path / "cases"
    cases_with_a_copied_scan(busi_sample, cases, 2)
    run = sonomap("register-batch", cases, "--out", tmp_path / "ds", "--dedup", "--no-progress")
    patients = json.loads((tmp_path / "ds" / "batch_report.json").read_text())["merged_cases"]
    assert (
        len(patients) == 1
        and f"merged (near-duplicate images, one split): {' + '.join(patients[0])}" in run.stdout
    )
