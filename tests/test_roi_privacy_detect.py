"""Automatic ROI detection accepts only a region that looks like an ultrasound image.

Screens that used to be taken for the image, and kept the patient's data in every output:
a "New Patient" form (grey input fields holding name, ID and birth date), a grey header bar
2 px above the image (it joined the image, patient line and all), a scanner UI whose black is
video-range 16 or dark grey (the whole screen became the image), a text-only screen on such a
background, and a frame filled edge to edge; and the form through an analogue capture path, whose
noise makes the fields' flat fill look textured and spreads its grey levels. Every vendored BUSI
image, rendered into a scanner screen by make-clip's simulator, must still be found: real pixels,
real OpenCV, nothing mocked.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from edge_runtime.roi import Roi, detect_roi, resolve_roi
from edge_runtime.sinks.mp4 import Mp4Sink
from edge_runtime.sources.synthetic import ScreenSimulator

BUSI_IMAGES = sorted((Path(__file__).resolve().parent / "data" / "busi" / "images").glob("*.png"))
PATIENT_LINE = "DOE^JANE  ID 1234567  DOB 1970-01-01"
SMALL = (640, 360)  # the reviewers' screen size: fast, and the hardest for closing gaps
POSITION_TOL_PX, SIZE_TOL_PX = 2, 4  # as tests/test_sources.py allows for the demo's ROI
# The form: grey input fields stacked with thin gaps, white text in them (a scanner's patient dialog).
FORM_FIELD_LEVEL, FORM_TEXT_LEVEL, FORM_LABEL_LEVEL = 72, 255, 200
FORM_FIELDS = (
    ("Last name", "DOE"),
    ("First name", "JANE"),
    ("Patient ID", "1234567"),
    ("Birth date", "1970-01-01"),
)
FORM_X, FORM_Y, FORM_W, FORM_H, FORM_GAP = 200, 70, 362, 40, 2  # gaps the closing joins
# Analogue capture noise (grey levels) that made the form's fields pass for an image, field greys from
# dark to light, and noise draws of each.
NOISY_FORM_NOISE = (4.0, 6.0, 8.0)
FORM_FIELD_GREYS = (30, 72, 140, 200)
NOISY_FORM_SEEDS = 2
HEADER_LEVEL = 40  # a grey header bar behind the scanner's text lines
VIDEO_BLACK, VIDEO_WHITE = 16, 235  # a limited-range ("TV") capture card's black and white
GREY_UI_LEVEL = 20


def screen(image: Path = BUSI_IMAGES[0], size=SMALL, noise: float = 0.0, index: int = 0):
    """(BGR scanner screen with the patient line, the true image rect) from make-clip's simulator."""
    sim = ScreenSimulator(
        image, screen_w=size[0], screen_h=size[1], noise_sigma=noise, patient_line=PATIENT_LINE
    )
    return sim.frame(index), sim


def form_screen(size=SMALL, field: int = FORM_FIELD_LEVEL) -> np.ndarray:
    """A "New Patient" form: labels on black, grey fields (grey ``field``) with the patient's name, ID
    and birth date."""
    out = np.zeros((size[1], size[0], 3), np.uint8)
    font = cv2.FONT_HERSHEY_DUPLEX
    cv2.putText(out, "New Patient", (40, 40), font, 0.8, (FORM_LABEL_LEVEL,) * 3, 2, cv2.LINE_AA)
    for i, (label, value) in enumerate(FORM_FIELDS):
        y = FORM_Y + i * (FORM_H + FORM_GAP)
        cv2.putText(out, label, (40, y + 27), font, 0.5, (FORM_LABEL_LEVEL,) * 3, 1, cv2.LINE_AA)
        out[y : y + FORM_H, FORM_X : FORM_X + FORM_W] = field
        cv2.putText(out, value, (FORM_X + 10, y + 31), font, 0.9, (FORM_TEXT_LEVEL,) * 3, 2, cv2.LINE_AA)
    return out


