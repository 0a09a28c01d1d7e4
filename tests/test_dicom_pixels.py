"""DICOM colours read once (edge_runtime.dicom_pixels) for registration and the runtime: YBR as pydicom
delivers it (RGB), JPEG 2000's YBR_RCT, PALETTE COLOR through its lookup table, MONOCHROME1 inverted;
anything else is a one-line error naming the file, in `sonomap register` and in register-batch."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import yaml
from cli import sonomap

from edge_runtime.errors import InputError
from edge_runtime.sources.dicom_cine import DicomCineSource
from registration.ultrasound import dicom_regions, keep_regions, load_ultrasound

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.pixels import apply_color_lut  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

YBR_FRAME = 3
# a tract of about the simulated core's length inside examples_ybr_color's calibrated region (0.51 mm/px)
TRACT = {"start": [150, 100], "end": [182, 124], "width_mm": 1.6}
MM_PER_PIXEL = 0.5105


def _reference_gray(name: str, frame: int | None = None) -> np.ndarray:
    """pydicom's own RGB (or gray) pixels, made gray by OpenCV: an independent reference."""
    arr = pydicom.dcmread(get_testdata_file(name)).pixel_array
    arr = arr[frame] if frame is not None else arr
    return cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY) if arr.ndim == 3 else arr


def _runtime_gray(path, frame: int) -> np.ndarray:
    return cv2.cvtColor(list(DicomCineSource(path))[frame].image, cv2.COLOR_BGR2GRAY)


