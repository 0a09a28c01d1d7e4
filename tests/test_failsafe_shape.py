"""A backend answer whose mask is not the ROI's size is a fault like NaN: AI ERROR, the raw frame,
counted, logged once with the shapes. Before, the mask was dropped at drawing and the frame showed raw
ultrasound under a green AI ON badge."""

from __future__ import annotations

import logging

import numpy as np
from clips import write_bar_clip
from runtime_model import dark_onnx
from state_log import States

from edge_runtime import config as cfg
from edge_runtime.backends import failsafe
from edge_runtime.backends.base import Backend
from edge_runtime.backends.failsafe import BANNER_NAN, GuardedInference
from edge_runtime.frames import Prediction
from edge_runtime.manifest import load_manifest
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.stats import Stats

ROI_SHAPE = (40, 60)
CLIP_FRAMES = 20
BAD_CALLS = range(5, 9)  # the backend's 5th to 8th calls answer at half the ROI's size
MODEL_SIZE = (8, 8)  # a probability at the model's output size is fine: Prediction resizes it


class HalfSize(Backend):
    """Answers at the ROI's size, except on ``bad`` calls: mask and probability at half of it."""

    name = "half-size"

    def __init__(self, bad=BAD_CALLS):
        super().__init__(dark_onnx(), load_manifest(dark_onnx()))
        self.bad, self.calls = bad, 0

    def describe(self) -> dict:
        return {"backend": self.name, "device": "cpu"}

    def infer(self, gray_roi):
        self.calls += 1
        h, w = gray_roi.shape
        if self.calls in self.bad:
            h, w = h // 2, w // 2
        prob = np.full((h, w), 0.9, np.float32)
        return Prediction((prob > 0.5).astype(np.uint8), prob, 1.0)


def test_a_mask_of_the_wrong_shape_is_a_fault_logged_once_with_the_shapes(caplog):
    stats = Stats()
    guard = GuardedInference(lambda: HalfSize(bad=range(1, 4)), stats, reload_after_errors=10)
    guard.retry_every_call()
    gray = np.zeros(ROI_SHAPE, np.uint8)
    with caplog.at_level(logging.WARNING, logger=failsafe.log.name):
        for _ in range(3):
            assert guard.infer(gray) is None
            assert guard.banner() == ("error", BANNER_NAN)
        assert guard.infer(gray) is not None  # the 4th call answers at the ROI's size: recovered
    assert stats.errors == 3 and guard.unanswered == 3 and guard.banner() is None
    faults = [r.getMessage() for r in caplog.records if "inference fault" in r.getMessage()]
    assert len(faults) == 1, faults
    assert "(20, 30)" in faults[0] and "(40, 60)" in faults[0], faults[0]


def test_a_probability_at_the_models_size_is_no_fault():
    class ModelSize(Backend):
        def infer(self, gray_roi):
            return Prediction(np.zeros(gray_roi.shape, np.uint8), np.full(MODEL_SIZE, 0.2, np.float32), 1.0)

    guard = GuardedInference(lambda: ModelSize(dark_onnx(), load_manifest(dark_onnx())), Stats())
    prediction = guard.infer(np.zeros(ROI_SHAPE, np.uint8))
    assert prediction is not None and prediction.prob.shape == ROI_SHAPE and guard.fault is None


def test_replay_shows_ai_error_not_ai_on_for_a_wrong_shape_mask(tmp_path):
    clip = write_bar_clip(tmp_path / "bar.mp4", CLIP_FRAMES, step=1)
    inference = {"model": str(dark_onnx()), "reload_after_errors": 10}  # this backend, not a rebuilt one
    config = cfg.build_config(
        {"source": {"input": str(clip)}, "roi": {"rect": "full"}, "inference": inference}
    )
    states = States()
    summary = Pipeline(config, observers=[states], backend=HalfSize()).run()
    bad_frames = {call - 1 for call in BAD_CALLS}
    for index, seen in enumerate(states.seen):
        assert seen == (("ERROR", False) if index in bad_frames else ("ON", True)), (index, states.seen)
    assert summary["errors"] == len(BAD_CALLS) and summary["frames_without_ai"] == len(BAD_CALLS)
    assert "(24, 32)" in summary["last_error"]  # the bar clip's 48 x 64 frame, halved
