"""A patient form before or during the clip never leaves the process, through the real ``sonomap replay``.

The form (grey fields with the patient's name, ID and birth date) used to be taken for the image
on the first frame and kept for the whole session, and a form opened after the image was found was
recorded through the old ROI. Now the form's frames are blanked whole (raw recording and mask dump),
and the image is found again once it is back. A PNG folder (BGR frames) and an H.264 clip (replay's
YUV path) of the same screens, named after the patient.

The re-check has hysteresis (tested on the ROI chooser itself): a dim image hovering at the deciding
threshold stays the ROI frame after frame, and flat fill, black, a form or a dimmer image still go at
once. A form through an analogue capture path (noise that makes its fields look textured) goes at once
too, on a BGR frame and on replay's YUV path.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli import sonomap
from clips import decode
from runtime_model import dark_onnx
from test_roi_privacy_detect import (
    BUSI_IMAGES,
    FORM_FIELD_GREYS,
    NOISY_FORM_NOISE,
    NOISY_FORM_SEEDS,
    POSITION_TOL_PX,
    SMALL,
    form_screen,
    noisy_form_screen,
    screen,
)

from edge_runtime import yuv
from edge_runtime.config import build_config
from edge_runtime.frames import Frame
from edge_runtime.likeness import (
    FEW_GREY_LEVELS,
    KEEP_GREY_SPREAD,
    MIN_GREY_SPREAD,
    image_likeness,
    measure,
    sample,
)
from edge_runtime.pipeline import roi_chooser
from edge_runtime.roi import Roi, screen_level
from edge_runtime.sinks.mp4 import Mp4Sink
from edge_runtime.sources.synthetic import ScreenSimulator

PATIENT = "DOE_JANE_1970"  # the inputs' name: no log line may carry it
BLANK_MAX = 16  # black within H.264 noise
IMAGE_MIN_MEAN = 20  # the B-mode image's mean grey level is well above this
FPS = 30


def session(root: Path, layout: list[tuple[str, int]], kind: str) -> tuple[Path, list[str], object]:
    """Screens in ``layout`` order (("clip" | "form", count) runs) as a PNG folder or an mp4 named
    after the patient: (input, the kind of each frame, the simulator)."""
    _, sim = screen()
    frames, kinds, index = [], [], 0
    for what, count in layout:
        for _ in range(count):
            frames.append(sim.frame(index) if what == "clip" else form_screen())
            kinds.append(what)
            index += 1
    if kind == "folder":
        folder = root / PATIENT
        folder.mkdir()
        for i, image in enumerate(frames):
            cv2.imwrite(str(folder / f"{i:03d}.png"), image)
        return folder, kinds, sim
    clip = root / f"{PATIENT}.mp4"
    sink = Mp4Sink(clip, fps=FPS, preset="veryfast")
    for image in frames:
        sink.write(image)
    sink.close()
    return clip, kinds, sim


def replay(source: Path, out: Path):
    """``sonomap -v replay`` with every output: (stderr, rendered frames, raw frames, dumped screens,
    summary)."""
    rendered, raw, masks, summary = out / "o.mp4", out / "raw.mp4", out / "masks", out / "s.json"
    result = sonomap(
        *("-v", "replay", source, "--model", dark_onnx(), "--out", rendered, "--record-raw", raw),
        *("--save-masks", masks, "--summary", summary),
    )
    dumped = [cv2.imread(str(p)) for p in sorted(masks.glob("*_frame.png"))]
    return result.stderr, decode(rendered), decode(raw), dumped, json.loads(summary.read_text())


def assert_no_form_leaves(kinds, raw, dumped, stderr) -> None:
    for i, what in enumerate(kinds):
        if what == "form":
            assert raw[i].max() <= BLANK_MAX, f"frame {i}, the form, is in the raw recording"
            assert dumped[i].max() == 0, f"frame {i}, the form, is in the mask dump"
    assert PATIENT not in stderr and "DOE" not in stderr and "JANE" not in stderr


@pytest.mark.parametrize("kind", ["folder", "mp4"])
def test_a_form_before_the_image_is_blanked_and_the_image_found_after(tmp_path, kind):
    source, kinds, sim = session(tmp_path, [("form", 10), ("clip", 12)], kind)
    stderr, rendered, raw, dumped, stats = replay(source, tmp_path)
    assert len(raw) == len(dumped) == len(kinds)
    assert_no_form_leaves(kinds, raw, dumped, stderr)
    assert stats["roi"] is not None and abs(stats["roi"][0] - sim.roi.x) <= POSITION_TOL_PX, stats["roi"]
    assert abs(stats["roi"][2] - sim.roi.w) <= 2 * POSITION_TOL_PX
    assert stats["roi_undecided_frames"] >= kinds.count("form")
    assert sim.roi.crop(raw[-1]).mean() > IMAGE_MIN_MEAN  # the image (and the AI) came back


@pytest.mark.parametrize("kind", ["folder", "mp4"])
def test_a_form_opened_after_the_image_was_found_is_blanked_whole(tmp_path, kind):
    """The decided ROI is checked on every frame: the form's first frame already chooses again (no
    image: undecided, blanked whole), and the image is found again when the form closes."""
    source, kinds, sim = session(tmp_path, [("clip", 6), ("form", 8), ("clip", 10)], kind)
    stderr, rendered, raw, dumped, stats = replay(source, tmp_path)
    assert len(raw) == len(kinds)
    assert sim.roi.crop(raw[0]).mean() > IMAGE_MIN_MEAN  # the image was found on the first frame
    assert_no_form_leaves(kinds, raw, dumped, stderr)
    assert sim.roi.crop(raw[-1]).mean() > IMAGE_MIN_MEAN and stats["roi_undecided"] == ""
    first_form = kinds.index("form")
    assert f"frame {first_form}:" in stderr, stderr[-2000:]  # the warning names where the image went


# --- hysteresis: a decided ROI is re-checked by lower thresholds than it was decided by -------------
HOVER_FRAMES = 12  # consecutive frames of the simulated sweep, at one gain
GAIN_PERCENT_STEPS = range(100, 0, -1)  # the gains tried, in percent, from full down
MIN_HOVERING_IMAGES = 20  # of the 30: the others fail on texture first, or their sweep leaves the band
FLAT_LEVEL = 72  # a form field's grey (test_roi_privacy_detect.FORM_FIELD_LEVEL)


def dim(image: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(np.round(image.astype(np.float32) * gain), 0, 255).astype(np.uint8)


def dimmed_screen(sim, index: int, gain: float) -> np.ndarray:
    """Frame ``index`` of the simulated screen with the image's gain turned down (the screen stays)."""
    image = sim.frame(index)
    sim.roi.crop(image)[:] = dim(sim.roi.crop(image), gain)
    return image


