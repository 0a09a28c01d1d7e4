"""The graph's input and output tensors against its manifest's ``io`` listing, before a model is run.

``sonomap selfcheck`` feeds ONNX Runtime the tensor the manifest lists (``frame``, uint8, the shape
in ``io.inputs``), and ``sonomap export tensorrt`` builds its optimisation profile from the same
listing. A graph that takes another name, dtype, rank or a fixed size the manifest does not say
(a model edited or renamed by hand, a manifest copied from another export) would otherwise fail
inside ONNX Runtime with its own traceback, or minutes into a TensorRT build.

Input: an ONNX Runtime session (or a model path) and the manifest beside the model.
Output: nothing; a one-line ConfigError naming the manifest file and the ``io`` key on the first
difference. Names and dtypes are compared by :func:`edge_runtime.model_contract.check_io` (the
check the ONNX Runtime backend makes); this module adds the shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import Manifest, manifest_path
from edge_runtime.model_contract import check_io


def _shape_text(shape: Sequence) -> str:
    return "[" + ", ".join("?" if dim is None else str(dim) for dim in shape) + "]"


def check_input_shapes(manifest: Manifest, graph_shapes: dict[str, list], model_path: str | Path) -> None:
    """Each input's shape in ``manifest.io.inputs`` against the graph's (``graph_shapes``: name ->
    ONNX Runtime shape, an int for a fixed dimension, a name or None for a dynamic one). A fixed
    dimension in the graph must be the same number in the manifest: the profile TensorRT builds and
    the frames selfcheck feeds come from the manifest. A dynamic graph dimension takes any value.
    ConfigError naming the manifest file on the first difference; inputs listed without a shape
    (a manifest written by other means) are not checked."""
    for listed in manifest.io.get("inputs") or []:
        if not isinstance(listed, dict) or not isinstance(listed.get("shape"), list):
            continue
        name, want = str(listed.get("name")), listed["shape"]
        have = graph_shapes.get(name)
        if have is None:
            continue  # a missing tensor is check_io's to name
        fixed_differs = any(isinstance(g, int) and g != m for g, m in zip(have, want, strict=False))
        if len(have) != len(want) or fixed_differs:
            raise ConfigError(
                f"{manifest_path(model_path)}: 'io.inputs' gives {name!r} the shape {_shape_text(want)} but "
                f"the graph {Path(model_path).name} takes {_shape_text(have)}; this manifest does not "
                "belong to the graph (re-export the model with 'sonomap export onnx')"
            )


def check_session_io(session, manifest: Manifest, model_path: str | Path) -> None:
    """Names, dtypes and input shapes of ``session``'s graph against ``manifest.io``."""
    listing = {
        "inputs": {t.name: t.type for t in session.get_inputs()},
        "outputs": {t.name: t.type for t in session.get_outputs()},
    }
    check_io(manifest, listing, model_path)
    check_input_shapes(manifest, {t.name: list(t.shape) for t in session.get_inputs()}, model_path)


def check_model_io(model_path: str | Path, manifest: Manifest) -> None:
    """:func:`check_session_io` for a model file (opens an ONNX Runtime session on the CPU)."""
    from export.parity import ort_session

    check_session_io(ort_session(model_path), manifest, model_path)
