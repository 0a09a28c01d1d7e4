"""register-batch: a case changed since it was registered whose new registration fails is not printed
as `registered again`. A full disk stops the run (exit 2) with no summary; a case's own fault (a
broken annotation) is printed as `not registered again`, beside its failure. A real batch of
simulated cases through the real CLI, under a real file size limit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli import sonomap
from file_size_limit import sonomap_with_file_size_limit

LIMIT = 100 * 1024  # bytes: a registration's qa.png never fits, the dataset's other files do


@pytest.fixture()
def registered(simulated_cases, tmp_path):
    cases = Path(shutil.copytree(simulated_cases(2), tmp_path / "cases"))
    ds = tmp_path / "dataset"
    sonomap("register-batch", cases, "--out", ds, "--no-progress")
    first = sorted(cases.rglob("case.yaml"))[0]
    with open(first, "a") as fh:
        fh.write("notes: corrected\n")  # the first case is registered again
    return cases, ds, first


def _again_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.strip().startswith("registered again:")]


def test_a_case_registered_again_on_a_full_disk_is_not_printed_as_registered_and_exits_2(registered):
    cases, ds, _ = registered
    run = sonomap_with_file_size_limit(LIMIT, "register-batch", cases, "--out", ds, "--no-progress")
    assert run.returncode == 2, run.stdout + run.stderr
    assert not _again_lines(run.stdout), run.stdout
    assert "File too large" in run.stderr and "stopped at case 1 of 2" in run.stderr, run.stderr


def test_a_case_changed_since_registered_that_now_fails_is_printed_as_not_registered_again(registered):
    cases, ds, first = registered
    (first.parent / "core.geojson").write_text("{broken")
    run = sonomap("register-batch", cases, "--out", ds, "--no-progress", check=False)
    report = json.loads((ds / "batch_report.json").read_text())
    (failure,) = report["failures"]
    assert not _again_lines(run.stdout), run.stdout
    assert f"  not registered again: {failure['id']} (case 1 of 2: changed since" in run.stdout, run.stdout
    (again,) = report["registered_again"]
    assert again["id"] == failure["id"] and again["failed"] is True and again["moved"] == [], again
    assert [r["id"] for r in report["removed_cases"]] == [failure["id"]], report["removed_cases"]
