"""make-clip's simulated screen keeps its patient line off the image at every screen shape.

The text was scaled by the screen's height while the image area was scaled to fit the width too (and
not scaled above 1080p), so on a 4:3 screen (640x480, 1024x768: common scanner outputs) and above
1080p the patient line was printed over the image's top rows: no ROI could leave it out, and a replay
of the clip put the birth date into its raw recording. Real simulator, real OpenCV ROI detection.
"""

from __future__ import annotations

import pytest

from edge_runtime.roi import blank_rects, detect_roi
from edge_runtime.sources.synthetic import ScreenSimulator, default_image

PATIENT_LINE = "DOE^JANE 123456 1970-01-01"
MIN_GAP_PX = 4  # between the patient line's box (with its anti-aliased rim) and the image
BLANK_MAX = 0  # a PNG-exact screen: de-identified pixels are black


@pytest.mark.parametrize("size", [(640, 360), (640, 480), (1024, 768), (2560, 1440)])
def test_the_patient_line_sits_above_the_image_and_is_blanked(size):
    sim = ScreenSimulator(
        default_image(), screen_w=size[0], screen_h=size[1], noise_sigma=0.0, patient_line=PATIENT_LINE
    )
    x, y, w, h = sim.patient_box
    assert y + h + MIN_GAP_PX <= sim.roi.y, f"{size}: patient line {sim.patient_box} on the image {sim.roi}"
    screen = sim.frame(0)
    roi = detect_roi(screen)
    assert not roi.undecided, roi.undecided
    for x0, y0, x1, y1 in blank_rects(screen.shape[:2], roi):
        screen[y0:y1, x0:x1] = 0
    assert int(screen[y : y + h, x : x + w].max()) <= BLANK_MAX, f"{size}: ROI {roi.as_list()} keeps the line"
