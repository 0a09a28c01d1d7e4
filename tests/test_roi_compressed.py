"""Auto-detection on screens as lossy capture paths give them: H.264 and analogue noise.

Real BUSI images (the vendored sample) on the screens of :mod:`roi_screens` (header, patient line,
settings, grey bar, TGC curve, depth scale, caption, menu bar), put through a real H.264 round trip
(PyAV/libx264, as sonomap's own recordings, an RTSP stream or a scanner's recorded clip) or analogue
capture noise over the whole screen, UI and background included. H.264 rings around text, so the rows
between the patient line and the image were never plain background and the line stayed inside the ROI;
noise of 4 grey levels put 5 % of the background past the margin and closing joined it, text and
image into one region. The patient line stays out now (or the ROI stays undecided, the AI visibly off).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import roi_screens

from edge_runtime.roi import BACKGROUND_MARGIN, detect_roi, noise_margin, screen_background

SAMPLE = sorted((Path(__file__).resolve().parent / "data" / "busi" / "images").glob("*.png"))
SCREEN = (1280, 720)
GREY_UI = 30
NOISE_SIGMA = 4.0
BACKGROUNDS = {"black": (0, False), "video range": (0, True), "grey UI": (GREY_UI, False)}


def busi(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


def failures(screens, what: str) -> list[str]:
    """The screens (``(name, screen, truth)``) whose ROI holds an annotation pixel (``what``: "ui") or
    a pixel of the patient line ("patient"); an undecided ROI holds none."""
    bad = []
    for name, screen, truth in screens:
        roi = detect_roi(screen)
        got = roi_screens.score(roi, truth)
        if (got.ui_pixels if what == "ui" else got.patient_pixels) > 0:
            bad.append(
                f"{name}: ROI {roi.as_list()} holds {got.ui_pixels} UI px, {got.patient_pixels} patient"
            )
    return bad


def h264_screens(level: int, video: bool, sector: bool):
    for path in SAMPLE:
        screen, truth = roi_screens.screen(busi(path), SCREEN, level, sector=sector, video_range=video)
        yield path.stem, roi_screens.h264(screen), truth


def noisy_screens(level: int, video: bool, sector: bool):
    for seed, path in enumerate(SAMPLE):
        screen, truth = roi_screens.screen(busi(path), SCREEN, level, sector=sector, video_range=video)
        yield path.stem, roi_screens.noisy(screen, NOISE_SIGMA, seed), truth


def test_on_an_h264_grey_ui_screen_no_annotation_is_inside_the_roi():
    """Before, 28 of the 30 linear images took UI into the ROI, 18 of them the patient line."""
    assert len(SAMPLE) == 30
    assert failures(h264_screens(GREY_UI, False, False), "ui") == []


@pytest.mark.parametrize("background", sorted(BACKGROUNDS))
@pytest.mark.parametrize("sector", [False, True], ids=["linear", "sector"])
def test_on_an_h264_screen_the_patient_line_is_never_inside_the_roi(background, sector):
    """Before: black 22 (linear) and 12 (sector) of 30 ROIs held the patient line, video range 10 and 21,
    grey UI 18 and 23. One video-range fan (malignant_058) kept it after the ringing cut too, until a
    row's cluster narrower than a macroblock stopped counting as image (roi_trim.MIN_DENSE_SPAN_PX)."""
    level, video = BACKGROUNDS[background]
    assert failures(h264_screens(level, video, sector), "patient") == []


@pytest.mark.parametrize("background", sorted(BACKGROUNDS))
@pytest.mark.parametrize("sector", [False, True], ids=["linear", "sector"])
def test_under_analogue_noise_over_the_whole_screen_no_annotation_is_inside_the_roi(background, sector):
    """Before, on black, 30 of the 30 linear and 29 of the sector ROIs took UI in (28 and 27 the
    patient line); on video range and grey UI closing joined the noise into one region filling the
    frame and none was decided."""
    level, video = BACKGROUNDS[background]
    assert failures(noisy_screens(level, video, sector), "ui") == []


def test_under_analogue_noise_the_image_is_still_found():
    """A noisy screen is decided and keeps its image: the margin grows with the noise, not past it."""
    for seed, path in enumerate(SAMPLE[:10]):
        screen, truth = roi_screens.screen(busi(path), SCREEN)
        got = roi_screens.score(detect_roi(roi_screens.noisy(screen, NOISE_SIGMA, seed)), truth)
        assert not got.undecided and got.cut_fraction <= 0.02, (path.stem, got)


def test_the_content_margin_grows_with_the_borders_noise_only():
    """A clean screen, plain or through H.264, tells content from background by BACKGROUND_MARGIN; noise
    of 4 levels widens that to what the noise reaches (about 3.3 sigmas). Image-likeness keeps being
    judged against the background it was measured with."""
    screen, _ = roi_screens.screen(busi(SAMPLE[0]), SCREEN, GREY_UI)
    assert noise_margin(screen) == 0 and noise_margin(roi_screens.h264(screen)) == 0
    noisy = roi_screens.noisy(screen, NOISE_SIGMA)
    assert 3 * NOISE_SIGMA <= BACKGROUND_MARGIN + noise_margin(noisy) <= 4 * NOISE_SIGMA
    clean, measured = screen_background(screen), screen_background(noisy)
    assert all(abs(a - b) <= NOISE_SIGMA for a, b in zip(clean, measured, strict=True)), (clean, measured)
