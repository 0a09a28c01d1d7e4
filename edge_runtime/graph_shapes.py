"""A graph's input shapes against its manifest's ``io.inputs`` listing, when a model is opened.

The ONNX Runtime backend, ``sonomap selfcheck`` and ``sonomap export tensorrt`` feed the graph, or
build its optimisation profile from, the shapes the manifest lists. A graph taking another rank or a
fixed size the manifest does not say (a model edited by hand, a manifest copied from another export)
would otherwise fail on the first frame inside ONNX Runtime, or minutes into a TensorRT build.

Input: the manifest, the graph's input shapes (name -> ONNX Runtime shape) and the model path.
Output: nothing; a one-line ConfigError naming the manifest file and ``io.inputs`` on the first
difference. Names and dtypes are :func:`edge_runtime.model_contract.check_io`'s to compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import Manifest, manifest_path

SPATIAL_DIMS = (2, 3)  # height and width of an [N, C, H, W] input


def _shape_text(shape: Sequence) -> str:
    return "[" + ", ".join("?" if dim is None else str(dim) for dim in shape) + "]"


def check_input_shapes(
    manifest: Manifest, graph_shapes: dict[str, list], model_path: str | Path, resized: tuple[int, ...] = ()
) -> None:
    """Each input's shape in ``manifest.io.inputs`` against the graph's (``graph_shapes``: name ->
    ONNX Runtime shape, an int for a fixed dimension, a name or None for a dynamic one). A fixed
    dimension in the graph must be the same number in the manifest: the profile TensorRT builds and
    the frames selfcheck feeds come from the manifest. A dynamic graph dimension takes any value, and
    so does a manifest's named dimension at a position in ``resized``: the runtime backends resize
    the ROI to a graph's fixed height and width, so only the batch and channel must agree there.
    ConfigError naming the manifest file on the first difference; inputs listed without a shape
    (a manifest written by other means) are not checked."""
    for listed in manifest.io.get("inputs") or []:
        if not isinstance(listed, dict) or not isinstance(listed.get("shape"), list):
            continue
        name, want = str(listed.get("name")), listed["shape"]
        have = graph_shapes.get(name)
        if have is None:
            continue  # a missing tensor is check_io's to name
        fixed_differs = any(
            isinstance(g, int) and g != m and not (i in resized and not isinstance(m, int))
            for i, (g, m) in enumerate(zip(have, want, strict=False))
        )
        if len(have) != len(want) or fixed_differs:
            raise ConfigError(
                f"{manifest_path(model_path)}: 'io.inputs' gives {name!r} the shape {_shape_text(want)} but "
                f"the graph {Path(model_path).name} takes {_shape_text(have)}; this manifest does not "
                "belong to the graph (re-export the model with 'sonomap export onnx')"
            )
