"""register-batch --dedup: two patient ids whose ultrasound images are one scan become one split group."""

from __future__ import annotations

import csv
import shutil

import yaml

from registration.batch import register_batch
from registration.sim.biopsy_core import CoreParams
from registration.sim.simulate import SimParams, simulate_cases


def test_dedup_joins_patients_that_share_a_scan(busi_sample, tmp_path):
    cases = tmp_path / "cases"
    s = simulate_cases(
        busi_sample / "images",
        busi_sample / "masks",
        cases,
        3,
        seed=41,
        params=SimParams(core=CoreParams(mpp=8.0)),
    )
    first = cases / s["cases"][0]["case_id"]
    copy = cases / "copy_case1"  # the same scan filed under another patient id
    shutil.copytree(first, copy)
    spec = yaml.safe_load((copy / "case.yaml").read_text())
    spec["id"], spec["patient_id"] = "copy_case1", "OTHER-PATIENT-9"
    (copy / "case.yaml").write_text(yaml.safe_dump(spec))

    plain = register_batch(cases, tmp_path / "plain", progress=False)
    rows = {r["id"]: r for r in csv.DictReader(open(tmp_path / "plain" / "cases.csv"))}
    assert plain["registered"] == 4 and rows["copy_case1"]["case_id"] == "OTHER-PATIENT-9"  # patient ids kept

    register_batch(cases, tmp_path / "dedup", progress=False, dedup=True)
    rows = {r["id"]: r for r in csv.DictReader(open(tmp_path / "dedup" / "cases.csv"))}
    joined = rows[first.name]["case_id"]
    assert "OTHER-PATIENT-9" in joined.split("+") and rows["copy_case1"]["case_id"] == joined
    assert rows["copy_case1"]["split"] == rows[first.name]["split"]
    assert len({r["case_id"] for r in rows.values()}) == 3  # the other patients stay apart
