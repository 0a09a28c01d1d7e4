"""The graph's input and output tensors against its manifest's ``io`` listing, before a model is run.

``sonomap selfcheck`` feeds ONNX Runtime the tensor the manifest lists (``frame``, uint8, the shape
in ``io.inputs``), and ``sonomap export tensorrt`` builds its optimisation profile from the same
listing. A graph that takes another name, dtype, rank or a fixed size the manifest does not say
(a model edited or renamed by hand, a manifest copied from another export) would otherwise fail
inside ONNX Runtime with its own traceback, or minutes into a TensorRT build.

Input: an ONNX Runtime session (or a model path) and the manifest beside the model.
Output: nothing; a one-line ConfigError naming the manifest file and the ``io`` key on the first
difference. Names and dtypes are compared by :func:`edge_runtime.model_contract.check_io` (the
check the ONNX Runtime backend makes), the shapes by :func:`edge_runtime.graph_shapes.check_input_shapes`.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.graph_shapes import check_input_shapes
from edge_runtime.manifest import Manifest
from edge_runtime.model_contract import check_io


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
