"""`sonomap cases export` on hand-edited case.yaml values that must fail their own case, the others
exported: a pre-fire time out of range once in UTC (and its error never repeats the value), an image
path that leaves the case folder or an image that is not the ROI crop, a ROI DICOM cannot hold, and
how an error no check foresaw is named;
and capture numbers compared per study ID and UTC day, as the DICOM studies are."""

from __future__ import annotations

import cv2
import numpy as np
import pydicom
import pytest
import yaml
from captured_cases import write_captured_case
from pacs_cases import FALLBACK_ID, STUDY_ID, export

from edge_runtime.errors import InputError
from registration.pacs.export import failed_line_reason

pytest.importorskip("highdicom", reason="highdicom not installed (pacs extra)")

EXIT_SOME_FAILED = 1
GOOD = "20261203T220001Z-2"


def _case(root, name: str, utc: str = "2026-12-03T22:00:00Z", image: str = "prefire.png", **capture):
    folder = write_captured_case(root / name, np.zeros((120, 200), bool), study_id=FALLBACK_ID)
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["capture"]["pre_fire"] = {"frame": 3, "image": image, "utc": utc}
    case["capture"].update(capture)
    (folder / "case.yaml").write_text(yaml.safe_dump(case))
    return folder


def _one_failed(out, folder, reason: str) -> None:
    """``folder``'s case failed with ``reason`` in one line, and the good case was exported."""
    assert out.returncode == EXIT_SOME_FAILED and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert f"{folder.name}  FAILED: case.yaml: {reason}" in out.stdout, out.stdout
    assert f"{GOOD}  {FALLBACK_ID}  wrote" in out.stdout and "1 of 2 case(s) exported, 1 failed" in out.stdout


