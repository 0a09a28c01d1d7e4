"""A pixel whose probability equals the threshold is cancer everywhere (prob >= threshold): the folded
graph, evaluation and calibration cut so, and so must the unfolded ONNX Runtime and torch backends and
the smoothed overlay. A network whose two logits are equal gives exactly 0.5 after the softmax."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_runtime.config_schema import OverlayConfig
from edge_runtime.manifest import DEFAULT_CLASSES, Manifest
from edge_runtime.render.overlay import Overlay

SIDE = 32  # the network's input side
TIE = 0.5  # softmax of two equal logits, and the manifest's threshold
CANCER = 1


def plain_manifest() -> Manifest:
    """An unfolded model: preprocessed float input, logits out; the backend cuts the mask itself."""
    return Manifest("tie", "zeros", "onnx", SIDE, SIDE, 0.5, 0.25, DEFAULT_CLASSES, threshold=TIE)


def zero_logits_onnx(path) -> None:
    """input float [1, 1, SIDE, SIDE] -> logits [1, 2, SIDE, SIDE], all zero."""
    import onnx
    from onnx import TensorProto, helper

    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "zero"], ["z"]),
            helper.make_node("Concat", ["z", "z"], ["logits"], axis=1),
        ],
        "zero_logits",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, SIDE, SIDE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, SIDE, SIDE])],
        [zero],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_onnxruntime_unfolded_path_counts_a_tie_as_cancer(tmp_path):
    path = tmp_path / "zeros.onnx"
    zero_logits_onnx(path)
    prediction = OnnxRuntimeBackend(path, plain_manifest(), device="cpu").infer(np.zeros((40, 48), np.uint8))
    assert (prediction.prob == TIE).all()
    assert (prediction.mask == CANCER).all()


def test_torch_unfolded_path_counts_a_tie_as_cancer(tmp_path):
    torch = pytest.importorskip("torch")
    from edge_runtime.backends.torch import TorchBackend

    class ZeroLogits(torch.nn.Module):
        def forward(self, x):
            return torch.cat([x * 0.0, x * 0.0], dim=1)

    path = tmp_path / "zeros.ts"
    torch.jit.script(ZeroLogits()).save(str(path))
    backend = TorchBackend(path, plain_manifest().derive(format="torchscript"), device="cpu", fp16=False)
    prediction = backend.infer(np.zeros((40, 48), np.uint8))
    assert (prediction.prob == TIE).all()
    assert (prediction.mask == CANCER).all()


def test_the_smoothed_overlay_counts_a_tie_as_cancer():
    overlay = Overlay.from_config(plain_manifest(), OverlayConfig(ema=0.5))
    prob = np.full((16, 16), TIE, np.float32)
    assert (overlay.smooth(np.ones((16, 16), np.uint8), prob) == CANCER).all()
