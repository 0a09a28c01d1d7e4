"""A DICOM ultrasound with no calibrated region to keep is read only when it says it carries no
burned-in text (BurnedInAnnotation NO): otherwise the whole screen, patient header included, would
become us.png, qa.png and the dataset's image.

pydicom's examples_jpeg2k.dcm is a real GE scanner screen with its header text burned in, no
SequenceOfUltrasoundRegions and no BurnedInAnnotation. The real ``sonomap register`` CLI, nothing mocked.
"""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import yaml
from cli import sonomap

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402

SCREEN = "examples_jpeg2k.dcm"
MM_PER_PIXEL = 0.5105
# a tract of about the simulated core's length inside the screen's image area
TRACT = {"start": [300, 200], "end": [332, 224], "width_mm": 1.6}
PATIENT_FOLDER = "Doe_Jane_1970"
USAGE_ERROR = 2


def _case(simulated_case, folder, dicom) -> object:
    """The simulated case's slide and annotation with ``dicom`` as its ultrasound image."""
    folder.mkdir(parents=True)
    case = yaml.safe_load((simulated_case / "case.yaml").read_text())
    for key in ("wsi", "annotations"):
        shutil.copy(simulated_case / case["pathology"][key], folder / case["pathology"][key])
    shutil.copy(dicom, folder / "us.dcm")
    case.pop("needle")
    case["id"] = "case1"
    case["ultrasound"] = {"image": "us.dcm", "mm_per_pixel": [MM_PER_PIXEL] * 2}
    case["tract"] = TRACT
    (folder / "case.yaml").write_text(yaml.safe_dump(case))
    return folder / "case.yaml"


def test_a_screen_without_regions_or_burned_in_annotation_is_refused(simulated_case, tmp_path):
    case = _case(simulated_case, tmp_path / PATIENT_FOLDER, get_testdata_file(SCREEN))
    res = sonomap("register", case, "--out", tmp_path / "out", check=False)
    assert res.returncode == USAGE_ERROR, res.stderr
    error = res.stderr.strip().splitlines()[-1]
    assert "us.dcm" in error and "SequenceOfUltrasoundRegions" in error and "BurnedInAnnotation" in error
    assert "Traceback" not in res.stderr
    # the way out is named: a PNG of the image area, or a DICOM that rules burned-in text out
    assert "mm_per_pixel" in error and "BurnedInAnnotation NO" in error
    assert not (tmp_path / "out" / "us.png").exists() and not (tmp_path / "out" / "qa.png").exists()


def test_a_screen_marked_without_burned_in_text_is_read_whole(simulated_case, tmp_path):
    ds = pydicom.dcmread(get_testdata_file(SCREEN))
    ds.BurnedInAnnotation = "NO"
    ds.save_as(tmp_path / "no_text.dcm")
    case = _case(simulated_case, tmp_path / "cases" / "a", tmp_path / "no_text.dcm")
    sonomap("register", case, "--out", tmp_path / "out")
    ref = cv2.cvtColor(pydicom.dcmread(get_testdata_file(SCREEN)).pixel_array, cv2.COLOR_RGB2GRAY)
    assert np.array_equal(cv2.imread(str(tmp_path / "out" / "us.png"), cv2.IMREAD_GRAYSCALE), ref)
