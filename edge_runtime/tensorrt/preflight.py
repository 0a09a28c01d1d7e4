"""What an engine build would refuse, checked from the model's files alone: no GPU, no TensorRT build.

Input: the FP32 ONNX model and its manifest, the TensorRT version and precision. Output: the ONNX
file the build will parse (:class:`BuildFile`), or a ConfigError naming the file and what to run.
The TensorRT backend calls :func:`preflight` at start-up, so a model that could never be built is
refused in a second rather than after a build of many minutes; :func:`~edge_runtime.tensorrt.engines.plan_engine`
makes the same checks before it builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import Manifest, load_manifest, manifest_path
from edge_runtime.tensorrt.key import choose_build_path
from edge_runtime.tensorrt.manifest_io import check_io
from edge_runtime.tensorrt.twin import resolve_build_onnx

INPUT_NAME = "frame"
# Opsets sonomap exports and TensorRT 10.x's ONNX parser accepts for these ops.
SUPPORTED_OPSETS = range(17, 21)


def check_folded(onnx_path: Path, manifest: Manifest) -> None:
    """ConfigError naming the manifest unless it describes a folded sonomap ONNX model with an opset
    TensorRT parses, and its ``io`` keys have the types the build reads (:func:`check_io`)."""
    check_io(onnx_path, manifest)
    names = [t.get("name") for t in manifest.io.get("inputs") or []]
    if manifest.format != "onnx" or not manifest.preprocessing_in_graph or names != [INPUT_NAME]:
        raise ConfigError(
            f"{manifest_path(onnx_path)}: not a folded sonomap ONNX model (needs format onnx, "
            f"preprocessing_in_graph true, input '{INPUT_NAME}'); re-export with 'sonomap export onnx'"
        )
    opset = manifest.io.get("opset")
    if opset is not None and opset not in SUPPORTED_OPSETS:
        raise ConfigError(
            f"{manifest_path(onnx_path)}: io.opset {opset} is unsupported for TensorRT builds "
            f"(supported {SUPPORTED_OPSETS.start}-{SUPPORTED_OPSETS.stop - 1}); re-export with --opset 17"
        )


class BuildFile(NamedTuple):
    """The ONNX file an engine build parses and the sha256 of its bytes (its verified manifest's)."""

    path: Path
    sha256: str


def preflight(
    onnx_path: str | Path, precision: str, trt_version: str, has_fp16_flag: bool = True
) -> BuildFile:
    """What :func:`plan_engine` would refuse, checked without a GPU or a build (the backend calls
    this at start-up): a model that is not folded, an unsupported opset or TensorRT version, or
    on the strongly typed path an FP16 twin that is missing, not checked or failed its check, or
    an ``io`` key of the wrong type.
    Returns the ONNX file the build will parse."""
    onnx_path = Path(onnx_path)
    manifest = load_manifest(onnx_path)
    check_folded(onnx_path, manifest)
    build_path = choose_build_path(trt_version, precision, has_fp16_flag)
    path, build_manifest = resolve_build_onnx(onnx_path, manifest, build_path)
    return BuildFile(path, build_manifest.sha256)
