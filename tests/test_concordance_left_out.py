"""`sonomap concordance` on registered cores the dataset does not hold, after real register-batch runs:
each skipped core says what the last run's batch_report.json records of it (held for review with a
quality below --min-quality, its registration failed, or removed from the dataset and not held), and
a missing or damaged batch_report.json is said in the reason, naming the file, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from cli import EXIT_USER_ERROR, simulate_biopsy, sonomap

from edge_runtime.batch_report import BATCH_REPORT
from training.concordance.cases_folder import load_cores

PATIENT_FOLDER = "Doe_Jane_1970"  # a folder above the cases and the dataset, named after the patient
PENDING, FAILED, HELD = "sim_0000", "sim_0001", "sim_0002"
HELD_REASON = "held for review: quality below --min-quality"
REMOVED_REASON = "removed from the dataset by the last register-batch run, or never registered into it"
# the batch names the case by its place among its own case files, said to be the batch's
FAILED_REASON = "its registration failed in the last register-batch run: needle.tip"
FAILED_PLACE = "(the batch's case 2 of 3)"
UNKNOWN_REASON = "held for review or removed from the dataset; which is unknown"
NOT_A_REPORT = "dataset/batch_report.json: not a register-batch report"


def _edit(case_yaml, section: str, **values) -> None:
    case = yaml.safe_load(case_yaml.read_text())
    case[section].update(values)
    case_yaml.write_text(yaml.safe_dump(case, sort_keys=False))


@pytest.fixture(scope="module")
def batch(tmp_path_factory, busi_sample):
    """CASES and DATASET after two register-batch runs: the first puts all three cases in the dataset;
    before the second, one case loses its slide (pending) and one gets a broken needle tip (failed),
    and the second, with --min-quality 1, holds the third for review. All three keep their
    registration/<id>/report.json and leave images/."""
    root = tmp_path_factory.mktemp("left_out") / PATIENT_FOLDER
    cases, ds = root / "cases", root / "dataset"
    simulate_biopsy(busi_sample, cases, n=3, seed=0)
    sonomap("register-batch", cases, "--out", ds, "--no-progress")
    _edit(cases / PENDING / "case.yaml", "pathology", wsi=None)
    _edit(cases / FAILED / "case.yaml", "needle", tip="abc")
    sonomap("register-batch", cases, "--out", ds, "--no-progress", "--min-quality", "1")
    report = json.loads((ds / "batch_report.json").read_text())
    assert [h["id"] for h in report["low_quality"]] == [HELD], report["low_quality"]
    assert [f.get("id") for f in report["failures"]] == [FAILED], report["failures"]
    assert not list((ds / "images").glob("*.png"))
    assert all((ds / "registration" / i / "report.json").is_file() for i in (PENDING, FAILED, HELD))
    return cases, ds


def _reasons(cases, ds) -> dict[str, str]:
    cores, skipped = load_cores(cases, ds)
    assert cores == []
    return {s["case"]: s["reason"] for s in skipped}


def test_each_core_left_out_says_what_the_last_run_did_with_it(batch):
    reasons = _reasons(*batch)
    assert HELD_REASON in reasons[HELD], reasons[HELD]
    assert FAILED_REASON in reasons[FAILED] and reasons[FAILED].endswith(FAILED_PLACE), reasons[FAILED]
    assert REMOVED_REASON in reasons[PENDING] and "not held for review" in reasons[PENDING], reasons[PENDING]
    assert HELD_REASON not in reasons[PENDING] + reasons[FAILED]
    assert all(r.startswith("case.yaml: not in dataset/images: ") for r in reasons.values()), reasons
    assert all(PATIENT_FOLDER not in r for r in reasons.values()), reasons


def test_the_batch_report_is_read_once_for_every_core_it_explains(batch, monkeypatch):
    """Three cores missing from the dataset, one batch_report.json read: every read of the file is
    counted by a wrapper that still reads it, and the reasons stay those the report gives."""
    reads = []
    read_text = Path.read_text

    def counted_read_text(path, *args, **kwargs):
        if path.name == BATCH_REPORT:
            reads.append(path)
        return read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counted_read_text)
    reasons = _reasons(*batch)
    assert set(reasons) == {PENDING, FAILED, HELD}
    assert HELD_REASON in reasons[HELD] and FAILED_REASON in reasons[FAILED], reasons
    assert REMOVED_REASON in reasons[PENDING], reasons
    assert len(reads) == 1, f"{BATCH_REPORT} read {len(reads)} times for {len(reasons)} cores"


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("missing", "without its batch_report.json"),
        ('{"low_quality": [', f"{NOT_A_REPORT} (JSONDecodeError)"),
        ('{"low_quality": [{"case": "case 3 of 3"}]}', f"{NOT_A_REPORT} (KeyError)"),  # held, without its id
        ('["not", "a", "report"]', f"{NOT_A_REPORT} (AttributeError)"),
    ],
    ids=["missing", "cut-short", "held-without-id", "a-list"],
)
def test_a_missing_or_damaged_batch_report_is_said_in_the_reason(batch, tmp_path, damage, named):
    cases, ds = batch
    ds = shutil.copytree(ds, tmp_path / PATIENT_FOLDER / "dataset")
    if damage == "missing":
        (ds / "batch_report.json").unlink()
    else:
        (ds / "batch_report.json").write_text(damage)
    reasons = _reasons(cases, ds)
    assert set(reasons) == {PENDING, FAILED, HELD}
    for reason in reasons.values():
        assert f"not in dataset/images: {UNKNOWN_REASON}" in reason and named in reason, reason
        assert PATIENT_FOLDER not in reason
    r = sonomap("concordance", cases, "--dataset", ds, "--out", tmp_path / "report", check=False)
    assert r.returncode == EXIT_USER_ERROR and "Traceback" not in r.stderr, r.stderr
    assert named in r.stderr and r.stderr.count("\n") == 1, r.stderr
