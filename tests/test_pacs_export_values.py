"""`sonomap cases export` on hand-made captured cases with values the DICOM objects cannot carry:
each such case fails with one line naming its file and key (or is made valid: over-long LO text is
cut to 64 characters) and the other cases are still exported."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import yaml
from captured_cases import write_captured_case
from pacs_cases import FALLBACK_ID, export

highdicom = pytest.importorskip("highdicom", reason="highdicom not installed (pacs extra)")

LO_MAX = 64
LONG = "x" * 100


def _case(
    root, name: str, capture: dict | None = None, model: dict | None = None, prediction: dict | None = None
):
    folder = write_captured_case(root / name, np.zeros((120, 200), bool))
    case = yaml.safe_load((folder / "case.yaml").read_text())
    cap = case["capture"]
    cap["pre_fire"] = {"frame": 3, "image": "prefire.png", "utc": "2026-01-01T10:00:00Z"}
    cap["study_id"] = FALLBACK_ID  # captured in one session: --study-id would cover only one case
    cap.update(capture or {})
    cap["model"].update(model or {})
    cap["prediction"].update(prediction or {})
    (folder / "case.yaml").write_text(yaml.safe_dump(case))
    return folder


def test_bad_values_fail_their_own_case_and_long_text_is_cut_to_the_lo_limit(tmp_path):
    cases = tmp_path / "cases"
    negative = _case(cases, "a_negative", capture={"number": -5})
    zero = _case(cases, "b_zero", prediction={"prob_scale": 0})
    backslash = _case(cases, "c_backslash", model={"name": "net\\v2"})
    long_text = _case(cases, "d_long", capture={"trigger": LONG}, model={"name": LONG})
    good = _case(cases, "e_good")
    out = export(cases, "--dry-run", tmp_path / "dcm", "--segmentation", "fractional")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "Warning" not in out.stderr, out.stderr  # no invalid value for pydicom to warn about
    lines = out.stdout.splitlines()
    assert (
        f"{negative.name}  FAILED: {negative / 'case.yaml'}: capture.number: expected an integer in [1, "
        in (out.stdout)
    )
    assert (
        f"{zero.name}  FAILED: {zero / 'case.yaml'}: capture.prediction.prob_scale: expected a positive integer, got 0"
        in lines
    )
    assert (
        f"{backslash.name}  FAILED: {backslash / 'case.yaml'}: cannot make its DICOM objects (" in out.stdout
    )
    assert "2 of 5 case(s) exported, 3 failed" in out.stdout
    written = tmp_path / "dcm" / FALLBACK_ID
    assert (written / good.name / "seg.dcm").is_file()
    image = pydicom.dcmread(written / long_text.name / "image.dcm")
    seg = pydicom.dcmread(written / long_text.name / "seg.dcm")
    algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    for value in (image.SeriesDescription, seg.ManufacturerModelName, algorithm.AlgorithmName):
        assert 0 < len(value) <= LO_MAX
