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

:func:`load_onnx` reads a model file for the checks that need the graph itself (the TensorRT
lint): one line for a file that is not an ONNX model, or one whose weights live in other files
(ONNX external data), which its manifest's sha256 does not cover.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.errors import ConfigError
from edge_runtime.graph_shapes import check_input_shapes
from edge_runtime.manifest import Manifest
from edge_runtime.model_contract import check_io
from export.parity import ort_session


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
    check_session_io(ort_session(model_path), manifest, model_path)


def load_onnx(path: str | Path):
    """The ``onnx.ModelProto`` in ``path``, weights included. ConfigError naming the file when it
    is not an ONNX model, holds no graph, or keeps tensors in external data files: the manifest's
    sha256 (and the engine cache key built from it) covers the .onnx file only, so weights beside it
    could be swapped for others without any check noticing."""
    # deferred: onnx is the optional [export] extra
    import onnx

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and others for a foreign file
        raise ConfigError(f"{path}: not a readable ONNX file ({type(exc).__name__}: {exc})") from exc
    if not model.graph.node:  # protobuf reads an empty (or all-default) file as an empty model
        raise ConfigError(f"{path}: not an ONNX model: it holds no graph ({path.stat().st_size} bytes)")
    external = sorted(external_data_files(model.graph))
    if external:
        raise ConfigError(
            f"{path}: keeps its weights in {', '.join(external)} (ONNX external data), which its manifest's "
            "sha256 does not cover: re-export it as one file with 'sonomap export onnx'"
        )
    return model


def external_data_files(graph) -> set[str]:
    """The ``location`` of every tensor of ``graph`` (initializers, Constant values, subgraphs)
    stored as ONNX external data."""
    # deferred: onnx is the optional [export] extra
    import onnx

    tensors = list(graph.initializer) + [s.values for s in graph.sparse_initializer]
    found: set[str] = set()
    for node in graph.node:
        for attr in node.attribute:
            tensors += [attr.t] if attr.HasField("t") else []
            tensors += list(attr.tensors)
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                found |= external_data_files(sub)
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {entry.key: entry.value for entry in tensor.external_data}
            found.add(entries.get("location", "an unnamed file"))
    return found
