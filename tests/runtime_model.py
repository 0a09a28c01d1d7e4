"""Test helper: a tiny real ONNX segmentation model with pre/post folded in.

Until the trained default model exists, runtime tests run a randomly initialised (seeded)
LRASPP-MobileNetV3 exported with the ONNX contract of the export stage: input ``frame``
uint8 [N,1,H,W] at ROI size, outputs ``prob`` float32 and ``mask`` uint8 at ROI size.
Torch is imported here only (tests), never by edge_runtime itself.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np

from edge_runtime.manifest import DEFAULT_CLASSES, Manifest, save_manifest

ARCH = "lraspp_mobilenet_v3_large"
INPUT_SIZE = 96
MEAN, STD = 0.2, 0.2
SEED = 0
FOLDED_DIMS = ["n", 1, "h", "w"]  # the export contract: any batch and ROI size


def folded_manifest(
    name: str, arch: str, height: int, width: int, mean: float = 0.0, std: float = 1.0
) -> Manifest:
    """The manifest of a model with the export contract (uint8 ``frame`` in, ``prob``/``mask`` out)."""
    return Manifest(
        name=name,
        arch=arch,
        format="onnx",
        input_height=height,
        input_width=width,
        mean=mean,
        std=std,
        classes=list(DEFAULT_CLASSES),
        preprocessing_in_graph=True,
        io={
            "inputs": [{"name": "frame", "dtype": "uint8", "shape": FOLDED_DIMS}],
            "outputs": [
                {"name": "prob", "dtype": "float32", "shape": FOLDED_DIMS},
                {"name": "mask", "dtype": "uint8", "shape": FOLDED_DIMS},
            ],
        },
    )


def save_graph_model(
    nodes: list, out_dir: Path, graph_name: str, manifest: Manifest, initializers: tuple = ()
) -> Path:
    """Hand-built ONNX nodes (reading ``frame``, writing ``prob`` and ``mask``) -> checked
    ``out_dir/model.onnx`` at opset 17 with ``manifest`` beside it."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        graph_name,
        [helper.make_tensor_value_info("frame", TensorProto.UINT8, FOLDED_DIMS)],
        [
            helper.make_tensor_value_info("prob", TensorProto.FLOAT, FOLDED_DIMS),
            helper.make_tensor_value_info("mask", TensorProto.UINT8, FOLDED_DIMS),
        ],
        list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.onnx"
    onnx.save(model, str(path))
    save_manifest(manifest, path)
    return path


def _folded(model, size: int, mean: float, std: float):
    import torch
    from torch.nn import functional as F

    class Folded(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, frame):
            h, w = frame.shape[-2], frame.shape[-1]
            x = frame.float() * (1.0 / 255.0)
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            x = (x - mean) / std
            logits = self.model(x)
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
            p = torch.softmax(logits, dim=1)
            prob = p[:, 1:2]
            mask = (prob > 0.5).to(torch.uint8)
            return prob, mask

    return Folded().eval()


def export_tiny_onnx(out_dir: Path, bias: float = 0.0) -> Path:
    """Write ``out_dir/model.onnx`` + manifest; ``bias`` shifts the cancer logit so tests
    can get a model that marks some pixels."""
    import torch

    from training.models import build_model

    torch.manual_seed(SEED)
    model = build_model(ARCH, 2).eval()
    with torch.no_grad():
        head = model.net.classifier.high_classifier
        head.bias[1] += bias
        model.net.classifier.low_classifier.bias[1] += bias
    folded = _folded(model, INPUT_SIZE, MEAN, STD)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.onnx"
    dummy = torch.zeros(1, 1, 120, 160, dtype=torch.uint8)
    torch.onnx.export(
        folded,
        (dummy,),
        str(path),
        input_names=["frame"],
        output_names=["prob", "mask"],
        dynamic_axes={
            "frame": {0: "n", 2: "h", 3: "w"},
            "prob": {0: "n", 2: "h", 3: "w"},
            "mask": {0: "n", 2: "h", 3: "w"},
        },
        opset_version=17,
        dynamo=False,
    )
    save_manifest(folded_manifest("tiny-test", ARCH, INPUT_SIZE, INPUT_SIZE, MEAN, STD), path)
    return path


DARK_LEVEL = 0.3  # "cancer" = locally darker than this (hypoechoic), scaled 0..1
DARK_GAIN = 25.0
POOL = 15


