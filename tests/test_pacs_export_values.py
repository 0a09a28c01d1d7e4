"""`sonomap cases export` on hand-made captured cases with values the DICOM objects cannot carry:
each such case fails with one line naming its file and key, and the other cases are still exported.
The case.yaml text that goes into DICOM text (capture.trigger, capture.model.name and sha256) must
be what the capture writes: anything else (a name typed into the file) fails its case, and the
line does not repeat it."""

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
HOSTILE_TRIGGER = "fi\x1b[31mre\x00"  # a terminal escape and NUL, as a hand-edited case.yaml can hold
HOSTILE_MODEL = "net\\v2\x00b\nc\x7f"  # backslash (LO's value separator), NUL, newline, DEL
NAMED = "Jane Doe MRN 12345"


def _case(
    root, name: str, capture: dict | None = None, model: dict | None = None, prediction: dict | None = None
):
    folder = write_captured_case(root / name, np.zeros((120, 200), bool))
    case = yaml.safe_load((folder / "case.yaml").read_text())
    cap = case["capture"]
    cap["pre_fire"] = {"frame": 3, "image": "prefire.png", "utc": "2026-01-01T10:00:00Z"}
    cap["study_id"] = FALLBACK_ID  # captured in one session: --study-id would cover only one case
    cap["number"] = int(name.rsplit("-", 1)[1])  # the capture number its id ends with, as captured
    cap.update(capture or {})
    cap["model"].update(model or {})
    cap["prediction"].update(prediction or {})
    (folder / "case.yaml").write_text(yaml.safe_dump(case))
    return folder


def test_bad_values_fail_their_own_case_and_long_text_is_cut_to_the_lo_limit(tmp_path):
    cases = tmp_path / "cases"
    negative = _case(cases, "20260101T100000Z-1", capture={"number": -5})
    zero = _case(cases, "20260101T100001Z-2", prediction={"prob_scale": 0})
    huge = _case(cases, "20260101T100005Z-6", prediction={"prob_scale": 70000})  # above a 16-bit PNG's range
    small = _case(cases, "20260101T100006Z-7", prediction={"prob_scale": 255})  # its PNG holds 6000: p > 1
    far = _case(cases, "20260101T100007Z-8", prediction={"frame": 2**1100})  # quoted in the SEG's description
    longest = "m" * LO_MAX  # a model name as long as LO holds is kept whole
    long_text = _case(cases, "20260101T100003Z-4", capture={"trigger": "signal"}, model={"name": longest})
    good = _case(cases, "20260101T100004Z-5")
    out = export(cases, "--dry-run", tmp_path / "dcm", "--segmentation", "fractional")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "Warning" not in out.stderr, out.stderr  # no invalid value for pydicom to warn about
    lines = out.stdout.splitlines()
    assert f"{negative.name}  FAILED: case.yaml: capture.number: expected an integer in [1, " in (out.stdout)
    scale_rule = "capture.prediction.prob_scale: expected an integer in [1, 65535], got"
    assert f"{zero.name}  FAILED: case.yaml: {scale_rule} 0" in lines
    assert f"{huge.name}  FAILED: case.yaml: {scale_rule} 70000" in lines
    assert (
        f"{small.name}  FAILED: case.yaml: capture.prediction.prob: prefire_prob.png holds 6000, above "
        in out.stdout
    )
    far_line = f"{far.name}  FAILED: case.yaml: capture.prediction.frame: expected an integer in [0, 2147483647], got "
    assert far_line in out.stdout and len(next(x for x in lines if x.startswith(far_line))) < 300
    assert "2 of 7 case(s) exported, 5 failed" in out.stdout
    written = tmp_path / "dcm" / FALLBACK_ID
    assert (written / good.name / "seg-fractional.dcm").is_file()
    image = pydicom.dcmread(written / long_text.name / "image.dcm")
    seg = pydicom.dcmread(written / long_text.name / "seg-fractional.dcm")
    algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert image.SeriesDescription == "biopsy 4 pre-fire (signal)"
    assert seg.ManufacturerModelName == algorithm.AlgorithmName == longest


