"""Replay infers every frame: a backend fault costs only its own frame (the fail-safe retries on the
next frame, not after seconds of wall-clock back-off, which a replay faster than real time would spend
skipping frames). The summary and the printed result count the frames shown without the AI; a replay
the AI never answered on fails with one line naming the model."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from cli import sonomap
from clips import write_bar_clip
from onnx import TensorProto, helper
from runtime_model import dark_onnx, folded_manifest, save_graph_model
from state_log import States
from textured import textured

from edge_runtime import config as cfg
from edge_runtime.backends.base import Backend
from edge_runtime.frames import Prediction
from edge_runtime.manifest import load_manifest
from edge_runtime.pipeline.graph import Pipeline

CLIP_FRAMES = 40
FAULT_CALL = 10  # the backend raises on its 10th call only
BRIGHT_ABOVE = 128.0  # the NaN model's threshold: a frame whose mean is above it gets NaN
DIM, BRIGHT = 60, 200
IMAGE_SHAPE = (120, 160)
EXIT_USER_ERROR = 2


class FaultOnce(Backend):
    """A backend that answers a constant probability at the ROI's size and raises on one call."""

    name = "fault-once"

    def __init__(self, model: Path):
        super().__init__(model, load_manifest(model))
        self.calls = 0

    def describe(self) -> dict:
        return {"backend": self.name, "device": "cpu"}

    def infer(self, gray_roi: np.ndarray) -> Prediction:
        self.calls += 1
        if self.calls == FAULT_CALL:
            raise RuntimeError("injected transient fault")
        prob = np.full(gray_roi.shape, 0.9, np.float32)
        return Prediction((prob > 0.5).astype(np.uint8), prob, 1.0)


def test_one_transient_fault_costs_one_frame_and_is_counted(tmp_path):
    clip = write_bar_clip(tmp_path / "bar.mp4", CLIP_FRAMES, step=1)
    backend = FaultOnce(dark_onnx())
    config = cfg.build_config(
        {
            "source": {"input": str(clip)},
            "roi": {"rect": "full"},
            "inference": {"model": str(dark_onnx())},  # live's 1 s back-off, the default
        }
    )
    states = States()
    summary = Pipeline(config, observers=[states], backend=backend).run()
    assert summary["frames"] == CLIP_FRAMES and backend.calls == CLIP_FRAMES  # every frame was tried
    assert summary["errors"] == 1 and summary["frames_without_ai"] == 1
    assert summary["inferred"] == CLIP_FRAMES - 1
    faulted = FAULT_CALL - 1
    assert states.seen[faulted] == ("ERROR", False)
    assert all(seen == ("ON", True) for i, seen in enumerate(states.seen) if i != faulted), states.seen


def nan_when_bright_onnx(out_dir: Path) -> Path:
    """A folded ONNX model whose probabilities are NaN on a frame brighter than BRIGHT_ABOVE on
    average, and 0.25 everywhere on a darker one (mask 0 either way)."""

    def const(name: str, value: float):
        tensor = helper.make_tensor(name + "_t", TensorProto.FLOAT, [], [value])
        return helper.make_node("Constant", [], [name], value=tensor)

    nodes = [
        helper.make_node("Cast", ["frame"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["f"], ["mean"], keepdims=0),
        const("threshold", BRIGHT_ABOVE),
        helper.make_node("Greater", ["mean", "threshold"], ["bright"]),
        const("nan", float("nan")),
        const("quarter", 0.25),
        helper.make_node("Where", ["bright", "nan", "quarter"], ["level"]),
        const("zero", 0.0),
        helper.make_node("Mul", ["f", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "level"], ["prob"]),
        const("half", 0.5),
        helper.make_node("Greater", ["prob", "half"], ["hit"]),
        helper.make_node("Cast", ["hit"], ["mask"], to=TensorProto.UINT8),
    ]
    manifest = folded_manifest("nan-when-bright", "nan_when_bright", 64, 64)
    return save_graph_model(nodes, out_dir, "nan_when_bright", manifest)


@pytest.fixture(scope="module")
def nan_model(tmp_path_factory) -> Path:
    return nan_when_bright_onnx(tmp_path_factory.mktemp("nan-model"))


def write_frames(folder: Path, levels: list[int]) -> Path:
    """One gray PNG per level (the image's mean brightness, textured: an image, not a plain screen), in
    order."""
    folder.mkdir()
    for i, level in enumerate(levels):
        cv2.imwrite(str(folder / f"{i:03d}.png"), textured(IMAGE_SHAPE, level))
    return folder


def replay(folder: Path, model: Path, tmp_path: Path):
    out, summary = tmp_path / "out.mp4", tmp_path / "summary.json"
    res = sonomap(
        *("replay", folder, "--model", model, "--roi", "full", "--out", out, "--summary", summary),
        check=False,
    )
    return res, out, summary


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_a_replay_with_some_faulted_frames_succeeds_and_reports_them(nan_model, tmp_path):
    levels = [DIM] * 12
    levels[4] = levels[7] = BRIGHT
    res, out, summary = replay(write_frames(tmp_path / "frames", levels), nan_model, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    first = res.stdout.splitlines()[0]
    assert "frames 12" in first and "errors 2" in first and "without AI 2" in first, res.stdout
    written = json.loads(summary.read_text())
    assert written["frames_without_ai"] == 2 and written["inferred"] == 10
    assert decoded_frames(out) == len(levels)


def test_a_replay_the_ai_never_answered_fails_naming_the_model(nan_model, tmp_path):
    levels = [BRIGHT] * 8
    res, out, summary = replay(write_frames(tmp_path / "frames", levels), nan_model, tmp_path)
    assert res.returncode == EXIT_USER_ERROR, res.stdout + res.stderr
    errors = [line for line in res.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and str(nan_model) in errors[0], res.stderr
    assert "no answer" in errors[0] and "NaN" in errors[0], errors[0]
    assert "Traceback" not in res.stderr
    written = json.loads(summary.read_text())  # the summary and the output are still written
    assert written["inferred"] == 0 and written["frames_without_ai"] == len(levels)
    assert decoded_frames(out) == len(levels)
