"""`sonomap cases export --study-id ID` on real captured cases (`sonomap replay --cases` on the
synthetic procedure clip): ID is one pseudonym, so it may stand in for one case captured without a
study ID. Several such cases may be several patients: the export refuses up front, before anything
is written or sent, in one line naming how many and which case folders, and asks for them one at a
time; one such case among cases with their own study ID goes under ID."""

from __future__ import annotations

import shutil

import pydicom
import pytest
import yaml
from loopback import free_port
from pacs_cases import FALLBACK_ID, STUDY_ID, anonymous_cases, case_folders, cases, clip, export  # noqa: F401 (fixtures)

pytest.importorskip("highdicom", reason="highdicom not installed (pacs extra)")
pytest.importorskip("dicomweb_client.api", reason="dicomweb-client not installed (pacs extra)")


def _one_line_error(out) -> str:
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_several_cases_without_a_study_id_are_refused_before_any_is_written(anonymous_cases, tmp_path):
    folders = case_folders(anonymous_cases)
    assert len(folders) > 1
    for folder in folders:  # captured without --study-id
        assert "study_id" not in yaml.safe_load((folder / "case.yaml").read_text())["capture"]
    out = export(anonymous_cases, "--dry-run", tmp_path / "dcm", "--study-id", FALLBACK_ID)
    line = _one_line_error(out)
    assert line.startswith("sonomap cases: error: ")
    assert f"{len(folders)} cases" in line and "one at a time" in line
    assert all(str(folder) in line for folder in folders)
    assert out.stdout == "" and not (tmp_path / "dcm").exists()


def test_several_cases_without_a_study_id_send_nothing(anonymous_cases):
    """Refused before the PACS is asked anything: no port listens there, and no case is tried."""
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    out = export(anonymous_cases, "--dicomweb", url, "--study-id", FALLBACK_ID, "--timeout", 2)
    assert "one at a time" in _one_line_error(out) and "FAILED" not in out.stdout


def test_one_case_without_a_study_id_goes_under_the_given_one(anonymous_cases, cases, tmp_path):
    """Capture numbers differ, so the folder names (<time>-<number>) do too."""
    mixed = tmp_path / "mixed"
    lone = case_folders(anonymous_cases)[0]
    own = case_folders(cases)[1:]
    for folder in [lone, *own]:
        shutil.copytree(folder, mixed / folder.name)
    out = export(mixed, "--dry-run", tmp_path / "dcm", "--study-id", FALLBACK_ID)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{lone.name}  {FALLBACK_ID}  wrote" in out.stdout
    assert pydicom.dcmread(tmp_path / "dcm" / FALLBACK_ID / lone.name / "image.dcm").StudyID == FALLBACK_ID
    for folder in own:
        assert f"{folder.name}  {STUDY_ID}  wrote" in out.stdout
        assert (tmp_path / "dcm" / STUDY_ID / folder.name / "image.dcm").is_file()
