"""``--save-masks`` in live ``latest`` mode: the newest mask is drawn over the frames after the one it
was computed on, but the dump pairs each ``<index>_mask.png`` only with the ROI of the frame it was
computed on, never with a later frame's (which would record another image's finding as this one's).
A real live run: the synthetic 30 fps source, a real ONNX Runtime backend slowed with a sleep."""

from __future__ import annotations

import time

import cv2
import numpy as np
from runtime_model import dark_onnx

from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_runtime.config import build_config
from edge_runtime.frames import Observer
from edge_runtime.manifest import load_manifest
from edge_runtime.pipeline.graph import Pipeline


class Slow(OnnxRuntimeBackend):
    def __init__(self):
        super().__init__(dark_onnx(), load_manifest(dark_onnx()), device="cpu")

    def infer(self, gray):
        time.sleep(0.2)  # about six frames at 30 fps: each mask is drawn on the frames after its own
        return super().infer(gray)


class Drawn(Observer):
    """The predictions drawn, by the index of the frame each was computed on; the frames shown."""

    def __init__(self):
        self.computed_on, self.shown = {}, []

    def on_frame(self, frame, prediction, rendered, stats):
        self.shown.append(frame.index)
        if prediction is not None:
            self.computed_on[prediction.frame.index] = prediction


def test_live_latest_dumps_each_mask_beside_the_frame_it_was_computed_on(tmp_path):
    masks = tmp_path / "masks"
    config = build_config(
        {
            "source": {"input": "synthetic", "fps": 30, "width": 640, "height": 360},
            "inference": {"model": str(dark_onnx())},
            "live": {"mode": "latest", "duration_s": 1.5},
            "sinks": {"masks": str(masks)},
        }
    )
    drawn = Drawn()
    Pipeline(config, observers=[drawn], backend=Slow()).run()
    assert len(drawn.shown) > 2 * len(drawn.computed_on) >= 4  # masks drawn over later frames
    dumped = sorted(int(p.name[:6]) for p in masks.glob("*_mask.png"))
    assert dumped and set(dumped) <= set(drawn.computed_on), (dumped, sorted(drawn.computed_on))
    for index in dumped:
        prediction = drawn.computed_on[index]
        frame = cv2.imread(str(masks / f"{index:06d}_frame.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(frame, prediction.roi.crop(prediction.frame.image)), index
        mask = cv2.imread(str(masks / f"{index:06d}_mask.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(mask > 0, prediction.mask > 0), index