@pytest.mark.parametrize("utc", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
def test_a_time_out_of_range_in_utc_fails_its_own_case(tmp_path, utc):
    cases = tmp_path / "cases"
    bad = _case(cases, "20261203T213001Z-1", utc=utc)
    _case(cases, GOOD)
    out = export(cases, "--dry-run", tmp_path / "dcm")
    _one_failed(out, bad, "capture.pre_fire.utc: outside the years 1-9999 once in UTC; expected an ISO time")


def test_a_time_that_is_no_iso_time_is_refused_without_repeating_it(tmp_path):
    cases = tmp_path / "cases"
    bad = _case(cases, "20261203T213001Z-1", utc="Jane Doe 1970-01-01")
    _case(cases, GOOD)
    out = export(cases, "--dry-run", tmp_path / "dcm")
    _one_failed(
        out, bad, "capture.pre_fire.utc: not an ISO time; expected an ISO time with its offset from UTC"
    )
    assert "Jane" not in out.stdout + out.stderr


def test_a_roi_wider_than_dicom_rows_and_columns_hold_fails_its_case_naming_the_key(tmp_path):
    """A hand-edited capture.roi (and images) 70000 pixels wide: DICOM Columns is 16-bit, and pydicom
    failed writing it with a many-line error; the case fails in one line, the next is exported."""
    cases, wide = tmp_path / "cases", 70000
    bad = _case(cases, "20261203T213001Z-1", roi=[0, 0, wide, 2])
    for name, dtype in (
        ("prefire.png", np.uint8),
        ("prefire_mask.png", np.uint8),
        ("prefire_prob.png", np.uint16),
    ):
        cv2.imwrite(str(bad / name), np.zeros((2, wide), dtype))
    _case(cases, GOOD)
    out = export(cases, "--dry-run", tmp_path / "dcm")
    _one_failed(out, bad, f"capture.roi: {wide} x 2 pixels; DICOM rows and columns hold at most 65535")


def test_an_error_no_check_foresaw_is_named_by_its_type_and_place():
    """The FAILED line of an error no check foresaw (every case value the export reads is checked, so
    a real one is raised here): its type, message and the line that raised it, to be found in the code."""
    try:
        float(2**1100)  # OverflowError: int too large to convert to float
    except OverflowError as exc:
        reason = failed_line_reason(exc)
    assert reason.startswith(
        "OverflowError: int too large to convert to float (at test_pacs_export_case_checks.py:"
    )
    assert failed_line_reason(InputError("case.yaml: capture.number: expected an integer")) == (
        "case.yaml: capture.number: expected an integer"
    )  # a foreseen error: its own words


def _screen(path) -> None:
    cv2.imwrite(str(path), np.full((480, 640), 200, np.uint8))  # a whole screen, a name burnt in


@pytest.mark.parametrize("where", ["parent", "absolute", "link"])
def test_an_image_outside_the_case_folder_fails_its_case_naming_the_key(tmp_path, where):
    cases = tmp_path / "cases"
    screen = tmp_path / "screen_with_name.png"
    _screen(screen)
    name = "20261203T213001Z-1"
    if where == "parent":
        bad = _case(cases, name, image="../../screen_with_name.png")
    elif where == "absolute":
        bad = _case(cases, name, image=str(screen))
    else:  # a link inside the folder to the file outside it
        bad = _case(cases, name, image="shot.png")
        (bad / "shot.png").symlink_to(screen)
    _case(cases, GOOD)
    out = export(cases, "--dry-run", tmp_path / "dcm")
    _one_failed(out, bad, "capture.pre_fire.image: expected a file inside the case folder")
    assert "screen_with_name" not in out.stdout + out.stderr


@pytest.mark.parametrize("key", ["mask", "prob"])
def test_a_prediction_file_outside_the_case_folder_fails_its_case(tmp_path, key):
    cases = tmp_path / "cases"
    bad = _case(cases, "20261203T213001Z-1")
    (tmp_path / "elsewhere").mkdir()
    (bad / f"prefire_{key}.png").rename(tmp_path / "elsewhere" / f"prefire_{key}.png")
    case = yaml.safe_load((bad / "case.yaml").read_text())
    case["capture"]["prediction"][key] = f"../../elsewhere/prefire_{key}.png"
    (bad / "case.yaml").write_text(yaml.safe_dump(case))
    _case(cases, GOOD)
    out = export(cases, "--dry-run", tmp_path / "dcm")
    _one_failed(out, bad, f"capture.prediction.{key}: expected a file inside the case folder")


def test_a_pre_fire_image_that_is_not_the_roi_crop_fails_its_case(tmp_path):
    cases = tmp_path / "cases"
    bad = _case(cases, "20261203T213001Z-1", image="screen.png")
    _screen(bad / "screen.png")
    _case(cases, GOOD)
    out = export(cases, "--dry-run", tmp_path / "dcm")
    _one_failed(out, bad, "capture.pre_fire.image: 640 x 480 pixels, not capture.roi's 200 x 120")


def test_one_study_ids_cores_of_two_utc_days_are_two_studies_each_with_its_capture_1(tmp_path):
    cases = tmp_path / "cases"
    first = _case(cases, "20261203T220000Z-1", utc="2026-12-03T22:00:00Z", number=1, study_id=STUDY_ID)
    second = _case(cases, "20261204T090000Z-1", utc="2026-12-04T09:00:00Z", number=1, study_id=STUDY_ID)
    out = export(cases, "--dry-run", tmp_path / "dcm")
    assert out.returncode == 0, out.stdout + out.stderr
    images = [pydicom.dcmread(tmp_path / "dcm" / STUDY_ID / f.name / "image.dcm") for f in (first, second)]
    assert [i.SeriesNumber for i in images] == [1, 1]
    assert images[0].StudyInstanceUID != images[1].StudyInstanceUID
    assert [i.StudyDate for i in images] == ["20261203", "20261204"]


def test_cores_of_one_utc_day_written_with_other_offsets_still_clash(tmp_path):
    cases = tmp_path / "cases"
    _case(cases, "20261203T220000Z-1", utc="2026-12-03T22:00:00Z", number=1, study_id=STUDY_ID)
    # 01:00 on the 4th at +05:00 is 20:00 on the 3rd in UTC: the first core's study
    _case(cases, "20261203T200000Z-1", utc="2026-12-04T01:00:00+05:00", number=1, study_id=STUDY_ID)
    out = export(cases, "--dry-run", tmp_path / "dcm")
    assert out.returncode == 2 and "one UTC day with one capture number" in out.stderr, (
        out.stdout + out.stderr
    )
    assert not (tmp_path / "dcm").exists()


def test_a_case_whose_time_cannot_be_read_is_left_out_of_the_number_check(tmp_path):
    cases = tmp_path / "cases"
    bad = _case(cases, "20261203T213001Z-1", utc="yesterday", number=1)
    good = _case(cases, "20261203T220001Z-2", number=1)
    out = export(cases, "--dry-run", tmp_path / "dcm")
    assert out.returncode == EXIT_SOME_FAILED and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert f"{bad.name}  FAILED: case.yaml: capture.pre_fire.utc: not an ISO time" in out.stdout
    assert (tmp_path / "dcm" / FALLBACK_ID / good.name / "image.dcm").is_file()
