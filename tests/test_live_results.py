"""The live display's results, with real stages (the dark test model through ONNX Runtime): a fault in
the inference thread while it idles (a reload with the AI off) never reaches the display as an answer
about no frame (it ended the display before); a frame the AI was switched off for, or one older than a
mask may be drawn when the AI takes it, is answered without a prediction; and a result computed before
the ROI changed is not drawn again when the ROI comes back (A, B, A)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest
from runtime_model import dark_onnx

from edge_runtime.config import build_config
from edge_runtime.frames import Frame, Prediction
from edge_runtime.pipeline import live
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.pipeline.latest_slot import LatestSlot
from edge_runtime.pipeline.live_display import Shown
from edge_runtime.pipeline.stages import FrameStages
from edge_runtime.roi import Roi

WAIT_S = 10.0
TOO_OLD_S = 0.8  # live.stale_ms + live.fade_ms by default: what run_live passes the inference thread


def _config(enabled: bool = True, duration_s: float = 2.0):
    return build_config(
        {
            "source": {"input": "synthetic", "fps": 30, "width": 320, "height": 240},
            "inference": {"model": str(dark_onnx()), "enabled": enabled},
            "live": {"duration_s": duration_s},
            "roi": {"rect": [20, 20, 200, 150]},
        }
    )


def test_a_reload_fault_while_the_ai_idles_leaves_the_video_running(monkeypatch):
    pipeline = Pipeline(_config(enabled=False))  # AI OFF: no frame is sent, the thread idles
    calls = []

    def faulty_reload():
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("reload step failed")

    monkeypatch.setattr(pipeline.stages, "between_frames", faulty_reload)
    summary = pipeline.run()  # ended the display with an AttributeError before
    assert len(calls) >= 2 and summary["frames"] > 30
    assert "reload step failed" in summary["last_error"]


@dataclass
class InferenceThread:
    """The live schedule's inference thread on real stages: frames go in ``requests``, answers
    (frame, prediction or None) come out of ``results``."""

    stages: FrameStages
    requests: LatestSlot
    results: LatestSlot


@pytest.fixture
def inference_thread():
    """The inference thread running, as run_live starts it; stopped and joined at teardown, so a failed
    assertion never leaves it running."""
    pipeline = Pipeline(_config())
    running = InferenceThread(pipeline.stages, LatestSlot(), LatestSlot())
    thread = threading.Thread(
        target=live._infer, args=(running.stages, running.requests, running.results, TOO_OLD_S), daemon=True
    )
    thread.start()
    yield running
    running.stages.stop()
    running.requests.close()
    thread.join(WAIT_S)
    pipeline.close()


def test_a_frame_the_ai_was_switched_off_for_is_answered_without_a_prediction(inference_thread):
    stages, requests, results = inference_thread.stages, inference_thread.requests, inference_thread.results
    stages.ai.enabled = False  # what a reload switching the AI off leaves, after the frame was sent
    speckle = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)  # not plain
    requests.put(Frame(1, speckle, time.monotonic(), 0.0, {}))
    _, answer = results.wait_newer(0, WAIT_S)
    assert answer is not None and answer[0].index == 1 and answer[1] is None
    assert stages.stats.inferred == 0  # never inferred
    stages.ai.enabled = True  # the same kind of frame with the AI on: inferred (the test can fail)
    requests.put(Frame(2, speckle, time.monotonic(), 1 / 30, {}))
    _, answer = results.wait_newer(1, WAIT_S)
    assert answer is not None and answer[0].index == 2 and answer[1] is not None


def test_a_frame_older_than_a_mask_is_drawn_is_answered_without_being_inferred(inference_thread):
    """A frame sent while the backend was prepared (an engine build) is as old as the build when the AI
    takes it: its mask would be hidden for its age and read AI STALLED, so it is answered at once and
    the display sends a fresh frame. A fresh frame is inferred (the test can fail)."""
    stages, requests, results = inference_thread.stages, inference_thread.requests, inference_thread.results
    speckle = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    requests.put(Frame(1, speckle, time.monotonic() - 2 * TOO_OLD_S, 0.0, {}))
    _, answer = results.wait_newer(0, WAIT_S)
    assert answer is not None and answer[0].index == 1 and answer[1] is None
    assert stages.stats.inferred == 0
    requests.put(Frame(2, speckle, time.monotonic(), 1 / 30, {}))
    _, answer = results.wait_newer(1, WAIT_S)
    assert answer is not None and answer[0].index == 2 and answer[1] is not None


def test_a_result_from_before_a_roi_change_is_not_drawn_when_the_roi_comes_back():
    pipeline = Pipeline(_config())
    a, b = Roi(10, 10, 100, 80), Roi(20, 10, 100, 80)
    image = np.full((240, 320, 3), 90, np.uint8)
    frames = [Frame(i, image, float(i), i / 30, {}) for i in range(4)]
    shown = Shown(pipeline.stages, frames[0])
    mask = np.ones((a.h, a.w), np.uint8)
    made = Prediction(mask, mask.astype(np.float32), roi=a)
    shown.update(frames[1], a, "ON")
    shown.take((frames[0], made))
    assert shown.for_roi(a) is not None  # drawn in its own ROI
    shown.update(frames[2], b, "ON")  # the ROI moved (re-detected): nothing of A is drawn in B
    assert shown.for_roi(b) is None
    shown.update(frames[3], a, "ON")  # and back: the mask from before both changes stays away
    assert shown.for_roi(a) is None
    pipeline.close()