def gray_roi(image: np.ndarray, roi) -> np.ndarray:
    return cv2.cvtColor(roi.crop(image), cv2.COLOR_BGR2GRAY)


def hovering_gain(sim, roi, level: int) -> float | None:
    """The highest gain at which the deciding check refuses frame 0 for its grey spread alone: the
    image sits just under the deciding threshold. None when another measure fails first."""
    picked = sample(gray_roi(sim.frame(0), roi))  # the pixels the check looks at, dimmed alone: fast
    for percent in GAIN_PERCENT_STEPS:
        why = image_likeness(dim(picked, percent / 100), level)
        if why:
            return percent / 100 if why == FEW_GREY_LEVELS else None
    return None


def decided(sim, chooser) -> tuple[Roi, int]:
    """Choose on the undimmed first frame: (the decided ROI, the screen's dark level)."""
    first = sim.frame(0)
    roi = chooser.choose(Frame(0, first, 0.0, None, {}))
    assert not roi.undecided, roi
    return roi, screen_level(first)


@pytest.mark.parametrize("noise", [0.0, 6.0], ids=["digital", "analogue"])
def test_a_dim_image_hovering_at_the_deciding_threshold_stays_decided(noise):
    """The vendored BUSI images, their gain turned down until the grey spread sits between the keeping
    and the deciding threshold, stay the ROI frame after frame of the sweep, where one threshold made
    the AI go off (and frames blank) as soon as a frame's spread fell under it. An image whose sweep
    moves its spread out of the band (under the keeping threshold) is not this case and is left out."""
    hovering = 0
    for path in BUSI_IMAGES:
        sim = ScreenSimulator(path, screen_w=SMALL[0], screen_h=SMALL[1], noise_sigma=noise)
        chooser = roi_chooser.RoiChooser(build_config({}))
        roi, level = decided(sim, chooser)
        gain = hovering_gain(sim, roi, level)
        if gain is None:
            continue
        # frame 0 (the one decided on) again, now dimmed: under the deciding threshold; and on
        images = [dimmed_screen(sim, index, gain) for index in range(HOVER_FRAMES)]
        spreads = [measure(gray_roi(image, roi), level).spread for image in images]
        if min(spreads) < KEEP_GREY_SPREAD:
            continue
        assert min(spreads) < MIN_GREY_SPREAD, (path.stem, spreads)
        hovering += 1
        for index, image in enumerate(images):
            got = chooser.choose(Frame(index, image, 0.0, None, {}))
            assert got == roi, f"{path.stem} at gain {gain}, frame {index} (spreads {spreads}): {got}"
    assert hovering >= MIN_HOVERING_IMAGES


