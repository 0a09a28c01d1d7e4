"""`sonomap cases export` of two cases filed under one study ID with one capture number (two capture
sessions that both counted from 1) is refused before anything is sent or written: their DICOM series
would share series numbers in one study. The line names the cases by their ids, never by their
folders (named after the patient here) nor by the study ID. The same numbers under different study
IDs export as before."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import yaml
from captured_cases import write_captured_case
from pacs_cases import FALLBACK_ID, STUDY_ID, export

from registration.pacs.segmentation import SEG_SERIES_OFFSET

pytest.importorskip("highdicom", reason="highdicom not installed (pacs extra)")

FIRST_SESSION, SECOND_SESSION = "20261201T133844Z-1", "20261201T150000Z-1"
PATIENT_NAMED = "Doe_Jane_MRN778899"
NUMBER = 1


def _case(folder, case_id: str, study_id: str | None):
    write_captured_case(folder, np.zeros((120, 200), bool), study_id=study_id)
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["id"] = case_id
    case["capture"]["number"] = NUMBER
    case["capture"]["pre_fire"] = {"frame": 3, "image": "prefire.png", "utc": "2026-12-01T13:38:44Z"}
    (folder / "case.yaml").write_text(yaml.safe_dump(case))


def _refused(out) -> str:
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stdout + out.stderr
    line = out.stderr.strip()
    assert len(line.splitlines()) == 1, out.stderr
    return line


@pytest.mark.parametrize("second_study", [STUDY_ID, None], ids=["own-study-id", "by-study-id-option"])
def test_two_sessions_numbered_alike_in_one_study_are_refused_by_case_id(tmp_path, second_study):
    cases = tmp_path / "cases"
    _case(cases / f"{PATIENT_NAMED} session 1", FIRST_SESSION, STUDY_ID)
    _case(cases / f"{PATIENT_NAMED} session 2", SECOND_SESSION, second_study)
    option = () if second_study else ("--study-id", STUDY_ID)  # the fallback files it in the same study
    line = _refused(export(cases, "--dry-run", tmp_path / "dcm", *option))
    assert f"capture {NUMBER}: {FIRST_SESSION}, {SECOND_SESSION}" in line, line
    assert f"series {NUMBER} and {SEG_SERIES_OFFSET + NUMBER}" in line and "nothing was sent" in line
    assert "Doe" not in line and str(tmp_path) not in line and STUDY_ID not in line, line
    assert not (tmp_path / "dcm").exists()


def test_the_same_number_in_different_studies_is_exported(tmp_path):
    cases = tmp_path / "cases"
    _case(cases / "a", FIRST_SESSION, STUDY_ID)
    _case(cases / "b", SECOND_SESSION, FALLBACK_ID)
    out = export(cases, "--dry-run", tmp_path / "dcm")
    assert out.returncode == 0, out.stdout + out.stderr
    for study, case_id in ((STUDY_ID, FIRST_SESSION), (FALLBACK_ID, SECOND_SESSION)):
        image = pydicom.dcmread(tmp_path / "dcm" / study / case_id / "image.dcm")
        assert image.SeriesNumber == NUMBER
