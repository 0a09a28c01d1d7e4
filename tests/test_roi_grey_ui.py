"""Auto-detection on a scanner whose UI background is dark grey, not black.

Many scanners draw their screen on a dark grey (about 30) and the image on its own black. Detection
used to count only pixels brighter than the background as content, so the image's blacks (anechoic
tissue, a dim depth, the sector's edges) were taken for background: the ROI cut into the image, and
pydicom's real echo cine was never decided (the AI stayed off). Pixels clearly darker than a grey UI
now count too, without letting anything that is no image become the ROI: the patient line and the
header stay outside it, a patient form with fields darker than the UI and a lifted probe's black image
area stay undecided. Real images (the vendored BUSI sample, pydicom's echo cine and GE screen) on the
screens of :mod:`roi_screens`; real pixels through OpenCV, nothing mocked.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import roi_screens

from edge_runtime import yuv
from edge_runtime.config import build_config
from edge_runtime.frames import Frame
from edge_runtime.pipeline import roi_chooser
from edge_runtime.roi import detect_roi, screen_background

pydicom = pytest.importorskip("pydicom")
pydicom_data = pytest.importorskip("pydicom.data")

SAMPLE = sorted((Path(__file__).resolve().parent / "data" / "busi" / "images").glob("*.png"))
GREY_UI = 30
SCREEN = (1280, 720)
MAX_LOST = 0.01  # a ROI may leave out at most this share of the image's content
# The echo's ROI, decided on its first frame, may leave out more of a later frame: the frame number
# burnt into the image's corner, which the ROI leaves out as text, and dim flanks of the beating heart
# (measured: 1.2 % at most; on a black screen 4.4 %).
MAX_ECHO_LOST = 0.02
# pydicom's echo cine: its SequenceOfUltrasoundRegions box (84, 31, 595, 414) is given for a 640x480
# screen and its frames are 320x240, so the region is halved: the sector without the scanner's text.
ECHO_REGION = (42, 15, 298, 208)
# pydicom's GE screen (examples_jpeg2k.dcm, as tests/test_roi_header_text.py measures it): header text
# in rows 25 to 103, the image in rows 109 to 336 and columns 15 to 621.
GE_HEADER_ROWS = (25, 104)
GE_IMAGE_BOX = (15, 109, 622, 337)  # x0, y0, x1, y1 (exclusive ends)
GE_BLACK = 12  # the GE screen's background pixels are at most this grey
# A patient form drawn on the grey UI with fields darker than it, as a dark-themed dialog.
FORM_FIELDS = ("DOE", "JANE", "1234567", "1970-01-01")
FORM_X, FORM_Y, FORM_W, FORM_H, FORM_GAP = 200, 70, 362, 40, 2
FORM_SIZE = (640, 360)


def busi(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


def echo_frames() -> list[np.ndarray]:
    """The 30 gray image areas of pydicom's echo cine (pydicom gives its YBR colour as RGB)."""
    rgb = pydicom.dcmread(pydicom_data.get_testdata_file("examples_ybr_color.dcm")).pixel_array
    x0, y0, x1, y1 = ECHO_REGION
    return [cv2.cvtColor(np.ascontiguousarray(f[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY) for f in rgb]


def assert_frames(roi, truth: roi_screens.Truth, what: str, cut_tol: int | None) -> None:
    """The ROI is decided, takes in no annotation, and cuts at most ``cut_tol`` px into the image's box
    (None: only MAX_LOST of its content)."""
    got = roi_screens.score(roi, truth)
    assert not got.undecided, f"{what}: {roi.undecided}"
    assert got.ui_pixels == 0, f"{what}: ROI {roi.as_list()} takes in {got.ui_pixels} annotation pixels"
    assert got.cut_fraction <= MAX_LOST, f"{what}: ROI {roi.as_list()} loses {got.cut_fraction:.1%}"
    if cut_tol is not None:
        assert got.cut_px <= cut_tol, f"{what}: ROI {roi.as_list()} cuts {got.cut_px} px into {truth.box}"


def test_every_vendored_linear_image_on_a_grey_ui_is_framed_whole():
    """Before, 17 of the 30 images had the ROI cut into them, by up to 215 px (5.4 % of one's content)."""
    assert len(SAMPLE) == 30
    for path in SAMPLE:
        screen, truth = roi_screens.screen(busi(path), SCREEN, GREY_UI)
        assert_frames(detect_roi(screen), truth, path.stem, roi_screens.CUT_TOL_PX)


def test_every_vendored_sector_image_on_a_grey_ui_is_decided_and_kept_whole():
    """Before, two fans were undecided (the AI off) and six lost over 1 % of their content (5.2 % at most)."""
    for path in SAMPLE:
        screen, truth = roi_screens.screen(busi(path), SCREEN, GREY_UI, sector=True)
        assert_frames(detect_roi(screen), truth, path.stem, None)


@pytest.mark.parametrize("kind", ["bgr", "yuv"])
@pytest.mark.parametrize("sector", [False, True], ids=["linear", "sector"])
def test_the_echo_cine_on_a_grey_ui_is_decided_and_stays_decided(sector, kind):
    """Before, none of the 30 frames was decided. Now the first frame decides the ROI and every later
    frame keeps it: the per-frame check (likeness with the lower thresholds, the edges) passes on the
    raw frames, BGR and replay's YUV alike, so the AI does not flicker off."""
    chooser = roi_chooser.RoiChooser(build_config({}))
    first = None
    for index, image in enumerate(echo_frames()):
        screen, truth = roi_screens.screen(image, SCREEN, GREY_UI, sector=sector)
        if kind == "yuv":
            frame = yuv.YuvFrame(index, cv2.cvtColor(screen, cv2.COLOR_BGR2YUV_I420), 0.0)
        else:
            frame = Frame(index, screen, 0.0)
        roi = chooser.choose(frame)
        first = first or roi
        assert roi == first, f"frame {index}: the ROI was chosen again: {roi} after {first}"
        got = roi_screens.score(roi, truth)
        assert not got.undecided and got.ui_pixels == 0, (index, roi)
        assert got.cut_fraction <= MAX_ECHO_LOST, (index, roi, got)


def test_the_ge_screens_header_stays_out_on_a_grey_ui():
    """pydicom's GE screen with its black background raised to a grey UI: the header's five lines (IDs
    among them), a few pixels above the image, stay outside the ROI, as on the black original."""
    from edge_runtime.sources.opener import DicomCineSource

    source = DicomCineSource(pydicom_data.get_testdata_file("examples_jpeg2k.dcm"))
    image = next(iter(source)).image
    source.close()
    screen = image.copy()
    background = np.all(screen <= GE_BLACK, axis=2)
    x0, y0, x1, y1 = GE_IMAGE_BOX
    background[y0:y1, x0:x1] = False  # the image's own blacks stay black
    screen[background] = GREY_UI
    roi = detect_roi(screen)
    assert not roi.undecided, roi.undecided
    assert roi.y >= GE_HEADER_ROWS[1], f"ROI {roi.as_list()} takes in header rows {GE_HEADER_ROWS}"


def dark_form(ui: int, field: int, noise: float, seed: int) -> np.ndarray:
    """A patient form on a grey UI of level ``ui``: fields of grey ``field`` (darker than the UI)
    holding white text, through an analogue capture path of ``noise`` grey levels."""
    form = np.full((FORM_SIZE[1], FORM_SIZE[0]), ui, np.uint8)
    font = cv2.FONT_HERSHEY_DUPLEX
    cv2.putText(form, "New Patient", (40, 40), font, 0.8, 200, 2, cv2.LINE_AA)
    for i, value in enumerate(FORM_FIELDS):
        y = FORM_Y + i * (FORM_H + FORM_GAP)
        form[y : y + FORM_H, FORM_X : FORM_X + FORM_W] = field
        cv2.putText(form, value, (FORM_X + 10, y + 31), font, 0.9, 255, 2, cv2.LINE_AA)
    noisy = form + (np.random.default_rng(seed).normal(0, noise, form.shape) if noise else 0)
    return cv2.cvtColor(np.clip(np.round(noisy), 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


@pytest.mark.parametrize("ui", [24, 30, 50, 64])
def test_a_form_with_fields_darker_than_the_grey_ui_is_not_an_image(ui):
    """The fields are darker than the UI, so they count as content now; flat, or under analogue noise
    of up to 8 grey levels (which makes them look textured), they are no image: undecided."""
    for field in (0, 5, 10, 15, 20):
        for noise in (0.0, 2.0, 4.0, 6.0, 8.0):
            for seed in range(2 if noise else 1):
                roi = detect_roi(dark_form(ui, field, noise, seed))
                assert roi.undecided, f"fields {field} on UI {ui}, noise {noise}: {roi}"


@pytest.mark.parametrize("sector", [False, True], ids=["linear", "sector"])
@pytest.mark.parametrize("noise", [0.0, 4.0, 8.0])
def test_a_lifted_probes_black_image_area_on_a_grey_ui_is_undecided(noise, sector):
    """With the probe lifted the image area is the scanner's black (or nearly), darker than the UI
    around it, with the header, settings and caption about it: no image, whatever the noise."""
    for fill in (0, 8, 16):
        screen, _ = roi_screens.screen(np.full((300, 400), 250, np.uint8), SCREEN, GREY_UI, sector=sector)
        gray = screen[:, :, 0].astype(np.float32)
        gray[gray == 250] = fill
        gray += np.random.default_rng(fill).normal(0, noise, gray.shape) if noise else 0
        roi = detect_roi(np.clip(np.round(gray), 0, 255).astype(np.uint8))
        assert roi.undecided, f"black area at {fill}, noise {noise}: {roi}"


def test_black_and_video_range_screens_have_no_floor():
    """Only a dark grey UI has content below its background: on a black or video-range screen nothing
    darker than the background counts, so detection there is as before."""
    image = busi(SAMPLE[0])
    for level, video in ((0, False), (0, True), (16, False)):
        screen, _ = roi_screens.screen(image, SCREEN, level, video_range=video)
        assert screen_background(screen)[1] == 0, (level, video)
    grey, _ = roi_screens.screen(image, SCREEN, GREY_UI)
    assert screen_background(grey)[1] > 0