def flat_screen(sim, index: int, gain: float) -> np.ndarray:
    image = sim.frame(index)
    sim.roi.crop(image)[:] = FLAT_LEVEL
    return image


def black_screen(sim, index: int, gain: float) -> np.ndarray:
    image = sim.frame(index)
    sim.roi.crop(image)[:] = 0  # the probe lifted: the scanner's frame around a black image
    return image


def dimmer_screen(sim, index: int, gain: float) -> np.ndarray:
    return dimmed_screen(sim, index, gain * 0.8)  # the spread now under the keeping threshold


def patient_form(sim, index: int, gain: float) -> np.ndarray:
    return form_screen()


@pytest.mark.parametrize("then", [flat_screen, black_screen, dimmer_screen, patient_form])
def test_after_hovering_a_flat_blank_or_dimmer_roi_is_undecided_on_its_first_frame(then):
    """The lower threshold is no licence: once the ROI holds flat fill, black, a patient form, or the
    image dimmed below the keeping threshold, that very frame is blanked whole (undecided), and the
    ones after it until an image is back."""
    _, sim = screen()
    chooser = roi_chooser.RoiChooser(build_config({}))
    roi, level = decided(sim, chooser)
    gain = hovering_gain(sim, roi, level)
    assert gain is not None
    for index in range(HOVER_FRAMES):
        assert chooser.choose(Frame(index, dimmed_screen(sim, index, gain), 0.0, None, {})) == roi
    for index in range(HOVER_FRAMES, 2 * HOVER_FRAMES):
        image = then(sim, index, gain)
        if then is dimmer_screen:
            assert measure(gray_roi(image, roi), level).spread < KEEP_GREY_SPREAD
        got = chooser.choose(Frame(index, image, 0.0, None, {}))
        assert got.undecided, f"frame {index} ({then.__name__}) kept the ROI {got}"


def as_frame(index: int, image: np.ndarray, kind: str) -> Frame:
    """The BGR ``image`` as a BGR frame, or as an I420 frame (replay's YUV path: limited-range luma)."""
    if kind == "yuv":
        return yuv.YuvFrame(index, cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), 0.0)
    return Frame(index, image, 0.0)


@pytest.mark.parametrize("kind", ["bgr", "yuv"])
@pytest.mark.parametrize("size", [SMALL, (1280, 720)])
@pytest.mark.parametrize("noise", NOISY_FORM_NOISE)
def test_a_noisy_patient_form_over_a_decided_roi_is_undecided_on_its_first_frame(noise, size, kind):
    """Through an analogue capture path the clip's image is decided; the form opened over it, whose
    noise makes its fields look textured and spreads their grey levels (past the keeping thresholds of
    the first three measures), is undecided on its very first frame, whatever the fields' grey."""
    clip, _ = screen(size=size, noise=noise)
    for field in FORM_FIELD_GREYS:
        for seed in range(NOISY_FORM_SEEDS):
            chooser = roi_chooser.RoiChooser(build_config({}))
            roi = chooser.choose(as_frame(0, clip, kind))
            assert not roi.undecided, roi
            got = chooser.choose(as_frame(1, noisy_form_screen(noise, field, size, seed), kind))
            assert got.undecided, f"the form (fields {field}, noise {noise}, draw {seed}) kept the ROI {got}"
