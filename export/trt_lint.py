"""TensorRT compatibility lint of an ONNX file, run where TensorRT cannot be installed.

Input: an ONNX file (``model.onnx`` or its FP16 twin). Output: a :class:`LintReport` listing
every rule the graph breaks (empty when the TensorRT ONNX parser should accept it). It runs in
``sonomap export onnx``, in ``sonomap selfcheck`` and in the tests.

Sources (read for each rule below; the operator table is vendored with its provenance in
``export/data/onnx_tensorrt_operators.json``):

- [OPS] onnx-tensorrt ``docs/operators.md`` (release/10.1-GA): the operator support matrix,
  its "Supported Types" and "Restrictions" columns, the opset range, and the note
  "UINT8 is only supported as network input or output tensor types".
- [UINT8] NVIDIA/TensorRT issue 3985, TensorRT maintainer (2025-02-11): "All UINT8 inputs
  must directly feed into a cast layer in TensorRT. No other layers support UINT8 inputs,
  even just data-movement ops like reshape / transpose."
- [GUIDE] TensorRT developer guide, "Working with Types" / I/O formats: UINT8 is a network
  I/O type, converted with a cast layer; [OPSET] TensorRT "ONNX Opset Guide": TensorRT 11.x
  parses opsets 9..25 (10.x: 9..20, [OPS]).

Why hand-written: no maintained package checks an ONNX graph against TensorRT's rules without
TensorRT itself (Polygraphy and trtexec both need it installed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edge_runtime.errors import ConfigError
from export.graph_io import load_onnx
from export.onnx_export import SUPPORTED_OPSETS

TABLE_PATH = Path(__file__).resolve().parent / "data" / "onnx_tensorrt_operators.json"
DEFAULT_DOMAINS = ("", "ai.onnx")
# ONNX TensorProto element type name -> the spelling of [OPS]'s "Supported Types" column.
TYPE_NAMES = {
    "FLOAT": "FP32",
    "FLOAT16": "FP16",
    "BFLOAT16": "BF16",
    "INT32": "INT32",
    "INT64": "INT64",
    "UINT8": "UINT8",
    "INT8": "INT8",
    "BOOL": "BOOL",
    "DOUBLE": "DOUBLE",
}
TABLE_TYPOS = {"INF64": "INT64"}  # [OPS] spells INT64 "INF64" in ConstantOfShape's row
# Ops whose every input carries data of the op's type (elsewhere only input 0 does; the rest
# are shapes, scales, indices or axes with their own fixed types).
ALL_INPUTS_TYPED = {
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "Concat",
    "Equal",
    "Greater",
    "GreaterOrEqual",
    "Less",
    "LessOrEqual",
    "And",
    "Or",
    "Xor",
    "Where",
    "Conv",
    "ConvTranspose",
}
# [OPS] Restrictions: "`axes` must be an initializer" (Slice, Squeeze, Pad, ReduceMean) and
# "must be a constant tensor" (Unsqueeze). The parser turns Constant nodes into weights too.
CONSTANT_INPUTS = {
    "Slice": (3, "axes"),
    "Squeeze": (1, "axes"),
    "Unsqueeze": (1, "axes"),
    "Pad": (3, "axes"),
    "ReduceMean": (1, "axes"),
}
# [OPS] Resize restrictions.
RESIZE_MODES = {"nearest", "linear"}
RESIZE_COORDINATES = {
    "half_pixel",
    "pytorch_half_pixel",
    "tf_half_pixel_for_nn",
    "asymmetric",
    "align_corners",
}


@dataclass
class LintReport:
    path: Path
    opset: int
    ops: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        verdict = "PASS" if self.passed else f"FAIL ({len(self.problems)} problem(s))"
        return (
            f"TensorRT ONNX lint of {self.path.name}: opset {self.opset}, {sum(self.ops.values())} nodes, "
            f"{len(self.ops)} op types -> {verdict}"
        )


def load_table(path: Path = TABLE_PATH) -> dict:
    return json.loads(Path(path).read_text())


def _tensor_types(model) -> dict[str, str]:
    """Name -> element type name of every tensor the graph declares, infers or holds as a constant."""
    # deferred: onnx is the optional [export] extra
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {}
    for info in [*graph.input, *graph.output, *graph.value_info]:
        if info.type.HasField("tensor_type") and info.type.tensor_type.elem_type:
            types[info.name] = onnx.TensorProto.DataType.Name(info.type.tensor_type.elem_type)
    for init in graph.initializer:
        types[init.name] = onnx.TensorProto.DataType.Name(init.data_type)
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = onnx.TensorProto.DataType.Name(attr.t.data_type)
    return types


def _attr(node, name, default):
    # deferred: onnx is the optional [export] extra
    import onnx

    for attr in node.attribute:
        if attr.name == name:
            value = onnx.helper.get_attribute_value(attr)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _default_opset(model, path: str | Path) -> int:
    for imp in model.opset_import:
        if imp.domain in DEFAULT_DOMAINS:
            return int(imp.version)
    raise ConfigError(
        f"{path}: not an ONNX model TensorRT can parse: it imports no default-domain (ai.onnx) opset"
    )


def _check_opset(report: LintReport, table: dict) -> None:
    low, high = table["opset_range"]
    if report.opset not in SUPPORTED_OPSETS:
        report.problems.append(
            f"opset {report.opset} is outside the opsets sonomap exports for TensorRT "
            f"({SUPPORTED_OPSETS[0]}-{SUPPORTED_OPSETS[-1]})"
        )
    elif not low <= report.opset <= high:
        report.problems.append(f"opset {report.opset} is outside TensorRT 10.x's parser range {low}-{high}")


def _check_uint8(graph, types: dict, consumers: dict, report: LintReport) -> None:
    """[UINT8] + [OPS] note: UINT8 exists only at the network edge, through one Cast."""
    inputs = {i.name for i in graph.input}
    outputs = {o.name for o in graph.output}
    producers = {out: node for node in graph.node for out in node.output}
    for name, dtype in types.items():
        if dtype != "UINT8":
            continue
        users = consumers.get(name, [])
        if name in inputs:
            if len(users) != 1 or users[0].op_type != "Cast":
                found = ", ".join(f"{n.op_type} {n.name}" for n in users) or "nothing"
                report.problems.append(
                    f"UINT8 input {name!r} must feed exactly one Cast (TensorRT: 'All UINT8 "
                    f"inputs must directly feed into a cast layer'); it feeds {found}"
                )
            continue
        producer = producers.get(name)
        if name in outputs and producer is not None and producer.op_type == "Cast" and not users:
            continue  # a Cast to a UINT8 network output: allowed
        where = f"made by {producer.op_type} {producer.name}" if producer is not None else "a constant"
        report.problems.append(
            f"tensor {name!r} ({where}) is UINT8 inside the network; TensorRT supports UINT8 "
            "only as a network input or output through a Cast"
        )


def _check_node(node, types: dict, table: dict, constants: set, report: LintReport) -> None:
    row = table["operators"].get(node.op_type)
    label = f"{node.op_type} {node.name or '(unnamed)'}"
    if node.domain not in DEFAULT_DOMAINS:
        report.problems.append(f"{label}: op of domain {node.domain!r} needs a TensorRT plugin")
        return
    if row is None or not row["supported"]:
        report.problems.append(
            f"{label}: not supported by the TensorRT ONNX parser (onnx-tensorrt operators.md)"
        )
        return
    allowed = {TABLE_TYPOS.get(t, t) for t in row["types"]}
    typed = range(len(node.input)) if node.op_type in ALL_INPUTS_TYPED else range(min(1, len(node.input)))
    names = [node.input[i] for i in typed if node.input[i]]
    if node.op_type in ("Constant", "Cast"):
        names += list(node.output[:1])  # what a Constant holds / a Cast makes must be a TensorRT type too
    for name in names:
        dtype = types.get(name)
        if dtype is None:
            report.problems.append(f"{label}: the type of {name!r} cannot be inferred; cannot check it")
        elif TYPE_NAMES.get(dtype, dtype) not in allowed:
            report.problems.append(
                f"{label}: {name!r} is {dtype}; TensorRT supports {', '.join(row['types'])}"
            )
    for name in node.input:  # a BOOL anywhere else is as bad as in the typed inputs
        if name and name not in names and types.get(name) == "BOOL" and "BOOL" not in allowed:
            report.problems.append(f"{label}: BOOL tensor {name!r} where TensorRT does not take BOOL")
    if node.op_type in CONSTANT_INPUTS:
        index, what = CONSTANT_INPUTS[node.op_type]
        if len(node.input) > index and node.input[index] and node.input[index] not in constants:
            report.problems.append(f"{label}: input {what} must be an initializer or Constant for TensorRT")
    if node.op_type == "Resize":
        mode = _attr(node, "mode", "nearest")
        coords = _attr(node, "coordinate_transformation_mode", "half_pixel")
        if mode not in RESIZE_MODES or coords not in RESIZE_COORDINATES or _attr(node, "antialias", 0):
            report.problems.append(
                f"{label}: mode {mode!r} / coordinate_transformation_mode {coords!r} / "
                "antialias is not supported by TensorRT's Resize"
            )
    if node.op_type == "MaxPool":
        if len([o for o in node.output if o]) > 1 or any(d != 1 for d in _attr(node, "dilations", [])):
            report.problems.append(f"{label}: TensorRT's MaxPool has no Indices output and no dilation")


def lint_model(model, path: str | Path = "<model>", table: dict | None = None) -> LintReport:
    """Check a loaded ``onnx.ModelProto`` (see module docstring for the rules and their sources)."""
    table = table or load_table()
    graph = model.graph
    report = LintReport(Path(path), _default_opset(model, path))
    _check_opset(report, table)
    types = _tensor_types(model)
    consumers: dict[str, list] = {}
    for node in graph.node:
        report.ops[node.op_type] = report.ops.get(node.op_type, 0) + 1
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    constants = {i.name for i in graph.initializer} | {
        n.output[0] for n in graph.node if n.op_type == "Constant"
    }
    _check_uint8(graph, types, consumers, report)
    for node in graph.node:
        _check_node(node, types, table, constants, report)
    return report


def lint_onnx(path: str | Path) -> LintReport:
    """Load ``path`` (weights included: a Constant's type needs them; a model whose weights are in
    external data files is refused, :func:`export.graph_io.load_onnx`) and lint it."""
    return lint_model(load_onnx(path), Path(path))


def describe(report: LintReport) -> str:
    return "\n".join([report.summary(), *(f"  - {p}" for p in report.problems)])
