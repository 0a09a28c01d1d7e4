"""`sonomap cases export` on hand-edited case.yaml values: a pre-fire time with an offset from UTC is
converted to UTC (its UTC day decides the study), a time without one is refused naming the key, and
a path value is never repeated in a FAILED line: the key is named, with the file's base name at
most, since the folders on the way may be named after the patient."""

from __future__ import annotations

import cv2
import numpy as np
import pydicom
import pytest
import yaml
from captured_cases import write_captured_case
from pacs_cases import FALLBACK_ID, export

pytest.importorskip("highdicom", reason="highdicom not installed (pacs extra)")

EXIT_SOME_FAILED = 1
PATIENT_FOLDER = "Kowalczyk_Zbigniew_19650312"
PATIENT_PARTS = ("Kowalczyk_Zbigniew", "Zbigniew", "19650312")  # the file's base name keeps "Kowalczyk"


def _case(root, name: str, utc: str = "2026-12-03T22:00:00Z", image: str = "prefire.png"):
    """A captured case with the pre-fire frame and time the export reads."""
    folder = write_captured_case(root / name, np.zeros((120, 200), bool), study_id=FALLBACK_ID)
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["capture"]["pre_fire"] = {"frame": 3, "image": image, "utc": utc}
    (folder / "case.yaml").write_text(yaml.safe_dump(case))
    return folder


def test_a_time_with_an_offset_is_converted_to_utc_and_filed_in_that_days_study(tmp_path):
    cases = tmp_path / "cases"
    offset = _case(cases, "20261203T213001Z-1", utc="2026-12-04T02:30:00+05:00")  # 21:30 UTC on the 3rd
    same_day = _case(cases, "20261203T220001Z-2", utc="2026-12-03T22:00:00Z")
    out = export(cases, "--dry-run", tmp_path / "dcm")
    assert out.returncode == 0, out.stdout + out.stderr
    written = tmp_path / "dcm" / FALLBACK_ID
    image = pydicom.dcmread(written / offset.name / "image.dcm")
    other = pydicom.dcmread(written / same_day.name / "image.dcm")
    assert (image.StudyDate, image.ContentDate, image.ContentTime) == (
        "20261203",
        "20261203",
        "213000.000000",
    )
    assert image.AcquisitionDateTime == "20261203213000.000000+0000"
    assert image.StudyInstanceUID == other.StudyInstanceUID  # both cores of that UTC day: one study
    seg = pydicom.dcmread(written / offset.name / "seg.dcm")
    assert (seg.StudyDate, seg.StudyInstanceUID) == ("20261203", image.StudyInstanceUID)


def test_a_time_without_an_offset_fails_its_case_naming_the_key(tmp_path):
    cases = tmp_path / "cases"
    naive = _case(cases, "20261203T213001Z-1", utc="2026-12-04T02:30:00")
    good = _case(cases, "20261203T220001Z-2")
    out = export(cases, "--dry-run", tmp_path / "dcm")
    assert out.returncode == EXIT_SOME_FAILED and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert (
        f"{naive.name}  FAILED: case.yaml: capture.pre_fire.utc: no offset from UTC; expected an ISO "
        "time with its offset from UTC" in out.stdout
    ), out.stdout
    assert not (tmp_path / "dcm" / FALLBACK_ID / naive.name).exists()
    assert (tmp_path / "dcm" / FALLBACK_ID / good.name / "image.dcm").is_file()


def _colour_png(path) -> None:
    path.parent.mkdir(parents=True)
    cv2.imwrite(str(path), np.zeros((120, 200, 3), np.uint8))


def _small_mask(folder) -> None:
    """capture.prediction.mask pointing to a mask of another size, in a folder named after the patient."""
    (folder / PATIENT_FOLDER).mkdir()
    cv2.imwrite(str(folder / PATIENT_FOLDER / "Kowalczyk_mask.png"), np.zeros((60, 100), np.uint8))
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["capture"]["prediction"]["mask"] = f"{PATIENT_FOLDER}/Kowalczyk_mask.png"
    (folder / "case.yaml").write_text(yaml.safe_dump(case))


@pytest.mark.parametrize("broken", ["missing", "colour", "mask size"])
def test_a_failed_path_value_is_named_by_its_key_and_base_name(tmp_path, broken):
    """The files lie in a sub-folder of the case folder named after the patient."""
    cases = tmp_path / "cases"
    name = "20261203T213001Z-1"
    if broken == "missing":
        folder = _case(cases, name, image=f"{PATIENT_FOLDER}/Kowalczyk_missing.png")
        reason = "capture.pre_fire.image: Kowalczyk_missing.png: unreadable image (cannot read the file: "
    elif broken == "colour":
        folder = _case(cases, name, image=f"{PATIENT_FOLDER}/Kowalczyk.png")
        _colour_png(folder / PATIENT_FOLDER / "Kowalczyk.png")
        reason = "capture.pre_fire.image: Kowalczyk.png: expected a single-channel uint8 image, got uint8 "
    else:
        folder = _case(cases, name)
        _small_mask(folder)
        reason = "capture.prediction.mask: Kowalczyk_mask.png: (60, 100) does not match the pre-fire image's"
    out = export(cases, "--dry-run", tmp_path / "dcm")
    assert out.returncode == EXIT_SOME_FAILED and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert f"{folder.name}  FAILED: case.yaml: {reason}" in out.stdout, out.stdout
    for part in PATIENT_PARTS:
        assert part not in out.stdout + out.stderr
