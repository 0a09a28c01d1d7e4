"""Biopsy capture while the AI shows no prediction (loading, stalled, failed or switched off): the ROI
comes from the frame the pipeline tagged, so a mark is captured on the frame it was made on, with
``prediction: null`` and the AI state; with no image area known it is refused on screen, and never
captured on a later frame. The same holds for a mark made on the NO SIGNAL screen (the next real
frame may be the next patient's) and for one still queued when the session ends: refused and counted.
The frames are tagged by the pipeline's own ROI chooser; the live case runs the real
`sonomap live --no-ai`."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import yaml
from loopback import LIVE_START_TIMEOUT_S, free_port, request, start_live, wait_healthy

from edge_runtime import config as cfg
from edge_runtime.biopsy.marks import MarkRequests
from edge_runtime.biopsy.observer import CaptureObserver
from edge_runtime.biopsy.study_id import StudyIdSlot
from edge_runtime.commands.observers import capture_failures
from edge_runtime.frames import Frame, Prediction
from edge_runtime.pipeline.deidentify import ROI_META_KEY
from edge_runtime.pipeline.roi_chooser import RoiChooser

SCREEN = (340, 440)  # rows, cols
RECT, MM_PER_PIXEL = "10,10,400,300", 0.1
FIRST_PREDICTION = 60  # the AI answers from this frame on
MARKED = (10, 40)  # frames a mark is made on before it
MODEL = {"name": "m", "file": "m.onnx", "sha256": "0" * 64}
CASE_TIMEOUT_S = 20


def _cases(cases: Path) -> list[Path]:
    """The case folders in ``cases``: hidden names (a case being written, the numbering lock) are not."""
    return [folder for folder in cases.iterdir() if not folder.name.startswith(".")]


def _chooser(rect: str | None) -> RoiChooser:
    roi = {"rect": rect, "mm_per_pixel": MM_PER_PIXEL} if rect else {}
    return RoiChooser(cfg.load_with_overrides(None, {"roi": roi}))


def _frame(index: int, chooser: RoiChooser, dark: bool = False) -> Frame:
    """A screen frame (noise with the frame number drawn in, or black: no image), tagged by ``chooser``."""
    rng = np.random.default_rng(index)
    image = np.zeros((*SCREEN, 3), np.uint8) if dark else rng.integers(0, 255, (*SCREEN, 3), dtype=np.uint8)
    frame = Frame(index, image, time.monotonic(), pts=index / 30)
    chooser.choose(frame)  # tags frame.meta with its ROI, as the pipeline does for every frame
    return frame


def _prediction(frame: Frame) -> Prediction:
    roi = frame.meta[ROI_META_KEY]
    return Prediction(
        np.zeros((roi.h, roi.w), np.uint8), np.zeros((roi.h, roi.w), np.float32), frame=frame, roi=roi
    )


def _observer(cases: Path) -> tuple[CaptureObserver, MarkRequests]:
    marks = MarkRequests()
    return CaptureObserver(cases, MODEL, "synthetic", marks=marks, study=StudyIdSlot()), marks


def test_marks_before_the_first_prediction_are_captured_on_their_own_frames(tmp_path):
    cases = tmp_path / "cases"
    observer, marks = _observer(cases)
    chooser, frames = _chooser(RECT), {}
    for i in range(FIRST_PREDICTION + 1):
        if i in MARKED:
            assert marks.request("key")
        frames[i] = frame = _frame(i, chooser)
        observer.on_frame(frame, _prediction(frame) if i >= FIRST_PREDICTION else None, frame.image, {})
    observer.close()
    captured = sorted(
        ((yaml.safe_load((folder / "case.yaml").read_text())["capture"], folder) for folder in _cases(cases)),
        key=lambda found: found[0]["number"],
    )
    assert [cap["number"] for cap, _ in captured] == [1, 2]
    for (cap, folder), i in zip(captured, MARKED, strict=True):
        assert cap["post_fire"]["frame"] == cap["pre_fire"]["frame"] == i
        assert cap["prediction"] is None and not (folder / "prefire_prob.png").exists()
        x, y, w, h = map(int, RECT.split(","))
        want = cv2.cvtColor(frames[i].image[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY)
        assert np.array_equal(cv2.imread(str(folder / "prefire.png"), cv2.IMREAD_UNCHANGED), want)


def test_a_mark_with_no_image_area_is_refused_on_screen_and_never_captured_later(tmp_path):
    cases = tmp_path / "cases"
    observer, marks = _observer(cases)
    blank, fixed = _chooser(None), _chooser(RECT)
    assert marks.request("http")
    frame = _frame(0, blank, dark=True)  # a screen without an image: the ROI is undecided
    observer.on_frame(frame, None, frame.image, {})
    assert ("warning", "BIOPSY NOT CAPTURED: no ultrasound image found") in observer.banners(
        _frame(1, blank, True), "OFF"
    )
    for i in range(1, 30):  # the image comes back and the AI answers: the refused mark stays refused
        frame = _frame(i, fixed)
        observer.on_frame(frame, _prediction(frame), frame.image, {})
    observer.close()
    assert observer.book.captures == 0 and observer.book.refused == 1
    assert _cases(cases) == []


def test_live_with_the_ai_off_captures_a_mark_saying_no_prediction_was_shown(tmp_path):
    port, cases = free_port(), tmp_path / "cases"
    proc = start_live("--no-ai", "--cases", cases, "--duration", 60, port=port)
    base = f"http://127.0.0.1:{port}/"
    try:
        wait_healthy(base, proc, LIVE_START_TIMEOUT_S)
        assert request(base + "mark", "POST") == (200, "mark queued for the next frame\n")
        deadline = time.monotonic() + CASE_TIMEOUT_S
        while time.monotonic() < deadline and not (cases.is_dir() and _cases(cases)):
            time.sleep(0.2)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "captured 1 biopsy" in out
    (folder,) = _cases(cases)
    case = yaml.safe_load((folder / "case.yaml").read_text())
    cap = case["capture"]
    assert cap["trigger"] == "http" and cap["prediction"] is None
    assert cap["pre_fire"]["ai"] == "OFF" and cap["post_fire"]["frame"] == cap["pre_fire"]["frame"]
    assert "no AI prediction was shown with the pre-fire frame (AI OFF)" in (folder / "case.yaml").read_text()


def _no_signal(last: Frame) -> Frame:
    """sonomap's NO SIGNAL screen as the live pipeline makes it: index -1, the last frame dimmed."""
    return Frame(-1, last.image // 2, time.monotonic(), None, {"no_signal": True})


def test_a_mark_on_the_no_signal_screen_is_refused_and_never_captured_from_the_next_patient(tmp_path):
    cases, study = tmp_path / "cases", StudyIdSlot()
    marks = MarkRequests()
    observer = CaptureObserver(
        cases, MODEL, "rtsp://10.0.0.5/live", marks=marks, study=study, study_id="BX-0001"
    )
    fixed = _chooser(RECT)
    for i in range(5):  # the first patient's image
        frame = _frame(i, fixed)
        observer.on_frame(frame, None, frame.image, {})
    no_signal = _no_signal(frame)
    assert marks.request("http")  # POST /mark answers 200 while the screen says NO SIGNAL
    for _ in range(3):
        observer.on_frame(no_signal, None, no_signal.image, {})
    assert ("warning", "BIOPSY NOT CAPTURED: no signal from the source") in observer.banners(no_signal, "OFF")
    study.set("BX-0002", "viewer")  # the next patient; the signal comes back, frames count on
    for i in range(5, 15):
        frame = _frame(i, fixed)
        observer.on_frame(frame, None, frame.image, {})
    assert ("warning", "BIOPSY NOT CAPTURED: no signal from the source") in observer.banners(frame, "ON")
    observer.close()
    assert observer.book.captures == 0 and observer.book.refused == 1
    assert _cases(cases) == []


def test_a_mark_still_queued_when_the_session_ends_is_counted_as_refused(tmp_path):
    cases = tmp_path / "cases"
    observer, marks = _observer(cases)
    frame = _frame(0, _chooser(RECT))
    observer.on_frame(frame, None, frame.image, {})
    assert marks.request("http")  # accepted just before the source ends
    observer.close()
    assert observer.book.refused == 1 and observer.book.captures == 0 and marks.take() == []
    assert _cases(cases) == []
    (line,) = capture_failures([observer])
    assert "1 capture(s) refused: the session ended before the next frame" in line
