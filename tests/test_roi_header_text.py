"""Header text that closing joins to the ultrasound image stays outside the auto-detected ROI.

pydicom ships a real GE scanner screen, examples_jpeg2k.dcm, whose header (institution "BAPTIST MED
CTR", IDs, probe and preset) ends a few pixels above the image: closing joined its lines to the
image, the ROI took them in, and they reached the replay output, the raw recording and the mask
dumps. The same with a patient line printed just above the image of make-clip's simulated screen.
Real pixels (pydicom's JPEG 2000 decoding, OpenCV, H.264 through PyAV), nothing mocked.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from edge_runtime.roi import Roi, blank_rects, detect_roi
from edge_runtime.sinks.mp4 import Mp4Sink
from edge_runtime.sources.opener import DicomCineSource
from edge_runtime.sources.synthetic import ScreenSimulator

pydicom_data = pytest.importorskip("pydicom.data")

# examples_jpeg2k.dcm, a 640x480 screen, measured on its pixels: five lines of header text (white, on
# both sides) in rows 25 to 103, the B-mode image (a dual view with colour Doppler) in rows 109 to
# 336 and columns 15 to 621.
HEADER_ROWS = (25, 104)  # first, end (exclusive)
IMAGE_BOX = (15, 109, 622, 337)  # x0, y0, x1, y1 (exclusive ends)
TEXT_LEVEL = 200  # the header's white text is brighter than this; the black around it is not
BUSI_IMAGE = Path(__file__).resolve().parent / "data" / "busi" / "images" / "malignant_002.png"
PATIENT_LINE = "DOE^JANE  ID 1234567  DOB 1970-01-01"
SMALL = (640, 360)
LINE_GAP_PX = 2  # between the patient line and the image: closing (4 px at 640x360) joins them
LINE_SCALE, LINE_LEVEL = 0.5, 200  # the patient line's font scale and grey
POSITION_TOL_PX, SIZE_TOL_PX = 2, 4  # as tests/test_roi_privacy_detect.py allows


def j2k_screen() -> np.ndarray:
    """The first frame of examples_jpeg2k.dcm as the DICOM cine source gives it (BGR)."""
    return next(iter(DicomCineSource(pydicom_data.get_testdata_file("examples_jpeg2k.dcm")))).image


def through_h264(image: np.ndarray, folder: Path) -> np.ndarray:
    """``image`` as replay sees it from a recording of the screen: through H.264 and back (BGR)."""
    clip = folder / "screen.mp4"
    sink = Mp4Sink(clip, preset="veryfast")
    sink.write(image)
    sink.close()
    with av.open(str(clip)) as c:
        return next(c.decode(c.streams.video[0])).to_ndarray(format="bgr24")


def blanked(image: np.ndarray, roi: Roi) -> np.ndarray:
    """``image`` with everything outside ``roi`` black, as de-identification leaves it."""
    out = image.copy()
    for x0, y0, x1, y1 in blank_rects(out.shape[:2], roi):
        out[y0:y1, x0:x1] = 0
    return out


@pytest.mark.parametrize("codec", ["dicom", "h264"])
def test_the_header_text_of_a_real_scanner_screen_is_outside_the_roi(tmp_path, codec):
    image = j2k_screen()
    if codec == "h264":
        image = through_h264(image, tmp_path)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert np.count_nonzero(gray[slice(*HEADER_ROWS)] > TEXT_LEVEL)  # the header is there to leak
    roi = detect_roi(image)
    assert not roi.undecided, roi.undecided
    assert roi.y >= HEADER_ROWS[1], f"ROI {roi.as_list()} keeps header rows {HEADER_ROWS}"
    x0, y0, x1, y1 = IMAGE_BOX
    assert roi.x <= x0 and roi.y <= y0 and roi.x + roi.w >= x1 and roi.y + roi.h >= y1, (
        f"ROI {roi.as_list()} cuts into the image {IMAGE_BOX}"
    )
    kept = cv2.cvtColor(blanked(image, roi), cv2.COLOR_BGR2GRAY)
    assert not np.any(kept[: HEADER_ROWS[1]]), "header pixels survive de-identification"


def test_a_patient_line_printed_just_above_the_image_is_cut_away():
    """make-clip's screen, with the patient line printed LINE_GAP_PX above the image: the ROI is the
    image alone, to a couple of pixels."""
    sim = ScreenSimulator(BUSI_IMAGE, screen_w=SMALL[0], screen_h=SMALL[1], noise_sigma=0.0)
    image, truth = sim.frame(0), sim.roi
    (_, text_h), baseline = cv2.getTextSize(PATIENT_LINE, cv2.FONT_HERSHEY_SIMPLEX, LINE_SCALE, 1)
    bottom = truth.y - LINE_GAP_PX
    origin = (truth.x, bottom - baseline)
    cv2.putText(image, PATIENT_LINE, origin, cv2.FONT_HERSHEY_SIMPLEX, LINE_SCALE, (LINE_LEVEL,) * 3, 1)
    roi = detect_roi(image)
    assert not roi.undecided, roi.undecided
    assert roi.y >= bottom, f"ROI {roi.as_list()} keeps the patient line (rows {bottom - text_h} to {bottom})"
    assert abs(roi.x - truth.x) <= POSITION_TOL_PX and abs(roi.y - truth.y) <= POSITION_TOL_PX, (roi, truth)
    assert abs(roi.w - truth.w) <= SIZE_TOL_PX and abs(roi.h - truth.h) <= SIZE_TOL_PX, (roi, truth)
