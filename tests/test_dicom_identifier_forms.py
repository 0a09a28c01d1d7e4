"""What a real ultrasound DICOM header says about the patient stays out of everything that leaves the
process, however it is spelled: a file name written in decomposed Unicode (macOS writes names so), and
the other IDs scanners keep in OtherPatientIDsSequence. A calibration that is no positive number is
no mm scale: biopsy capture must say it has none rather than measure with it.

pydicom's own ultrasound cine (``examples_ybr_color.dcm``, 30 frames), edited with pydicom; the real CLI."""

from __future__ import annotations

import logging
import math
import unicodedata
from pathlib import Path

import pydicom
import pytest
from cli import sonomap
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from runtime_model import dark_onnx

from edge_runtime import privacy
from edge_runtime.biopsy.study_id import IMAGE_IDENTIFIER
from edge_runtime.dicom_identifiers import dicom_identifiers
from edge_runtime.sources.dicom_cine import DicomCineSource

GIVEN, FAMILY = "Jürgen", "Müller"
OTHER_ID = "ALT123456"
CINE_FRAMES = 30
DELTA_CM = 0.0051  # the cine's own PhysicalDeltaX, about


def _cine(folder: Path, name: str, **header) -> Path:
    """The cine with ``header`` keywords set, saved as ``folder/name``."""
    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    for keyword, value in header.items():
        setattr(ds, keyword, value)
    path = folder / name
    ds.save_as(path)
    return path


def _forms(text: str) -> set[str]:
    return {unicodedata.normalize(form, text) for form in ("NFC", "NFD")}


def test_a_decomposed_unicode_file_name_is_redacted_like_a_composed_one(tmp_path):
    name = unicodedata.normalize("NFD", f"{GIVEN}_{FAMILY}.dcm")
    assert name != unicodedata.normalize("NFC", name)  # the bytes a macOS copy gives the file
    # one frame more than the file holds: the run fails on it, and its error names the file
    cine = _cine(tmp_path, name, PatientName=f"{FAMILY}^{GIVEN}", NumberOfFrames=CINE_FRAMES + 1)
    run = sonomap("replay", cine, "--model", dark_onnx(), "--out", tmp_path / "o.mp4", check=False)
    assert run.returncode == 2 and f"frame {CINE_FRAMES}" in run.stderr, run.stderr[-2000:]
    assert "[REDACTED]" in run.stderr
    for part in (GIVEN, FAMILY):
        assert not any(form in run.stderr for form in _forms(part)), run.stderr[-2000:]


def test_an_id_in_other_patient_ids_sequence_is_registered_and_refused_as_a_study_id(tmp_path):
    other = Dataset()
    other.PatientID = OTHER_ID
    cine = _cine(tmp_path, "cine.dcm", OtherPatientIDsSequence=Sequence([other]))
    assert OTHER_ID in dicom_identifiers(pydicom.dcmread(cine, stop_before_pixels=True))
    run = sonomap(
        *("replay", cine, "--model", dark_onnx(), "--out", tmp_path / "o.mp4", "--max-frames", "2"),
        *("--cases", tmp_path / "cases", "--study-id", OTHER_ID),
        check=False,
    )
    assert run.returncode == 2 and IMAGE_IDENTIFIER in run.stderr, run.stderr[-2000:]
    assert OTHER_ID not in run.stderr and not (tmp_path / "o.mp4").exists()
    privacy.register_dicom(pydicom.dcmread(cine, stop_before_pixels=True))
    assert privacy.redact(f"id {OTHER_ID}") == "id [REDACTED]"


@pytest.mark.parametrize("delta", [math.nan, math.inf, -DELTA_CM, 0.0])
def test_an_ultrasound_region_with_no_positive_scale_gives_no_mm_scale(tmp_path, caplog, delta):
    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    ds.SequenceOfUltrasoundRegions[0].PhysicalDeltaX = delta
    ds.save_as(tmp_path / "cine.dcm")
    with caplog.at_level(logging.WARNING, logger="sonomap.sources"):
        source = DicomCineSource(tmp_path / "cine.dcm")
    assert source.mm_per_pixel is None
    assert "PhysicalDeltaX is" in caplog.text and "no mm scale" in caplog.text


def test_an_ultrasound_region_in_cm_gives_its_scale_in_mm(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    ds.SequenceOfUltrasoundRegions[0].PhysicalDeltaX = DELTA_CM
    ds.save_as(tmp_path / "cine.dcm")
    assert DicomCineSource(tmp_path / "cine.dcm").mm_per_pixel == pytest.approx(DELTA_CM * 10)