def _write(path, pixels: np.ndarray, photometric: str, bits: int = 8) -> None:
    """A real uncompressed DICOM file with the given samples, no ultrasound region, and no text
    burned into them (BurnedInAnnotation NO: registration refuses a whole screen that may have some)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = "1.2.840.10008.5.1.4.1.1.6.1", generate_uid(), "US"
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 3 if pixels.ndim == 3 else 1
    if pixels.ndim == 3:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.BurnedInAnnotation = "NO"
    ds.PixelData = pixels.tobytes()
    ds.save_as(str(path), enforce_file_format=True)


def _inside_regions(path, gray: np.ndarray) -> np.ndarray:
    """``gray`` black outside the file's calibrated regions, as registration reads it; the regions
    must leave part of the screen out, or the check would not see the blanking."""
    regions = dicom_regions(pydicom.dcmread(path), str(path))
    kept = keep_regions(gray, regions)
    assert regions and gray[kept == 0].any()
    return kept


def _dicom_case(simulated_case, folder, dicom, no_burned_in=False, **ultrasound):
    """The simulated case's slide and annotation with ``dicom`` as its ultrasound image; with
    ``no_burned_in`` a copy that says BurnedInAnnotation NO (a file with no calibrated region to keep
    is refused without it)."""
    folder.mkdir(parents=True)
    case = yaml.safe_load((simulated_case / "case.yaml").read_text())
    for key in ("wsi", "annotations"):
        shutil.copy(simulated_case / case["pathology"][key], folder / case["pathology"][key])
    shutil.copy(dicom, folder / "Doe_Jane.dcm")
    if no_burned_in:
        ds = pydicom.dcmread(folder / "Doe_Jane.dcm")
        ds.BurnedInAnnotation = "NO"
        ds.save_as(folder / "Doe_Jane.dcm")
    case.pop("needle")
    case["id"] = folder.name
    case["ultrasound"] = {"image": "Doe_Jane.dcm", **ultrasound}
    case["tract"] = TRACT
    (folder / "case.yaml").write_text(yaml.safe_dump(case))
    return folder / "case.yaml"


def test_register_and_replay_give_the_reference_gray_of_a_ybr_cine(simulated_case, tmp_path):
    ref = _reference_gray("examples_ybr_color.dcm", YBR_FRAME)
    case = _dicom_case(
        simulated_case, tmp_path / "ybr1", get_testdata_file("examples_ybr_color.dcm"), frame=YBR_FRAME
    )
    sonomap("register", case, "--out", tmp_path / "out")
    # registration keeps the calibrated region only: the screen around it may carry the patient line
    kept = _inside_regions(get_testdata_file("examples_ybr_color.dcm"), ref)
    assert np.array_equal(cv2.imread(str(tmp_path / "out" / "us.png"), cv2.IMREAD_GRAYSCALE), kept)
    assert np.array_equal(_runtime_gray(get_testdata_file("examples_ybr_color.dcm"), YBR_FRAME), ref)


def test_a_jpeg2000_ybr_rct_file_registers_and_replays(simulated_case, tmp_path):
    ref = _reference_gray("examples_jpeg2k.dcm")
    case = _dicom_case(
        simulated_case,
        tmp_path / "j2k",
        get_testdata_file("examples_jpeg2k.dcm"),
        no_burned_in=True,
        mm_per_pixel=[MM_PER_PIXEL] * 2,
    )
    sonomap("register", case, "--out", tmp_path / "out")
    assert np.array_equal(cv2.imread(str(tmp_path / "out" / "us.png"), cv2.IMREAD_GRAYSCALE), ref)
    assert np.array_equal(_runtime_gray(get_testdata_file("examples_jpeg2k.dcm"), 0), ref)


def test_a_palette_colour_file_is_read_through_its_lookup_table():
    path = get_testdata_file("examples_palette.dcm")
    ds = pydicom.dcmread(path)
    rgb16 = apply_color_lut(ds.pixel_array, ds)  # 16-bit table entries
    ref = cv2.cvtColor((rgb16 >> 8).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    assert not np.array_equal(ref, ds.pixel_array)  # the indices are not the picture
    assert np.array_equal(_runtime_gray(path, 0), ref)
    # calibrated by its ultrasound region, and the screen outside it blanked
    assert np.array_equal(load_ultrasound(path).gray, _inside_regions(path, ref))


def test_monochrome1_is_inverted(tmp_path):
    values = np.arange(64 * 64, dtype=np.uint32).reshape(64, 64).astype(np.uint8)
    _write(tmp_path / "m1.dcm", values, "MONOCHROME1")
    assert np.array_equal(load_ultrasound(tmp_path / "m1.dcm", mm_per_pixel=(0.1, 0.1)).gray, 255 - values)
    assert np.array_equal(_runtime_gray(tmp_path / "m1.dcm", 0), 255 - values)


@pytest.mark.parametrize(
    ("photometric", "pixels", "bits", "reason"),
    [
        (
            "YBR_PARTIAL_422",
            np.full((16, 16, 3), 128, np.uint8),
            8,
            "photometric interpretation 'YBR_PARTIAL_422'",
        ),
        ("HSV", np.full((16, 16, 3), 128, np.uint8), 8, "photometric interpretation 'HSV'"),
        ("MONOCHROME2", np.full((16, 16), 1000, np.uint16), 16, "unsupported pixel format"),
    ],
)
def test_an_unreadable_colour_space_or_depth_is_one_line_naming_the_file(
    tmp_path, photometric, pixels, bits, reason
):
    path = tmp_path / "Doe_Jane.dcm"
    _write(path, pixels, photometric, bits)
    for read in (lambda: load_ultrasound(path, mm_per_pixel=(0.1, 0.1)), lambda: DicomCineSource(path)):
        with pytest.raises(InputError) as err:
            read()
        assert str(err.value).startswith(f"{path}: ") and reason in str(err.value)
        assert "\n" not in str(err.value)


def test_register_batch_names_the_dicom_of_a_case_it_cannot_read(simulated_case, tmp_path):
    bad = tmp_path / "partial.dcm"
    _write(bad, np.full((240, 320, 3), 128, np.uint8), "YBR_PARTIAL_422")
    _dicom_case(simulated_case, tmp_path / "cases" / "a_bad1", bad, mm_per_pixel=[MM_PER_PIXEL] * 2)
    j2k = get_testdata_file("examples_jpeg2k.dcm")
    _dicom_case(
        simulated_case, tmp_path / "cases" / "b_j2k1", j2k, no_burned_in=True, mm_per_pixel=[MM_PER_PIXEL] * 2
    )
    sonomap("register-batch", tmp_path / "cases", "--out", tmp_path / "ds", "--no-progress")
    report = json.loads((tmp_path / "ds" / "batch_report.json").read_text())
    assert report["registered"] == 1 and report["failed"] == 1
    error = report["failures"][0]["error"]
    # named by its case.yaml key: the file name (here a patient's) stays out of the dataset's report
    assert "ultrasound.image" in error and "YBR_PARTIAL_422" in error and "(at " not in error
    assert "Doe_Jane" not in error
