"""One biopsy, one case: marks taken on one frame (a double POST /mark, a key bounce) and a mark on the
frame a fire is confirmed on become one capture, the log saying how many were merged; and a possible
fire still waiting for its confirming frame when the session ends is logged, not dropped unsaid. Real
frames of the synthetic procedure clip and real case folders."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np
import yaml
from procedure_clip import shared_procedure_clip

from edge_runtime.biopsy.marks import MarkRequests
from edge_runtime.biopsy.observer import CaptureObserver
from edge_runtime.biopsy.study_id import StudyIdSlot
from edge_runtime.frames import Frame
from edge_runtime.pipeline.deidentify import ROI_META_KEY
from edge_runtime.roi import Roi

MODEL = {"name": "m", "file": "m.onnx", "sha256": "0" * 64}
SMALL_ROI = Roi(0, 0, 64, 48, 0.1)
MARKS_AT_ONCE = 3


def _cases(folder: Path) -> list[dict]:
    return [
        yaml.safe_load((f / "case.yaml").read_text()) for f in sorted(folder.iterdir()) if f.name[0] != "."
    ]


def _observer(cases: Path) -> tuple[CaptureObserver, MarkRequests]:
    marks = MarkRequests()
    return CaptureObserver(cases, MODEL, "synthetic", marks=marks, study=StudyIdSlot()), marks


def _clip_frames() -> tuple[dict, list[Frame]]:
    procedure = shared_procedure_clip()
    roi = Roi(*procedure["roi"], mm_per_pixel=procedure["mm_per_pixel"])
    video, frames = cv2.VideoCapture(str(procedure["clip"])), []
    while True:
        ok, image = video.read()
        if not ok:
            break
        frames.append(Frame(len(frames), image, time.monotonic(), len(frames) / 30, {ROI_META_KEY: roi}))
    video.release()
    return procedure, frames


def _run(observer: CaptureObserver, marks: MarkRequests, frames: list[Frame], mark_on: int | None) -> None:
    for frame in frames:
        if frame.index == mark_on:
            for _ in range(MARKS_AT_ONCE):
                marks.request("http")
        observer.on_frame(frame, None, frame.image, {"ai": {"state": "OFF"}})
    observer.close()


def test_marks_on_one_frame_are_one_capture(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "sonomap.biopsy")
    observer, marks = _observer(tmp_path / "cases")
    for i in range(3):
        for _ in range(MARKS_AT_ONCE if i != 1 else 0):
            marks.request("key")
        image = np.full((48, 64, 3), 10 * (i + 1), np.uint8)
        observer.on_frame(
            Frame(i, image, time.monotonic(), i / 30, {ROI_META_KEY: SMALL_ROI}), None, image, {}
        )
    observer.close()
    cases = _cases(tmp_path / "cases")
    assert observer.book.captures == 2 and [c["capture"]["post_fire"]["frame"] for c in cases] == [0, 2]
    assert [c["capture"]["number"] for c in cases] == [1, 2]
    merged = [r.getMessage() for r in caplog.records if "merged" in r.message]
    assert merged == [
        f"biopsy {n} (key): {MARKS_AT_ONCE - 1} more mark(s) on frame {i} merged into it"
        for n, i in ((1, 0), (2, 2))
    ]


def test_a_mark_on_the_frame_a_fire_is_confirmed_on_is_that_fire(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "sonomap.biopsy")
    procedure, frames = _clip_frames()
    first_fire = frames[: procedure["fires"][1]["pre_index"]]  # the clip up to the second needle's fire
    observer, marks = _observer(tmp_path / "alone")
    _run(observer, marks, first_fire, None)
    (alone,) = _cases(tmp_path / "alone")
    confirmed = alone["capture"]["post_fire"]["frame"]
    observer, marks = _observer(tmp_path / "marked")
    _run(observer, marks, first_fire, confirmed)
    (case,) = _cases(tmp_path / "marked")
    assert case["capture"]["trigger"] == "fire" and observer.book.captures == 1
    assert case["capture"]["pre_fire"] == alone["capture"]["pre_fire"]
    merged = [r.getMessage() for r in caplog.records if "merged" in r.message]
    assert merged == [f"biopsy 1 (fire): {MARKS_AT_ONCE} more mark(s) on frame {confirmed} merged into it"]


def test_a_fire_not_confirmed_when_the_session_ends_is_logged(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "sonomap.biopsy")
    procedure, frames = _clip_frames()
    truth = procedure["fires"][0]
    observer, marks = _observer(tmp_path / "cases")
    _run(observer, marks, frames[: truth["post_index"]], None)  # ends before the confirming frame
    assert _cases(tmp_path / "cases") == []
    said = [r.getMessage() for r in caplog.records if "not confirmed" in r.message]
    assert len(said) == 1, caplog.text
    frame = int(said[0].split("frame ")[1].split()[0])
    assert truth["pre_index"] < frame <= truth["post_index"]
    assert said[0] == f"a possible fire at frame {frame} was not confirmed before the session ended"
