"""A screen with no ultrasound image on it (a capture card starting, the probe lifted) leaves the ROI
undecided: nothing of that screen leaves the process, the AI shows OFF with a banner, and the ROI is
looked for again until the image comes. Never the whole screen as the "image": that kept the patient
line burnt into the screen in every output for the rest of the session.

Real clips from ``sonomap make-clip --patient-line``, real PNG folders, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli import sonomap
from clips import decode
from runtime_model import dark_onnx

from edge_runtime.config import build_config
from edge_runtime.frames import Frame
from edge_runtime.pipeline import deidentify
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.roi import NO_IMAGE_FOUND, detect_roi, resolve_roi
from edge_runtime.sources.sequence import SequenceSource

PATIENT_LINE = "DOE^JANINE  ID MRN-4711-0815  DOB 1970-01-01"
PATIENT = "DOE_JANINE"  # the folder's name: no log line may carry it
SIZE = "1280x720"
FRAMES = 14
BLACK_FRAMES = 1  # the first frame of the folder is all black: the capture card starting
BLANK_MAX = 16  # black within H.264 noise
TEXT_MIN = 120  # the burned-in text is drawn at grey level 200
IMAGE_MIN_MEAN = 20  # the B-mode image's mean grey level is well above this
BANNER_ROWS = 30  # the banner sits at the top of the screen on a frame without a ROI
BANNER_MIN_MEAN = 60
HUD_OVERHANG = 40  # the live HUD row may start this far left of the ROI


def box(image: np.ndarray, b) -> np.ndarray:
    x, y, w, h = b
    return image[y : y + h, x : x + w]


@pytest.fixture(scope="module")
def screens(tmp_path_factory) -> tuple[Path, dict]:
    """A folder (named after the patient) of the clip's screens as PNGs, the first one all black."""
    root = tmp_path_factory.mktemp("undecided")
    clip = root / "screen.mp4"
    sonomap("make-clip", "--out", clip, "--frames", FRAMES, "--size", SIZE, "--patient-line", PATIENT_LINE)
    info = json.loads(clip.with_suffix(".json").read_text())
    folder = root / PATIENT
    folder.mkdir()
    for i, image in enumerate(decode(clip)):
        if i < BLACK_FRAMES:
            image[:] = 0
        cv2.imwrite(str(folder / f"{i:03d}.png"), image)
    assert box(cv2.imread(str(folder / "001.png")), info["patient_box"]).max() > TEXT_MIN
    return folder, info


