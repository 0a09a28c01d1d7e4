"""``--save-masks DIR`` written again by a later replay (a replay writes over its outputs): a frame the
AI gave no mask for this time must not keep the earlier run's ``<index>_mask.png`` beside it, which would
read as this frame's finding. Its mask file is removed; frames with a mask get this run's. Real PNG
inputs and a real ONNX Runtime backend that raises on chosen calls."""

from __future__ import annotations

from clips import write_noise_screens
from runtime_model import dark_onnx

from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_runtime.config import build_config
from edge_runtime.manifest import load_manifest
from edge_runtime.pipeline.graph import Pipeline

FRAMES = 6
FAULTY_CALLS = {3, 4}  # 1-based: frames 2 and 3 get no answer in the second run


class Faulty(OnnxRuntimeBackend):
    def __init__(self, raise_on=()):
        super().__init__(dark_onnx(), load_manifest(dark_onnx()), device="cpu")
        self.calls, self.raise_on = 0, set(raise_on)

    def infer(self, gray):
        self.calls += 1
        if self.calls in self.raise_on:
            raise RuntimeError(f"injected fault on call {self.calls}")
        return super().infer(gray)


def replay(folder, masks, backend) -> dict:
    config = build_config({"source": {"input": str(folder)}, "sinks": {"masks": str(masks)}})
    return Pipeline(config, backend=backend).run()


def test_a_frame_without_a_mask_keeps_no_mask_of_an_earlier_run(tmp_path):
    folder, masks = tmp_path / "frames", tmp_path / "masks"
    write_noise_screens(folder, FRAMES)
    replay(folder, masks, Faulty())
    assert len(list(masks.glob("*_mask.png"))) == FRAMES
    summary = replay(folder, masks, Faulty(raise_on=FAULTY_CALLS))
    assert summary["frames_without_ai"] == len(FAULTY_CALLS)
    unanswered = {call - 1 for call in FAULTY_CALLS}
    for i in range(FRAMES):
        assert (masks / f"{i:06d}_frame.png").is_file()
        assert (masks / f"{i:06d}_mask.png").exists() == (i not in unanswered), i
