"""The DICOM objects of captured cases, written by `sonomap cases export --dry-run` (no server): a
case without a study ID fails unless the command gives one, the fractional SEG decodes to the saved
probability, study IDs that are no pseudonym are refused, broken cases are named, and dicom3tools'
validator finds no error in either object."""

from __future__ import annotations

import shutil
import subprocess

import cv2
import numpy as np
import pydicom
import pytest
from pacs_cases import FALLBACK_ID, OBJECTS_PER_CASE, anonymous_cases, case_folders, clip, export  # noqa: F401 (fixtures)

from edge_runtime.image_files import NOT_DECODABLE

highdicom = pytest.importorskip("highdicom", reason="highdicom not installed (pacs extra)")

HALF_STEP = 0.5 / 255 + 1e-6  # fractional SEG: 8-bit probability against the 16-bit PNG


def test_cases_without_a_study_id_fail_unless_the_command_gives_one(anonymous_cases, tmp_path):
    folders = case_folders(anonymous_cases)
    refused = export(anonymous_cases, "--dry-run", tmp_path / "none")
    assert refused.returncode == 1
    assert refused.stdout.count("FAILED: no study ID") == len(folders)
    for n, folder in enumerate(folders):  # --study-id covers one case: each folder on its own
        study_id = f"{FALLBACK_ID}{n}"
        out = export(
            folder, "--dry-run", tmp_path / "dcm", "--study-id", study_id, "--segmentation", "fractional"
        )
        assert out.returncode == 0, out.stdout + out.stderr
        written = tmp_path / "dcm" / study_id / folder.name
        image = pydicom.dcmread(written / "image.dcm")
        seg = highdicom.seg.segread(written / "seg-fractional.dcm")  # beside a binary seg.dcm, not over it
        assert image.PatientID == seg.PatientID == study_id and seg.SegmentationType == "FRACTIONAL"
        prob = cv2.imread(str(folder / "prefire_prob.png"), cv2.IMREAD_UNCHANGED) / 65535.0
        decoded = seg.get_pixels_by_source_instance([image.SOPInstanceUID], segment_numbers=[1])[0, :, :, 0]
        assert np.abs(decoded - prob).max() <= HALF_STEP


@pytest.mark.parametrize(
    "bad", ["Jane Doe", "Doe^Jane", "12345678", "Smith", "BX/0042", "BX-00420000000000000"]
)
def test_export_refuses_a_study_id_that_is_no_pseudonym(anonymous_cases, tmp_path, bad):
    out = export(anonymous_cases, "--dry-run", tmp_path / "dcm", "--study-id", bad)
    assert (
        out.returncode != 0
        and "--study-id refused" in out.stderr
        and len(out.stderr.strip().splitlines()) == 1
    )
    assert bad not in out.stdout + out.stderr  # it may be a patient's name: never repeated
    assert not (tmp_path / "dcm").exists()


def test_each_broken_case_is_named_with_its_file_and_key(anonymous_cases, tmp_path):
    cases = tmp_path / "cases"
    shutil.copytree(anonymous_cases, cases)
    broken, good = case_folders(cases)
    text = (broken / "case.yaml").read_text()
    (broken / "case.yaml").write_text(text.replace("sha256:", "sha_256:"))
    (good / "prefire_mask.png").write_bytes(b"not a png")
    (tmp_path / "cases" / ".20261130T000000Z-9.partial").mkdir()  # half-written: never read
    out = export(cases, "--dry-run", tmp_path / "dcm")  # each fails reading its files, before its study ID
    assert out.returncode == 1
    assert f"{broken.name}  FAILED: case.yaml: capture.model.sha256: expected str, got None" in out.stdout
    assert (
        f"{good.name}  FAILED: case.yaml: capture.prediction.mask: prefire_mask.png: unreadable image "
        f"({NOT_DECODABLE})" in out.stdout
    )
    assert "2 case(s) in" in out.stdout


@pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dciodvfy not installed (Debian package dicom3tools)"
)
@pytest.mark.parametrize("kind", ["binary", "fractional"])
def test_the_objects_pass_the_dicom_validator(anonymous_cases, tmp_path, kind):
    """dicom3tools' dciodvfy checks each object against its IOD: no errors (warnings are listed in
    docs/pacs-export.md)."""
    for n, folder in enumerate(case_folders(anonymous_cases)):  # --study-id covers one case
        out = export(folder, "--dry-run", tmp_path, "--study-id", f"{FALLBACK_ID}{n}", "--segmentation", kind)
        assert out.returncode == 0, out.stdout + out.stderr
    files = sorted(tmp_path.glob(f"{FALLBACK_ID}*/*/*.dcm"))
    assert len(files) == OBJECTS_PER_CASE * len(case_folders(anonymous_cases))
    for path in files:
        check = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
        report = check.stdout + check.stderr
        assert ("SCImage" if path.name == "image.dcm" else "Segmentation") in report
        assert not [line for line in report.splitlines() if line.startswith("Error")], report