def export_dark_region_onnx(out_dir: Path, nan: bool = False) -> Path:
    """A hand-built ONNX with the export contract (no torch): prob = sigmoid(gain * (level -
    local mean brightness)); hypoechoic (dark) regions, like most BUSI lesions, light up.
    Deterministic and content-dependent, so golden frames and mask checks mean something.
    ``nan=True`` makes a model whose probabilities are all NaN (fail-safe tests)."""
    from onnx import TensorProto, helper

    def const(name, value):
        return helper.make_node(
            "Constant", [], [name], value=helper.make_tensor(name + "_t", TensorProto.FLOAT, [], [value])
        )

    nodes = [
        helper.make_node("Cast", ["frame"], ["f"], to=TensorProto.FLOAT),
        const("scale", 1.0 / 255.0),
        helper.make_node("Mul", ["f", "scale"], ["x"]),
        helper.make_node(
            "AveragePool",
            ["x"],
            ["avg"],
            kernel_shape=[POOL, POOL],
            pads=[POOL // 2] * 4,
            count_include_pad=0,
        ),
        const("level", DARK_LEVEL),
        helper.make_node("Sub", ["level", "avg"], ["d"]),
        const("gain", DARK_GAIN),
        helper.make_node("Mul", ["d", "gain"], ["z"]),
    ]
    if nan:
        nodes += [
            const("zero", 0.0),
            helper.make_node("Div", ["zero", "zero"], ["nanv"]),
            helper.make_node("Add", ["z", "nanv"], ["z2"]),
            helper.make_node("Sigmoid", ["z2"], ["prob"]),
        ]
    else:
        nodes.append(helper.make_node("Sigmoid", ["z"], ["prob"]))
    nodes += [
        const("half", 0.5),
        helper.make_node("Greater", ["prob", "half"], ["gt"]),
        helper.make_node("Cast", ["gt"], ["mask"], to=TensorProto.UINT8),
    ]
    manifest = folded_manifest("dark-region-test" + ("-nan" if nan else ""), "dark_region", 256, 256)
    return save_graph_model(nodes, out_dir, "dark_region", manifest)


HANG_TRIPS = 1 << 62  # Loop turns when the model hangs: ~1e18, years at any speed


def export_hanging_onnx(out_dir: Path, hang_above: float) -> Path:
    """The dark-region model behind an ONNX ``Loop`` that runs :data:`HANG_TRIPS` turns (a real hang
    inside onnxruntime's native code, GIL released) whenever the frame's mean brightness (0..1) is above
    ``hang_above``, and none otherwise. ``hang_above=-1``: hangs on every frame, the first included."""
    import onnx
    from onnx import TensorProto, helper

    path = export_dark_region_onnx(out_dir)
    model = onnx.load(str(path))
    graph = model.graph
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Identity", ["v_in"], ["v_out"]),
        ],
        "spin",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, []),
        ],
    )

    def const(name, dtype, value):
        return helper.make_node(
            "Constant", [], [name], value=helper.make_tensor(name + "_t", dtype, [], [value])
        )

    # prob = Sigmoid(z) becomes Sigmoid(z + loop_out): the outputs wait for the loop
    sigmoid = next(n for n in graph.node if n.op_type == "Sigmoid")
    sigmoid.input[0] = "z_after_loop"
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["brightness"], keepdims=0),
        const("hang_above", TensorProto.FLOAT, float(hang_above)),
        helper.make_node("Greater", ["brightness", "hang_above"], ["hang"]),
        helper.make_node("Cast", ["hang"], ["hang_i"], to=TensorProto.INT64),
        const("trips_max", TensorProto.INT64, HANG_TRIPS),
        helper.make_node("Mul", ["hang_i", "trips_max"], ["trips"]),
        const("loop_zero", TensorProto.FLOAT, 0.0),
        helper.make_node("Loop", ["trips", "", "loop_zero"], ["loop_out"], body=body),
        helper.make_node("Add", ["z", "loop_out"], ["z_after_loop"]),
    ]
    index = list(graph.node).index(sigmoid)
    for offset, node in enumerate(nodes):
        graph.node.insert(index + offset, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    manifest = folded_manifest(f"hang-above-{hang_above:g}", "dark_region_hang", 256, 256)
    save_manifest(manifest, path)
    return path


@functools.cache
def hanging_onnx(hang_above: float = -1.0) -> Path:
    """A model that hangs for real above a brightness (see :func:`export_hanging_onnx`), once per session."""
    return export_hanging_onnx(Path(tempfile.mkdtemp(prefix="sonomap-hang-")), hang_above)


@functools.cache
def dark_onnx(nan: bool = False) -> Path:
    """The dark-region model, written once per test session."""
    return export_dark_region_onnx(Path(tempfile.mkdtemp(prefix="sonomap-dark-")), nan)


@functools.cache
def tiny_onnx(bias: float = 0.0) -> Path:
    """Export once per test session (cached in a temp dir)."""
    return export_tiny_onnx(Path(tempfile.mkdtemp(prefix="sonomap-tiny-")), bias)


if __name__ == "__main__":
    import sys

    if sys.argv[2:3] == ["dark"]:
        print(export_dark_region_onnx(Path(sys.argv[1])))
        raise SystemExit(0)
    p = export_tiny_onnx(Path(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
    import onnxruntime as ort

    s = ort.InferenceSession(str(p))
    prob, mask = s.run(None, {"frame": np.random.randint(0, 255, (1, 1, 200, 300), np.uint8)})
    print(p, prob.shape, prob.dtype, mask.shape, mask.dtype, float(prob.mean()), float(mask.mean()))
