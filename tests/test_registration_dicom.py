"""Ultrasound inputs: PNG + mm_per_pixel, DICOM calibrated by SequenceOfUltrasoundRegions, DICOM cine frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from edge_runtime.errors import InputError
from registration.pipeline import register_case
from registration.sim.scores import confusion, dice
from registration.ultrasound import load_ultrasound

US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTIFRAME_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"


def write_us_dicom(path, frames: list, regions: list, burned_in: str | None = None) -> None:
    """A real DICOM file (pydicom) with 8-bit gray frames and ultrasound regions (delta in cm);
    ``burned_in``: its BurnedInAnnotation, absent when None."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop = US_MULTIFRAME_STORAGE if len(frames) > 1 else US_IMAGE_STORAGE
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop, meta.MediaStorageSOPInstanceUID, "US"
    ds.Rows, ds.Columns = frames[0].shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if len(frames) > 1:
        ds.NumberOfFrames, ds.FrameTime = len(frames), 33.3
    ds.PixelData = np.stack(frames).astype(np.uint8).tobytes()
    items = []
    for r in regions:
        it = Dataset()
        it.RegionSpatialFormat, it.RegionDataType, it.RegionFlags = r.get("format", 1), 1, 0
        it.RegionLocationMinX0, it.RegionLocationMinY0, it.RegionLocationMaxX1, it.RegionLocationMaxY1 = r[
            "box"
        ]
        it.PhysicalUnitsXDirection, it.PhysicalUnitsYDirection = r.get("units", (3, 3))
        it.PhysicalDeltaX, it.PhysicalDeltaY = r["delta_cm"]
        items.append(it)
    ds.SequenceOfUltrasoundRegions = Sequence(items)
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    ds.save_as(str(path), enforce_file_format=True)


def _regions_for(case_dir):
    case = yaml.safe_load((case_dir / "case.yaml").read_text())
    us = cv2.imread(str(case_dir / "us.png"), 0)
    h, w = us.shape
    mm = case["ultrasound"]["mm_per_pixel"]
    tract = np.array([case["tract"]["start"], case["tract"]["end"]])
    # a small "Doppler" pane in the corner farthest from the tract, with a wrong (2x) scale,
    # plus a spectral region in s and cm/s that cannot calibrate space
    cx = 0 if tract[:, 0].mean() > w / 2 else w - 41
    pane = {"box": (cx, 0, cx + 40, 40), "delta_cm": (mm / 5, mm / 5)}
    spectral = {"box": (0, 0, w - 1, 30), "delta_cm": (0.01, 0.01), "units": (4, 7)}
    main = {"box": (0, 0, w - 1, h - 1), "delta_cm": (mm / 10, mm / 10)}
    return us, case, [pane, spectral, main]


def _dicom_case(case_dir, name, frames, regions, **us_keys):
    write_us_dicom(case_dir / f"{name}.dcm", frames, regions)
    case = yaml.safe_load((case_dir / "case.yaml").read_text())
    case["ultrasound"] = {"image": f"{name}.dcm", **us_keys}
    p = case_dir / f"{name}.yaml"
    p.write_text(yaml.safe_dump(case))
    return p


def _dice(case_dir, out):
    return dice(confusion(cv2.imread(str(out / "label.png"), 0), cv2.imread(str(case_dir / "truth.png"), 0)))


def test_png_with_scale(simulated_case, tmp_path):
    rep = register_case(simulated_case / "case.yaml", tmp_path / "png")
    mm = yaml.safe_load((simulated_case / "case.yaml").read_text())["ultrasound"]["mm_per_pixel"]
    assert rep["ultrasound"]["mm_per_pixel"] == [pytest.approx(mm), pytest.approx(mm)]
    assert _dice(simulated_case, tmp_path / "png") >= 0.95


def test_dicom_region_containing_the_needle_gives_the_scale(simulated_case, tmp_path):
    us, meta, regions = _regions_for(simulated_case)
    p = _dicom_case(simulated_case, "single", [us], regions)
    rep = register_case(p, tmp_path / "d")
    mm = meta["ultrasound"]["mm_per_pixel"]
    assert rep["ultrasound"]["mm_per_pixel"][0] == pytest.approx(mm, rel=1e-6)
    assert rep["ultrasound"]["region"]["x1"] == us.shape[1] - 1
    assert _dice(simulated_case, tmp_path / "d") >= 0.95
    assert np.array_equal(cv2.imread(str(tmp_path / "d" / "us.png"), 0), us)


def test_dicom_cine_frame_index(simulated_case, tmp_path):
    us, _, regions = _regions_for(simulated_case)
    blank = np.zeros_like(us)
    p = _dicom_case(simulated_case, "cine", [blank, us, blank], regions, frame=1)
    register_case(p, tmp_path / "c")
    assert _dice(simulated_case, tmp_path / "c") >= 0.95
    bad = _dicom_case(simulated_case, "cine_bad", [blank, us, blank], regions, frame=3)
    with pytest.raises(InputError, match=r"ultrasound.frame=3 out of range \(cine has 3 frames\)"):
        register_case(bad, tmp_path / "c2")