def noisy_form_screen(noise: float, field: int = FORM_FIELD_LEVEL, size=SMALL, seed: int = 0) -> np.ndarray:
    """:func:`form_screen` (fields at grey ``field``) scaled to ``size``, through an analogue capture
    path: Gaussian noise of ``noise`` grey levels on every pixel of the screen, gray as make-clip's."""
    form = form_screen(field=field).astype(np.float32)
    if size != SMALL:
        shrink = size[0] < SMALL[0]
        form = cv2.resize(form, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    form += np.random.default_rng(seed).normal(0, noise, form.shape[:2])[:, :, None]
    return np.clip(np.round(form), 0, 255).astype(np.uint8)


def header_bar_screen() -> tuple[np.ndarray, ScreenSimulator]:
    """The clip's screen with a grey header bar behind its text lines, ending 2 px above the image."""
    image, sim = screen()
    bar = image[: sim.roi.y - 2]
    np.maximum(bar, HEADER_LEVEL, out=bar)
    return image, sim


def video_range(image: np.ndarray) -> np.ndarray:
    """A full-range screen as a limited-range capture card delivers it: black 16, white 235."""
    lut = np.round(VIDEO_BLACK + np.arange(256) * (VIDEO_WHITE - VIDEO_BLACK) / 255).astype(np.uint8)
    return cv2.LUT(image, lut)


def grey_ui(image: np.ndarray, sim: ScreenSimulator, level: int = GREY_UI_LEVEL) -> np.ndarray:
    """The screen with its near-black UI background raised to a dark grey (the image untouched)."""
    out = image.copy()
    outside = np.ones(out.shape[:2], bool)
    outside[sim.roi.y : sim.roi.y + sim.roi.h, sim.roi.x : sim.roi.x + sim.roi.w] = False
    background = outside & (out[:, :, 0] <= image[0, 0, 0])
    out[background] = level
    return out


def text_only(level: int, size=SMALL) -> np.ndarray:
    out = np.full((size[1], size[0], 3), level, np.uint8)
    cv2.putText(out, PATIENT_LINE, (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (200,) * 3, 1, cv2.LINE_AA)
    return out


def sim_roi(width: int, height: int) -> Roi:
    """The image rect make-clip's simulator uses on a ``width`` x ``height`` screen."""
    return screen(size=(width, height))[1].roi


def assert_found(roi: Roi, truth: Roi, what: str) -> None:
    assert not roi.undecided, f"{what}: {roi.undecided}"
    assert abs(roi.x - truth.x) <= POSITION_TOL_PX and abs(roi.y - truth.y) <= POSITION_TOL_PX, (
        what,
        roi,
        truth,
    )
    assert abs(roi.w - truth.w) <= SIZE_TOL_PX and abs(roi.h - truth.h) <= SIZE_TOL_PX, (what, roi, truth)


def covers(roi: Roi, box) -> bool:
    """Whether any pixel of ``box`` (x, y, w, h) lies inside ``roi``."""
    x, y, w, h = box
    return x < roi.x + roi.w and roi.x < x + w and y < roi.y + roi.h and roi.y < y + h


@pytest.mark.parametrize("size,noise", [((1280, 720), 6.0), (SMALL, 0.0), ((320, 180), 6.0)])
def test_every_vendored_busi_image_is_found_on_a_scanner_screen(size, noise):
    """No real image is refused: each of the 30 BUSI images, on make-clip's screen (analogue noise of
    6 grey levels, or a clean digital picture), mid-sweep too, is the ROI, to a couple of pixels."""
    assert len(BUSI_IMAGES) == 30
    for path in BUSI_IMAGES:
        for index in (0, 45):
            image, sim = screen(path, size, noise, index)
            assert_found(detect_roi(image), sim.roi, f"{path.stem} frame {index} at {size}")


def test_the_demo_screen_is_found_at_1080p():
    image, sim = screen(size=(1920, 1080), noise=6.0)
    assert_found(detect_roi(image), sim.roi, "demo")


def test_each_busi_image_looks_like_an_image_on_its_own():
    """The image-likeness check itself, on the native images (their own size, no screen around)."""
    from edge_runtime.roi import image_likeness, screen_level

    dark = screen_level(np.zeros((SMALL[1], SMALL[0]), np.uint8))  # a black scanner screen's
    for path in BUSI_IMAGES:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        assert image_likeness(gray, dark) == "", path.stem


def test_a_patient_form_is_not_an_image():
    """The grey fields join into one large bright region; it is flat fill and text, not speckle."""
    form = form_screen()
    roi = detect_roi(form)
    assert roi.undecided, f"the form's fields were taken for the image: {roi}"
    assert roi.as_list() == [0, 0, *SMALL]  # undecided: the whole frame is blanked


def h264_round_trip(screens: list[np.ndarray], folder: Path) -> list[np.ndarray]:
    """``screens`` as replay sees them from a recorded clip: through H.264 and back (BGR)."""
    clip = folder / "form.mp4"
    sink = Mp4Sink(clip, preset="veryfast")
    for image in screens:
        sink.write(image)
    sink.close()
    with av.open(str(clip)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(c.streams.video[0])]


@pytest.mark.parametrize(
    "size,codec", [((320, 180), "png"), (SMALL, "png"), (SMALL, "h264"), ((1280, 720), "h264")]
)
@pytest.mark.parametrize("noise", NOISY_FORM_NOISE)
def test_a_patient_form_through_analogue_noise_is_never_the_roi(tmp_path, noise, size, codec):
    """The noise makes the fields' flat fill look textured and spreads its grey levels, so the form
    passed the first three measures (as a PNG at 320x180, through H.264 at 640x360 and 720p, where
    H.264 smooths the noise on the black around it away); its fields are still one flat grey level
    once the noise is averaged out over blocks (the flat share), whatever their grey."""
    cases = [(field, seed) for field in FORM_FIELD_GREYS for seed in range(NOISY_FORM_SEEDS)]
    screens = [noisy_form_screen(noise, field, size, seed) for field, seed in cases]
    if codec == "h264":
        screens = h264_round_trip(screens, tmp_path)
    assert len(screens) == len(cases)
    for (field, seed), image in zip(cases, screens, strict=True):
        roi = detect_roi(image)
        assert roi.undecided, f"a form (fields {field}, noise {noise}, draw {seed}) became the ROI {roi}"


def test_a_grey_header_bar_next_to_the_image_is_cut_away():
    """The bar ends 2 px above the image, closer than the gap closing joins: the ROI is the image
    alone, and never reaches the patient line."""
    image, sim = header_bar_screen()
    roi = detect_roi(image)
    assert not covers(roi, sim.patient_box), f"ROI {roi} keeps the patient line {sim.patient_box}"
    assert_found(roi, sim.roi, "header bar")


def test_video_range_black_is_measured_from_the_screen_border():
    image, sim = screen()
    assert_found(detect_roi(video_range(image)), sim.roi, "video-range black 16")
    assert_found(
        detect_roi(video_range(screen(size=(1280, 720), noise=6.0)[0])), sim_roi(1280, 720), "16 at 720p"
    )


@pytest.mark.parametrize("level", [13, GREY_UI_LEVEL, HEADER_LEVEL])
def test_a_dark_grey_ui_background_is_measured_too(level):
    image, sim = screen()
    roi = detect_roi(grey_ui(image, sim, level))
    assert not covers(roi, sim.patient_box)
    assert_found(roi, sim.roi, f"grey UI {level}")


@pytest.mark.parametrize("level", [0, 13, VIDEO_BLACK, GREY_UI_LEVEL, HEADER_LEVEL])
def test_a_text_only_screen_is_undecided_on_any_background(level):
    assert detect_roi(text_only(level)).undecided


def test_a_region_filling_the_frame_edge_to_edge_is_undecided_unless_full_is_configured():
    """Nothing of a screen border is seen, so nothing tells a cropped image from a whole screen whose
    background was taken for content: only the operator's ``full`` makes the whole frame the image."""
    for path in BUSI_IMAGES[:5]:
        image = cv2.imread(str(path))
        roi = detect_roi(image)
        assert roi.undecided, f"{path.stem}: {roi}"
        assert not resolve_roi("full", image).undecided
    banded = cv2.imread(str(BUSI_IMAGES[0]))
    banded[:48] = 0  # a dark margin above the image: a border is seen, the image is found
    roi = detect_roi(banded)
    assert not roi.undecided and roi.y >= 48 and roi.h >= banded.shape[0] - 48 - POSITION_TOL_PX
