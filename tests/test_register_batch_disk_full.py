"""register-batch on a disk that refuses a write (a real file size limit, EFBIG, as a full disk's
ENOSPC): the run stops at that write with one line naming the file, exit 2, and leaves cases.csv,
images/, labels/ and batch_report.json as they were; carrying on recorded every case as failed, moved
them all to removed/, emptied cases.csv, and the next run split the patients afresh. A real batch of
simulated cases through the real CLI."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from cli import sonomap
from file_size_limit import sonomap_with_file_size_limit

from edge_runtime.case_split import CASES_CSV

LIMIT = 2048  # bytes: a registration's qa.png never fits


@pytest.fixture()
def cases(simulated_cases, tmp_path):
    return Path(shutil.copytree(simulated_cases(3), tmp_path / "cases"))


def _dataset_state(ds: Path) -> dict[str, bytes]:
    files = [ds / CASES_CSV, ds / "batch_report.json", *(ds / "images").glob("*"), *(ds / "labels").glob("*")]
    return {p.relative_to(ds).as_posix(): p.read_bytes() for p in files}


def _splits(ds: Path) -> dict[str, str]:
    with open(ds / CASES_CSV, newline="") as fh:
        return {row["case_id"]: row["split"] for row in csv.DictReader(fh)}


def _edit_every_case(cases: Path) -> None:
    for case_yaml in sorted(cases.rglob("case.yaml")):
        with open(case_yaml, "a") as fh:
            fh.write("notes: corrected\n")  # every case is registered again


def test_a_full_disk_stops_the_batch_and_leaves_the_dataset_and_its_splits_as_they_were(cases, tmp_path):
    ds = tmp_path / "dataset"
    sonomap("register-batch", cases, "--out", ds, "--no-progress")
    before, splits = _dataset_state(ds), _splits(ds)
    assert sorted(splits.values()) == ["test", "train", "val"]  # one patient per split
    _edit_every_case(cases)
    run = sonomap_with_file_size_limit(LIMIT, "register-batch", cases, "--out", ds, "--no-progress")
    assert run.returncode == 2, run.stdout + run.stderr
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, run.stderr
    assert f"{ds}/registration/" in errors[0] and "File too large" in errors[0], errors
    assert "case 1 of 3" in errors[0] and str(cases) not in errors[0], errors
    assert "registered again" not in run.stdout and "removed" not in run.stdout, run.stdout
    assert _dataset_state(ds) == before  # cases.csv, images/, labels/, batch_report.json untouched
    sonomap("register-batch", cases, "--out", ds, "--no-progress")
    assert _splits(ds) == splits  # every patient keeps its split
