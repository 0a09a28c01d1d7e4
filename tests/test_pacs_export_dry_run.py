"""`sonomap cases export CASES --dry-run OUT` writes its files safely: each file is written to a temp
file and renamed into place, so a failed write (a real file size limit standing for a full disk)
leaves the file already there whole and no partial file, with a one-line reason naming the file; a
fractional export does not replace the binary SEG of the same image; an OUT that is a file is
refused once, before any case."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import yaml
from captured_cases import write_captured_case
from file_size_limit import sonomap_with_file_size_limit
from pacs_cases import FALLBACK_ID, export

pytest.importorskip("highdicom", reason="highdicom not installed (pacs extra)")

EXIT_SOME_FAILED = 1
EXIT_USER_ERROR = 2
CASE_IDS = ("20260101T100000Z-1", "20260101T100001Z-2")


def _case(root, name: str):
    """A captured case with the pre-fire frame and time the export reads."""
    folder = write_captured_case(root / name, np.zeros((120, 200), bool), study_id=FALLBACK_ID)
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["capture"]["pre_fire"] = {"frame": 3, "image": "prefire.png", "utc": "2026-01-01T10:00:00Z"}
    (folder / "case.yaml").write_text(yaml.safe_dump(case))
    return folder


def test_a_failed_write_leaves_the_previous_file_whole_and_no_partial_file(tmp_path):
    cases = tmp_path / "cases"
    folder = _case(cases, CASE_IDS[0])
    out = tmp_path / "dcm"
    first = export(cases, "--dry-run", out)
    assert first.returncode == 0, first.stdout + first.stderr
    image = out / FALLBACK_ID / folder.name / "image.dcm"
    good = image.read_bytes()
    limit = len(good) // 2  # the image cannot be written again: EFBIG half way, as a full disk fails
    for target in (out, tmp_path / "empty"):
        failed = sonomap_with_file_size_limit(limit, "cases", "export", cases, "--dry-run", target)
        assert failed.returncode == EXIT_SOME_FAILED, failed.stdout + failed.stderr
        assert "Traceback" not in failed.stdout + failed.stderr
        written = target / FALLBACK_ID / folder.name / "image.dcm"
        assert [line for line in failed.stdout.splitlines() if "FAILED" in line] == [
            f"{folder.name}  FAILED: cannot write {written}: File too large"
        ]
    assert image.read_bytes() == good  # the previous file, whole
    assert pydicom.dcmread(image).pixel_array.shape == (120, 200)
    assert sorted(p.name for p in image.parent.iterdir()) == ["image.dcm", "seg.dcm"]  # no temp file
    assert list((tmp_path / "empty" / FALLBACK_ID / folder.name).iterdir()) == []


def test_a_fractional_export_keeps_the_binary_seg_of_the_same_image(tmp_path):
    cases = tmp_path / "cases"
    folder = _case(cases, CASE_IDS[0])
    for kind in ("binary", "fractional"):
        out = export(cases, "--dry-run", tmp_path / "dcm", "--segmentation", kind)
        assert out.returncode == 0, out.stdout + out.stderr
    written = tmp_path / "dcm" / FALLBACK_ID / folder.name
    assert sorted(p.name for p in written.iterdir()) == ["image.dcm", "seg-fractional.dcm", "seg.dcm"]
    binary = pydicom.dcmread(written / "seg.dcm")
    fractional = pydicom.dcmread(written / "seg-fractional.dcm")
    assert (binary.SegmentationType, fractional.SegmentationType) == ("BINARY", "FRACTIONAL")
    assert binary.SOPInstanceUID != fractional.SOPInstanceUID


def test_an_out_that_is_a_file_is_refused_once_before_any_case(tmp_path):
    cases = tmp_path / "cases"
    for name in CASE_IDS:
        _case(cases, name)
    out = tmp_path / "dcm"
    out.write_text("not a folder")
    result = export(cases, "--dry-run", out)
    assert result.returncode == EXIT_USER_ERROR and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""  # no case tried, not even the header line
    assert result.stderr.strip().splitlines() == [
        f"sonomap cases: error: --dry-run {out}: exists and is not a directory"
    ]
    assert out.read_text() == "not a folder"
