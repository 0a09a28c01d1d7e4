"""`sonomap cases export` names a case by its case.yaml `id`, never by its folder's name: a backup copy
of a case folder is refused as a second case with the same id (as register-batch refuses it), and a
folder renamed after the patient puts nothing of that name into the DICOM tags or the dry-run path."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
import yaml
from captured_cases import write_captured_case
from loopback import free_port
from pacs_cases import FALLBACK_ID, export

pytest.importorskip("highdicom", reason="highdicom not installed (pacs extra)")

CASE_ID = "20261201T133844Z-1"
PATIENT_NAMED = "Doe_Jane_MRN778899"


def _exportable(folder, case_id: str = CASE_ID):
    """A captured case in ``folder`` whose case.yaml id is ``case_id``, with the pre-fire frame and
    time the export reads."""
    write_captured_case(folder, np.zeros((120, 200), bool), study_id=FALLBACK_ID)
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["id"] = case_id
    case["capture"]["pre_fire"] = {"frame": 3, "image": "prefire.png", "utc": "2026-12-01T13:38:44Z"}
    (folder / "case.yaml").write_text(yaml.safe_dump(case))
    return folder


def test_a_copied_case_folder_is_refused_naming_both_case_files(tmp_path):
    cases = tmp_path / "cases"
    original = _exportable(cases / CASE_ID)
    copy = shutil.copytree(original, cases / f"{CASE_ID} (copy)")
    out = export(cases, "--dry-run", tmp_path / "dcm")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stdout + out.stderr
    line = out.stderr.strip()
    assert len(line.splitlines()) == 1, out.stderr
    assert str(original / "case.yaml") in line and str(copy / "case.yaml") in line and CASE_ID in line
    assert not (tmp_path / "dcm").exists()


def test_a_folder_named_after_the_patient_stays_out_of_the_export(tmp_path):
    cases = tmp_path / "cases"
    _exportable(cases / PATIENT_NAMED)
    out = export(cases, "--dry-run", tmp_path / "dcm")
    assert out.returncode == 0, out.stdout + out.stderr
    written = sorted((tmp_path / "dcm").rglob("*.dcm"))
    assert [p.relative_to(tmp_path / "dcm").parts[:2] for p in written] == [(FALLBACK_ID, CASE_ID)] * 2
    for path in written:
        ds = pydicom.dcmread(path)
        texts = [
            str(e.value) for e in ds.iterall() if isinstance(e.value, (str, pydicom.valuerep.PersonName))
        ]
        assert not [t for t in texts if "Doe" in t], path
    image = pydicom.dcmread(tmp_path / "dcm" / FALLBACK_ID / CASE_ID / "image.dcm")
    assert image.ImageComments == f"sonomap case {CASE_ID}, frame 3"


@pytest.mark.parametrize("bad_id", [PATIENT_NAMED, 20261201, None])
def test_an_id_that_is_no_capture_id_fails_its_case_without_repeating_it(tmp_path, bad_id):
    cases = tmp_path / "cases"
    _exportable(cases / "20261201T133844Z-1", case_id=bad_id)
    good = _exportable(cases / "20261201T133846Z-2", case_id="20261201T133846Z-2")
    out = export(cases, "--dry-run", tmp_path / "dcm")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stdout + out.stderr
    # not read: labelled by its folder's name, a capture's, and the folder's path left out of the reason
    assert (
        "20261201T133844Z-1  FAILED: case.yaml: id: not a capture id" in out.stdout
        and "Doe" not in out.stdout
    )
    assert (tmp_path / "dcm" / FALLBACK_ID / good.name / "image.dcm").is_file()
    assert "1 of 2 case(s) exported, 1 failed" in out.stdout


def test_a_failed_upload_of_a_folder_named_after_the_patient_is_labelled_by_its_capture_id(tmp_path):
    """The case reads, its upload fails: the FAILED line names it by its case.yaml id, as a sent
    case's line does, never by the folder it was moved into."""
    cases = tmp_path / "cases"
    _exportable(cases / PATIENT_NAMED)
    no_answer = f"http://127.0.0.1:{free_port()}/dicom-web"
    out = export(
        cases, "--dicomweb", no_answer, "--timeout", "2", env={"SONOMAP_DICOMWEB_BASIC": "user:pass"}
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert f"{CASE_ID}  FAILED: upload failed: no answer" in out.stdout, out.stdout
    assert "Doe" not in out.stdout + out.stderr
