"""Auto-detection on real ultrasound images laid out as a capture card sees a scanner's screen.

Real BUSI images (the vendored sample) on a screen built by :mod:`roi_screens`: header lines, the
patient line, a settings column, a grey bar, a TGC curve and a depth scale beside the image, a caption
under it, as a linear probe's rectangle and a curvilinear probe's fan. Real pixels through OpenCV,
nothing mocked.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import roi_screens

from edge_runtime import likeness, roi_edges
from edge_runtime.roi import detect_roi, screen_level
from edge_runtime.sources.synthetic import ScreenSimulator

SAMPLE = Path(__file__).resolve().parent / "data" / "busi" / "images"
# Images whose header line reaches past the image's right side on a 1280x720 screen: before, the ROI
# kept the columns the header reached once the header was cut, taking in the grey bar beside the image.
WIDE_HEADER = ("benign_041", "malignant_002", "malignant_163")
BACKGROUNDS = {"black": (0, False), "video range": (0, True), "grey UI": (30, False)}
SCREEN = (1280, 720)
ZOOM_OUT = 0.8  # the scanner's depth changed: the image shrinks about the screen's centre
MOTION_FRAMES = range(1, 90, 4)  # one sweep of the simulated probe (ScreenSimulator's period)


def busi(name: str) -> np.ndarray:
    return cv2.imread(str(SAMPLE / f"{name}.png"), cv2.IMREAD_GRAYSCALE)


@pytest.mark.parametrize("background", sorted(BACKGROUNDS))
@pytest.mark.parametrize("name", WIDE_HEADER)
def test_the_roi_takes_in_no_annotation_beside_a_linear_image(name, background):
    level, video = BACKGROUNDS[background]
    screen, truth = roi_screens.screen(busi(name), SCREEN, level, sector=False, video_range=video)
    roi = detect_roi(screen)
    got = roi_screens.score(roi, truth)
    assert not got.undecided, roi.undecided
    assert got.ui_pixels == 0, f"ROI {roi.as_list()} takes in {got.ui_pixels} annotation pixels"
    assert got.cut_px <= roi_screens.CUT_TOL_PX, f"ROI {roi.as_list()} cuts the image {truth.box}"


def fan_screen(sim: ScreenSimulator, index: int) -> np.ndarray:
    """Frame ``index`` of the simulated probe sweep, its image cut to a fan (gray)."""
    screen = sim.background[:, :, 0].copy()
    fan = roi_screens.fan_mask(sim.roi.h, sim.roi.w)
    sim.roi.crop(screen)[fan] = sim.ultrasound(index)[fan]
    return screen


@pytest.mark.parametrize("name", ["malignant_002", "malignant_028"])
def test_a_fan_image_that_shrinks_gets_its_roi_chosen_again(name):
    """A fan fills neither its box's corners nor whole side bands: before, no side of a fan's ROI was
    checked and a depth change that shrank the image left the old ROI over the screen around it."""
    screen, _ = roi_screens.screen(busi(name), SCREEN, sector=True)
    gray = cv2.cvtColor(screen, cv2.COLOR_BGR2GRAY)
    roi, level = detect_roi(gray), screen_level(gray)
    assert not roi.undecided, roi.undecided
    edges = roi_edges.filled_sides(likeness.sampled_gray(roi.crop(gray)), level)
    centre = (SCREEN[0] / 2, SCREEN[1] / 2)
    shrunk = cv2.warpAffine(gray, cv2.getRotationMatrix2D(centre, 0, ZOOM_OUT), SCREEN)
    why = roi_edges.emptied(likeness.sampled_gray(roi.crop(shrunk)), level, edges)
    assert "bottom" in why, (edges.filled, why)


@pytest.mark.parametrize("noise", [0.0, 6.0])
def test_a_fan_image_under_probe_motion_keeps_its_roi(noise):
    """The fan's outline stays where the scanner draws it while the tissue in it slides and tilts: no
    side is taken for emptied over a whole sweep, clean or with analogue noise."""
    sim = ScreenSimulator(
        SAMPLE / "malignant_028.png", screen_w=SCREEN[0], screen_h=SCREEN[1], noise_sigma=noise
    )
    first = fan_screen(sim, 0)
    roi, level = detect_roi(first), screen_level(first)
    assert not roi.undecided, roi.undecided
    edges = roi_edges.filled_sides(likeness.sampled_gray(roi.crop(first)), level)
    assert any(edges.filled), "the test's premise: some side of the fan is checked"
    for i in MOTION_FRAMES:
        assert not roi_edges.emptied(likeness.sampled_gray(roi.crop(fan_screen(sim, i))), level, edges), i
