"""Which ONNX file an engine build parses, and the checks the FP16 twin must pass first.

The strongly typed path (TensorRT >= 10.12 and 11.x) parses ``model.fp16.onnx`` rather than
``model.onnx``: precision follows the graph's types. That twin is what the engine then computes,
so it is held to what a model served directly is held to: its manifest must belong to the FP32
model, record a *passed* parity check (a twin just converted records its own step as not checked)
and describe the graph (the model contract). Otherwise an FP16 engine would be built, cached and
served from a graph nobody validated.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import Manifest, load_manifest, manifest_path
from edge_runtime.model_contract import check_model_file
from edge_runtime.parity_record import refuse_failed_parity
from edge_runtime.tensorrt.key import FP16, FP32, PATH_FP32, PATH_STRONGLY_TYPED

FP16_TWIN_SUFFIX = ".fp16.onnx"
MAKE_TWIN = (
    "run 'sonomap export onnx --fp16', which converts and checks it (or build FP32: inference.fp16: false)"
)


def twin_path(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.name[: -len(".onnx")] + FP16_TWIN_SUFFIX)


def resolve_build_onnx(onnx_path: Path, manifest: Manifest, build_path: str) -> tuple[Path, Manifest]:
    """The strongly typed path parses the FP16 ONNX (types decide precision); the others the FP32 one."""
    precision = manifest.extra.get("precision", FP32)
    if build_path != PATH_STRONGLY_TYPED:
        if build_path == PATH_FP32 and precision == FP16:
            raise ConfigError(f"{onnx_path}: an FP32 engine needs the FP32 ONNX, this one is FP16")
        return onnx_path, manifest
    if precision == FP16:
        return onnx_path, manifest
    twin = twin_path(onnx_path)
    if not twin.is_file():
        raise InputError(
            f"{twin}: FP16 ONNX not found; TensorRT >= 10.12 builds FP16 engines as strongly typed "
            f"networks from it: run 'sonomap export onnx --fp16' (or 'sonomap export tensorrt', "
            "which makes it)"
        )
    twin_manifest = load_manifest(twin)
    if twin_manifest.source.get("fp32_onnx_sha256") != manifest.sha256:
        raise ConfigError(
            f"{twin}: this FP16 ONNX was not converted from {onnx_path.name} "
            "(source.fp32_onnx_sha256 differs); re-run 'sonomap export onnx --fp16'"
        )
    check_twin(twin, twin_manifest)
    return twin, twin_manifest


def check_twin(twin: Path, twin_manifest: Manifest) -> None:
    """Refuse a twin whose parity check failed, never ran or is not recorded, or whose manifest does
    not describe its graph: one ConfigError naming the twin and what to run."""
    try:
        refuse_failed_parity(twin, twin_manifest)
    except ConfigError as exc:
        raise ConfigError(
            f"{exc}. TensorRT >= 10.12 builds FP16 engines from this file: {MAKE_TWIN}"
        ) from exc
    parity = twin_manifest.extra.get("parity")
    if not isinstance(parity, dict) or parity.get("passed") is not True:
        raise ConfigError(
            f"{twin}: its manifest ({manifest_path(twin).name}) records no passed parity check "
            f"(extra.parity.passed); TensorRT >= 10.12 builds FP16 engines from this file: {MAKE_TWIN}"
        )
    check_model_file(twin, twin_manifest)
