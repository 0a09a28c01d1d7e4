"""The TensorRT compatibility lint (export/trt_lint.py) on the shipped models, on the same graphs with
the uint8 frame also read by Shape, and on one small graph per rule.

The small graphs are real ONNX models made with ``onnx.helper`` (no TensorRT needed: the rules
come from NVIDIA's documents, cited in the module)."""

from __future__ import annotations

import onnx
import pytest
from export_fixtures import copy_model, old_style, shared_tiny_onnx
from onnx import TensorProto, helper

from edge_runtime.cli import main
from edge_runtime.manifest import load_manifest, save_manifest
from export.selfcheck import DEFAULT_MODEL, EXIT_LINT_FAILED
from export.trt_lint import lint_model, lint_onnx, load_table

SHIPPED = [DEFAULT_MODEL, DEFAULT_MODEL.with_name("model.fp16.onnx")]


def _graph(nodes, inputs, outputs, opset=17, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, dtype, shape=(1, 1, 4, 4)):
    return helper.make_tensor_value_info(name, dtype, list(shape))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_models_pass(path):
    report = lint_onnx(path)
    assert report.passed, report.problems
    assert report.opset == 17 and report.ops["Cast"] >= 2


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_uint8_frame_read_by_shape_fails(path):
    """The shipped graphs with Shape reading the uint8 frame: the lint must reject them."""
    report = lint_model(old_style(onnx.load(str(path))), path)
    assert not report.passed
    assert any(
        "UINT8 input 'frame' must feed exactly one Cast" in p and "Shape" in p for p in report.problems
    )
    assert any(p.startswith("Shape ") and "'frame' is UINT8" in p for p in report.problems)


def test_freshly_exported_model_passes():
    """A fresh export: the frame feeds only a Cast (fails if folded.py reads frame.shape)."""
    model = onnx.load(str(shared_tiny_onnx()))
    consumers = [n.op_type for n in model.graph.node if "frame" in n.input]
    assert consumers == ["Cast"]
    report = lint_model(model, "tiny")
    assert report.passed, report.problems


def test_uint8_inside_the_network_fails():
    nodes = [
        helper.make_node("Cast", ["x"], ["c"], to=TensorProto.UINT8, name="to_u8"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    report = lint_model(_graph(nodes, [_vi("x", TensorProto.FLOAT)], [_vi("y", TensorProto.UINT8)]))
    assert any("'c' (made by Cast to_u8) is UINT8 inside the network" in p for p in report.problems)
    assert any("'y' (made by Relu relu)" in p for p in report.problems)


def test_uint8_output_through_cast_passes():
    nodes = [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.UINT8, name="out")]
    report = lint_model(_graph(nodes, [_vi("x", TensorProto.FLOAT)], [_vi("y", TensorProto.UINT8)]))
    assert report.passed, report.problems


def test_bool_where_tensorrt_does_not_take_it_fails():
    nodes = [
        helper.make_node("Greater", ["x", "x"], ["b"], name="gt"),
        helper.make_node("Add", ["b", "b"], ["y"], name="add_bools"),
    ]
    report = lint_model(_graph(nodes, [_vi("x", TensorProto.FLOAT)], [_vi("y", TensorProto.BOOL)]))
    assert any(p.startswith("Add add_bools: 'b' is BOOL") for p in report.problems)


def test_unsupported_op_custom_domain_and_opset():
    nodes = [helper.make_node("Det", ["x"], ["y"], name="det")]
    square = (2, 2)
    report = lint_model(
        _graph(nodes, [_vi("x", TensorProto.FLOAT, square)], [_vi("y", TensorProto.FLOAT, ())])
    )
    assert any("Det det: not supported" in p for p in report.problems)
    relu = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    newer = lint_model(_graph(relu, [_vi("x", TensorProto.FLOAT)], [_vi("y", TensorProto.FLOAT)], opset=21))
    assert any("opset 21 is outside" in p for p in newer.problems)
    custom = _graph(
        [helper.make_node("Gelu", ["x"], ["y"], domain="com.microsoft", name="g")],
        [_vi("x", TensorProto.FLOAT)],
        [_vi("y", TensorProto.FLOAT)],
    )
    custom.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    assert any("domain 'com.microsoft' needs a TensorRT plugin" in p for p in lint_model(custom).problems)


def test_resize_mode_and_non_constant_axes_fail():
    sizes = helper.make_tensor("sizes", TensorProto.INT64, [4], [1, 1, 8, 8])
    cubic = [helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="cubic", name="rs")]
    report = lint_model(
        _graph(
            cubic,
            [_vi("x", TensorProto.FLOAT)],
            [_vi("y", TensorProto.FLOAT, (1, 1, 8, 8))],
            initializers=[sizes],
        )
    )
    assert any("Resize rs: mode 'cubic'" in p for p in report.problems)
    nodes = [helper.make_node("Unsqueeze", ["x", "axes"], ["y"], name="unsq")]
    report = lint_model(
        _graph(
            nodes,
            [_vi("x", TensorProto.FLOAT, (4,)), _vi("axes", TensorProto.INT64, (1,))],
            [_vi("y", TensorProto.FLOAT, (1, 4))],
        )
    )
    assert any("Unsqueeze unsq: input axes must be an initializer or Constant" in p for p in report.problems)


def test_table_provenance():
    table = load_table()
    assert table["source"]["repo"] == "onnx/onnx-tensorrt" and len(table["source"]["commit"]) == 40
    assert (
        "UINT8" not in table["operators"]["Shape"]["types"] and "UINT8" in table["operators"]["Cast"]["types"]
    )


def test_selfcheck_refuses_old_style_model(tmp_path, capsys):
    """selfcheck lints before TensorRT: a graph TensorRT would reject exits 4 with the reasons."""
    model = copy_model(DEFAULT_MODEL, tmp_path / "old")
    onnx.save(old_style(onnx.load(str(model))), str(model))
    save_manifest(load_manifest(model, verify_hash=False), model)
    rc = main(["selfcheck", "--model", str(model), "--max-frames", "1"])
    out = capsys.readouterr().out
    assert rc == EXIT_LINT_FAILED
    assert "TensorRT ONNX lint of model.onnx" in out and "FAIL" in out and "must feed exactly one Cast" in out