def test_a_black_first_frame_never_lets_the_patient_line_out(screens, tmp_path):
    folder, info = screens
    out, raw, masks, summary = tmp_path / "o.mp4", tmp_path / "raw.mp4", tmp_path / "m", tmp_path / "s.json"
    result = sonomap(
        *("-v", "replay", folder, "--model", dark_onnx(), "--out", out, "--record-raw", raw),
        *("--save-masks", masks, "--summary", summary),
    )
    rendered, recorded = decode(out), decode(raw)
    assert len(rendered) == len(recorded) == FRAMES
    for frame in rendered + recorded:  # the whole session, both recordings
        assert box(frame, info["patient_box"]).max() <= BLANK_MAX
    stats = json.loads(summary.read_text())
    undecided = stats["roi_undecided_frames"]
    assert BLACK_FRAMES <= undecided < FRAMES and stats["frames"] == FRAMES
    dumped = [cv2.imread(str(png)) for png in sorted(masks.glob("*_frame.png"))]
    assert len(dumped) == FRAMES
    assert all(image.max() == 0 for image in dumped[:undecided])  # the whole screen, blank
    assert all(image.shape[:2] == tuple(stats["roi"][:1:-1]) for image in dumped[undecided:])  # the ROI
    # the frames without a ROI: raw recording all black, the overlay black but for the banner and the HUD
    for i in range(undecided):
        assert recorded[i].max() <= BLANK_MAX
        assert rendered[i][:BANNER_ROWS].mean() > BANNER_MIN_MEAN  # "AI OFF: no ultrasound image found"
        x, y, w, h = info["roi"]
        assert rendered[i][y + BANNER_ROWS : y + h // 2, x : x + w].max() <= BLANK_MAX
    assert not (masks / "000000_mask.png").exists()  # no inference on a screen without an image
    # once found, the image (and the AI) come back, still without the patient line
    x, y, w, h = info["roi"]
    assert rendered[-1][y : y + h, x : x + w].mean() > IMAGE_MIN_MEAN
    assert stats["roi"] is not None and abs(stats["roi"][0] - x) <= 2 and stats["roi_undecided"] == ""
    warnings = [line for line in result.stderr.splitlines() if NO_IMAGE_FOUND in line]
    assert warnings and "WARNING" in warnings[0] and "frame 0" in warnings[0], result.stderr[-2000:]
    assert PATIENT not in result.stderr and "DOE" not in result.stderr


def test_a_slicer_sequence_keeps_only_the_frames_with_an_image(screens, tmp_path):
    """A blank screen without a ROI is nothing to keep: the sequence holds the ROI frames only, in one
    file (a frame of another size would start a second one)."""
    folder, _ = screens
    recording, summary = tmp_path / "s.seq.nrrd", tmp_path / "s.json"
    sonomap(
        *("replay", folder, "--model", dark_onnx(), "--out", tmp_path / "o.mp4"),
        *("--record-sequence", recording, "--summary", summary),
    )
    stats = json.loads(summary.read_text())
    kept = SequenceSource(recording)
    assert kept.frames == FRAMES - stats["roi_undecided_frames"]
    assert (kept.width, kept.height) == tuple(stats["roi"][2:])
    assert not list(tmp_path.glob("s-*.seq.nrrd"))


def test_live_recordings_of_a_screen_without_an_image_are_blank(screens, tmp_path):
    """The live schedule (a folder played at its frame rate): the same choice in the capture thread."""
    folder, info = screens
    rec, raw = tmp_path / "rec.mp4", tmp_path / "raw.mp4"
    sonomap(
        *("live", "--source", folder, "--headless", "--model", dark_onnx()),
        *("--record", rec, "--record-raw", raw),
    )
    rendered, recorded = decode(rec), decode(raw)
    assert rendered and recorded
    x, y, w, h = info["patient_box"]
    name = [x, y, info["roi"][0] - HUD_OVERHANG - x, h]  # "DOE^JANINE  ID": left of the live HUD row
    for frame in recorded:
        assert box(frame, info["patient_box"]).max() <= BLANK_MAX
    for frame in rendered:  # the live HUD row (REC, mask age) is wider and may reach over the line's end
        assert box(frame, name).max() <= BLANK_MAX
    assert recorded[0].max() <= BLANK_MAX and rendered[0][:BANNER_ROWS].mean() > BANNER_MIN_MEAN


def test_text_only_screen_is_undecided_blanked_whole_and_ai_off(screens):
    """A screen with the scanner's text but no image (probe lifted): no ROI, never the full screen. The
    local window (in the room, beside the scanner) still shows the raw screen; every output is blank."""
    folder, info = screens
    screen = cv2.imread(str(folder / "005.png"))
    x, y, w, h = info["roi"]
    screen[y : y + h, x : x + w] = 0  # the image gone, the patient line and scales stay
    roi = detect_roi(screen)
    assert roi.undecided == NO_IMAGE_FOUND and detect_roi(np.zeros_like(screen)).undecided
    assert not resolve_roi("full", screen).undecided  # the operator's explicit choice stays possible

    config = build_config({"inference": {"model": str(dark_onnx())}, "sinks": {"window": True}})
    pipeline = Pipeline(config)
    stages = pipeline.stages
    frame = Frame(7, screen.copy(), 0.0, None, {})
    blanked = next(iter(deidentify.wrap(_OneFrame(frame), config, stages.ensure_roi)))
    roi = stages.ensure_roi(blanked)
    assert roi.undecided and stages.infer(stages.cut(blanked, roi), blanked, roi) is None
    ai = stages.ai_status(roi=roi)
    rendered = stages.render(blanked, None, roi=roi, ai=ai)
    window = deidentify.window_image(blanked, rendered)
    pipeline.close()
    assert ai.state == "OFF" and ai.detail
    assert blanked.image.max() == 0  # what every sink and observer starts from
    assert box(rendered, info["patient_box"]).max() == 0
    assert box(window, info["patient_box"]).max() > TEXT_MIN  # the operator's window: the raw screen


class _OneFrame:
    """A source of one given frame (the real de-identification wraps it)."""

    live = False

    def __init__(self, frame):
        self.frame = frame

    def __iter__(self):
        yield self.frame

    def close(self):
        pass