def test_dicom_without_a_region_holding_the_needle_fails(simulated_case, tmp_path):
    us, _, regions = _regions_for(simulated_case)
    p = _dicom_case(simulated_case, "pane_only", [us], regions[:2])
    with pytest.raises(InputError, match="no calibrated ultrasound region contains the needle"):
        register_case(p, tmp_path / "x")


def test_dicom_scale_disagreeing_with_case_yaml_is_inconsistent(simulated_case, tmp_path):
    us, meta, regions = _regions_for(simulated_case)
    p = _dicom_case(
        simulated_case, "conflict", [us], regions, mm_per_pixel=meta["ultrasound"]["mm_per_pixel"] * 1.5
    )
    with pytest.raises(InputError, match="inconsistent scales: ultrasound.mm_per_pixel"):
        register_case(p, tmp_path / "x")


def test_dicom_non_cm_units_only_needs_manual_scale(simulated_case, tmp_path):
    us, _, regions = _regions_for(simulated_case)
    # no region in cm to keep: read whole only for a screen that says it carries no text
    write_us_dicom(tmp_path / "s.dcm", [us], [regions[1]], burned_in="NO")
    with pytest.raises(InputError, match="give ultrasound.mm_per_pixel"):
        load_ultrasound(tmp_path / "s.dcm")
    assert load_ultrasound(tmp_path / "s.dcm", (0.1, 0.1)).mm_per_px == (0.1, 0.1)


@pytest.mark.parametrize("missing", ["PhysicalDeltaX", "RegionLocationMaxX1"])
def test_a_region_lacking_a_calibration_attribute_names_the_file_region_and_attribute(
    simulated_case, tmp_path, missing
):
    import pydicom

    us, _, regions = _regions_for(simulated_case)
    path = tmp_path / "dropped.dcm"
    write_us_dicom(path, [us], regions)
    ds = pydicom.dcmread(path)
    delattr(ds.SequenceOfUltrasoundRegions[2], missing)  # e.g. dropped by an anonymiser
    ds.save_as(path)
    with pytest.raises(InputError, match=rf"dropped.dcm: SequenceOfUltrasoundRegions\[2\] lacks {missing}$"):
        load_ultrasound(path, needle_points=[(10.0, 10.0)])


HEADER_ROWS = 40  # a scanner's header strip above the image, where it burns in the patient line
PATIENT_LINE = "DOE^JANE  MRN778899  DOB 1970-01-01"


def _screen_case(case_dir, name: str, text: str) -> object:
    """The case's image on a scanner screen: a header strip above it holding ``text``, the DICOM
    region calibrating the image below it only."""
    case = yaml.safe_load((case_dir / "case.yaml").read_text())
    us = cv2.imread(str(case_dir / "us.png"), 0)
    screen = np.zeros((us.shape[0] + HEADER_ROWS, us.shape[1]), np.uint8)
    screen[HEADER_ROWS:] = us
    cv2.putText(screen, text, (5, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 255, 2)
    h, w = us.shape
    mm = case["ultrasound"]["mm_per_pixel"]
    region = {"box": (0, HEADER_ROWS, w - 1, HEADER_ROWS + h - 1), "delta_cm": (mm / 10, mm / 10)}
    write_us_dicom(case_dir / f"{name}.dcm", [screen], [region])
    case["ultrasound"] = {"image": f"{name}.dcm"}
    for end in ("start", "end"):
        case["tract"][end][1] += HEADER_ROWS
    (case_dir / f"{name}.yaml").write_text(yaml.safe_dump(case))
    return case_dir / f"{name}.yaml"


def test_text_burned_in_outside_the_calibrated_region_leaves_no_output(simulated_case, tmp_path):
    """The patient line above the image region is in no output: us.png and qa.png are the same
    images as for a screen whose header is empty, and the image itself is untouched."""
    register_case(_screen_case(simulated_case, "named", PATIENT_LINE), tmp_path / "named")
    register_case(_screen_case(simulated_case, "empty", ""), tmp_path / "empty")
    written = cv2.imread(str(tmp_path / "named" / "us.png"), 0)
    assert not written[:HEADER_ROWS].any()  # blanked
    assert np.array_equal(written[HEADER_ROWS:], cv2.imread(str(simulated_case / "us.png"), 0))
    for name in ("us.png", "qa.png", "label.png"):
        named = cv2.imread(str(tmp_path / "named" / name), -1)
        assert np.array_equal(named, cv2.imread(str(tmp_path / "empty" / name), -1)), name
    label = cv2.imread(str(tmp_path / "named" / "label.png"), 0)
    truth = cv2.imread(str(simulated_case / "truth.png"), 0)
    assert dice(confusion(label[HEADER_ROWS:], truth)) >= 0.95


def test_a_dicom_with_burned_in_text_and_no_region_to_keep_is_refused(simulated_case, tmp_path):
    import pydicom

    us = cv2.imread(str(simulated_case / "us.png"), 0)
    path = tmp_path / "burned.dcm"
    write_us_dicom(path, [us], [])
    ds = pydicom.dcmread(path)
    ds.BurnedInAnnotation = "YES"
    ds.save_as(path)
    with pytest.raises(
        InputError, match="burned.dcm: BurnedInAnnotation is YES and no SequenceOfUltrasoundRegions"
    ):
        load_ultrasound(path, (0.1, 0.1))
