"""One refused frame, one refusal: marks taken on one frame that is refused (no image area on it, the
NO SIGNAL screen, or the session ending before the next frame) are counted as one refusal at the end,
as marks on one captured frame are one biopsy, and the log says how many marks it held. Marks on
successive refused frames stay separate refusals. Real frames tagged by the pipeline's ROI chooser and
a real (empty) cases folder."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from edge_runtime import config as cfg
from edge_runtime.biopsy.marks import MarkRequests
from edge_runtime.biopsy.observer import ENDED, NO_SIGNAL, CaptureObserver
from edge_runtime.biopsy.study_id import StudyIdSlot
from edge_runtime.commands.observers import capture_failures, print_captures
from edge_runtime.frames import Frame
from edge_runtime.pipeline.roi_chooser import RoiChooser
from edge_runtime.roi import NO_IMAGE_FOUND as NO_IMAGE

SCREEN = (340, 440)  # rows, cols
MODEL = {"name": "m", "file": "m.onnx", "sha256": "0" * 64}
MARKS_AT_ONCE = 3


def _observer(cases: Path) -> tuple[CaptureObserver, MarkRequests]:
    marks = MarkRequests()
    return CaptureObserver(cases, MODEL, "synthetic", marks=marks, study=StudyIdSlot()), marks


def _blank(index: int) -> Frame:
    """A screen without an image, tagged by the pipeline's chooser: the ROI is undecided."""
    frame = Frame(index, np.zeros((*SCREEN, 3), np.uint8), time.monotonic(), pts=index / 30)
    RoiChooser(cfg.load_with_overrides(None, {"roi": {}})).choose(frame)
    return frame


def _mark(marks: MarkRequests, count: int) -> None:
    for _ in range(count):
        assert marks.request("http")


def _refusal_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "not captured" in r.getMessage()]


def test_marks_on_one_frame_without_an_image_are_one_refusal(tmp_path, caplog, capsys):
    caplog.set_level(logging.WARNING, "sonomap.biopsy")
    observer, marks = _observer(tmp_path / "cases")
    for index, count in enumerate((MARKS_AT_ONCE, 0, 1)):  # a double POST /mark, then one on frame 2
        _mark(marks, count)
        frame = _blank(index)
        observer.on_frame(frame, None, frame.image, {})
    observer.close()
    assert observer.book.captures == 0
    assert observer.book.refused == 2 and observer.book.refusal_reasons == [NO_IMAGE, NO_IMAGE]
    assert observer.book.refused_marks == MARKS_AT_ONCE + 1
    assert _refusal_lines(caplog) == [
        f"biopsy mark (http) not captured on frame 0: {NO_IMAGE} "
        f"({MARKS_AT_ONCE - 1} more mark(s) taken with it: one refusal)",
        f"biopsy mark (http) not captured on frame 2: {NO_IMAGE}",
    ]
    assert capture_failures([observer]) == [
        f"--cases {tmp_path / 'cases'}: 2 capture(s) refused ({MARKS_AT_ONCE + 1} marks): {NO_IMAGE}"
    ]
    print_captures([observer])
    assert (
        f"captured 0 biopsies into {tmp_path / 'cases'} (2 could not be written)" in capsys.readouterr().out
    )
    assert [f for f in (tmp_path / "cases").iterdir() if not f.name.startswith(".")] == []


def test_marks_on_the_no_signal_screen_and_at_the_end_are_one_refusal_each(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "sonomap.biopsy")
    observer, marks = _observer(tmp_path / "cases")
    no_signal = Frame(-1, np.zeros((*SCREEN, 3), np.uint8), time.monotonic(), None, {"no_signal": True})
    _mark(marks, MARKS_AT_ONCE)
    observer.on_frame(no_signal, None, no_signal.image, {})
    observer.on_frame(no_signal, None, no_signal.image, {})  # nothing marked on it: no refusal
    _mark(marks, MARKS_AT_ONCE)  # still queued when the session ends
    observer.close()
    assert observer.book.refused == 2 and observer.book.refusal_reasons == [NO_SIGNAL, ENDED]
    assert observer.book.refused_marks == 2 * MARKS_AT_ONCE
    more = f"({MARKS_AT_ONCE - 1} more mark(s) taken with it: one refusal)"
    assert _refusal_lines(caplog) == [
        f"biopsy mark (http) not captured on the NO SIGNAL screen after frame 0: {NO_SIGNAL} {more}",
        f"biopsy mark (http) not captured after frame 0: {ENDED} {more}",
    ]