def _text_values(ds) -> list[str]:
    """Every text value (SH, LO, LT, ST, PN) in ``ds``, nested sequences included."""
    values = []
    for element in ds.iterall():
        if element.VR in ("SH", "LO", "LT", "ST", "PN") and element.value is not None:
            many = element.VM > 1
            values += [str(v) for v in element.value] if many else [str(element.value)]
    return values


@pytest.mark.parametrize(
    ("key", "capture", "model"),
    [
        ("capture.trigger", {"trigger": NAMED}, None),
        ("capture.trigger", {"trigger": HOSTILE_TRIGGER}, None),
        ("capture.trigger", {"trigger": "FIRE"}, None),
        ("capture.model.name", None, {"name": NAMED}),
        ("capture.model.name", None, {"name": HOSTILE_MODEL}),
        ("capture.model.name", None, {"name": LONG}),
        ("capture.model.sha256", None, {"sha256": NAMED}),
    ],
    ids=["trigger-name", "trigger-escape", "trigger-case", "model-name", "model-escape", "model-long", "sha"],
)
def test_case_text_the_capture_does_not_write_fails_its_case_without_repeating_it(
    tmp_path, key, capture, model
):
    """capture.trigger goes into SeriesDescription, capture.model.name into ManufacturerModelName and
    the algorithm name, the sha256 into the algorithm version: only what the capture writes is
    exported, and the line names the key, not the value."""
    cases = tmp_path / "cases"
    bad = _case(cases, "20260101T100000Z-1", capture=capture, model=model)
    good = _case(cases, "20260101T100001Z-2", capture={"trigger": "key"})
    out = export(cases, "--dry-run", tmp_path / "dcm")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert f"{bad.name}  FAILED: case.yaml: {key}: expected " in out.stdout, out.stdout
    for text in (NAMED, "Jane", HOSTILE_TRIGGER, HOSTILE_MODEL, LONG, "FIRE"):
        assert text not in out.stdout + out.stderr
    assert not (tmp_path / "dcm" / FALLBACK_ID / bad.name).exists()
    written = tmp_path / "dcm" / FALLBACK_ID / good.name
    image, seg = pydicom.dcmread(written / "image.dcm"), pydicom.dcmread(written / "seg.dcm")
    assert image.SeriesDescription == "biopsy 2 pre-fire (key)" and seg.ManufacturerModelName == "test-model"
    for ds in (image, seg):
        for value in _text_values(ds):
            assert all(0x20 <= ord(c) <= 0x7E for c in value), repr(value)


@pytest.mark.parametrize("scale", [float("inf"), -0.05, "0.05", [0.05], [0.05, 0]])
def test_a_pixel_spacing_dicom_cannot_carry_fails_its_case_naming_the_key(tmp_path, scale):
    cases = tmp_path / "cases"
    bad = _case(cases, "20260101T100000Z-1")
    case = yaml.safe_load((bad / "case.yaml").read_text())
    case.setdefault("ultrasound", {})["mm_per_pixel"] = scale
    (bad / "case.yaml").write_text(yaml.safe_dump(case))
    good = _case(cases, "20260101T100001Z-2")
    out = export(cases, "--dry-run", tmp_path / "dcm")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert (
        f"{bad.name}  FAILED: case.yaml: ultrasound.mm_per_pixel: expected a finite number > 0 or "
        "[x, y] of them" in (out.stdout)
    )
    assert "1 of 2 case(s) exported, 1 failed" in out.stdout and good.name in out.stdout


def test_an_anisotropic_scale_is_exported_as_row_then_column_spacing(tmp_path):
    """case.yaml's ``mm_per_pixel: [x, y]`` (registration reads it too): DICOM's PixelSpacing holds
    the spacing between rows (y) first, then between columns (x)."""
    cases = tmp_path / "cases"
    folder = _case(cases, "20260101T100000Z-1")
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["ultrasound"]["mm_per_pixel"] = [0.08, 0.12]
    (folder / "case.yaml").write_text(yaml.safe_dump(case))
    out = export(cases, "--dry-run", tmp_path / "dcm")
    assert out.returncode == 0, out.stdout + out.stderr
    image = pydicom.dcmread(tmp_path / "dcm" / FALLBACK_ID / folder.name / "image.dcm")
    assert [float(v) for v in image.PixelSpacing] == [0.12, 0.08]
