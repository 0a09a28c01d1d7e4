"""`sonomap cases export` finds cases at any depth, as every other step does (the biopsy loop keeps
one folder per procedure: CASES/<patient>/<case>/), and finding none is an error, not a quiet 0."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from captured_cases import write_captured_case
from pacs_cases import FALLBACK_ID, export

pytest.importorskip("highdicom", reason="highdicom not installed (pacs extra)")

NESTED = ("pat-a/20261201T133844Z-1", "pat-a/20261201T133846Z-2", "pat-b/20261201T133900Z-1")
OTHER_STUDY_ID = "BX-0043"  # pat-b's procedure: its capture 1 is not pat-a's


def _study(name: str) -> str:
    return FALLBACK_ID if name.startswith("pat-a/") else OTHER_STUDY_ID


def _exportable(folder, study_id: str = FALLBACK_ID):
    """A captured case with the pre-fire frame and time the export reads."""
    write_captured_case(folder, np.zeros((120, 200), bool), study_id=study_id)
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["capture"]["pre_fire"] = {"frame": 3, "image": "prefire.png", "utc": "2026-12-01T13:38:44Z"}
    (folder / "case.yaml").write_text(yaml.safe_dump(case))


def _one_line_error(out) -> str:
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_nested_cases_are_all_exported(tmp_path):
    cases = tmp_path / "cases"
    for name in NESTED:
        _exportable(cases / name, _study(name))
    write_captured_case(cases / "pat-b" / ".20261201T133902Z-2.partial")  # being written: skipped
    out = export(cases, "--dry-run", tmp_path / "dcm")  # each case has its own study ID
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"3 case(s) in {cases}" in out.stdout and "3 of 3 case(s) exported, 0 failed" in out.stdout
    for name in NESTED:
        assert (tmp_path / "dcm" / _study(name) / name.split("/")[1] / "image.dcm").is_file()


def test_no_case_found_is_a_one_line_error(tmp_path):
    (tmp_path / "empty" / "pat-a").mkdir(parents=True)
    out = export(tmp_path / "empty", "--dry-run", tmp_path / "dcm", "--study-id", FALLBACK_ID)
    assert f"{tmp_path / 'empty'}: no captured case (*/case.yaml) found" in _one_line_error(out)
    assert not (tmp_path / "dcm").exists()


def test_two_cases_of_one_name_are_refused_before_any_is_written(tmp_path):
    """Same name in two procedure folders: both would be written to OUT/<study>/<case id>/, the
    second over the first."""
    cases = tmp_path / "cases"
    for patient in ("pat-a", "pat-b"):
        write_captured_case(cases / patient / "20261201T133844Z-1")
    line = _one_line_error(export(cases, "--dry-run", tmp_path / "dcm", "--study-id", FALLBACK_ID))
    assert (
        str(cases / "pat-a" / "20261201T133844Z-1") in line
        and str(cases / "pat-b" / "20261201T133844Z-1") in line
    )
    assert not (tmp_path / "dcm").exists()
