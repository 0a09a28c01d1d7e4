"""Inference backends behind one interface (:class:`edge_runtime.backends.base.Backend`).

``create_backend(name, model, manifest)``: ``onnxruntime``, ``tensorrt``, ``torch`` or ``auto``.
``auto`` picks by the model file, ``inference.device`` and what is installed, and logs why:
``.engine``/``.plan``/``.trt`` -> TensorRT; ``.ts``/``.torchscript`` TorchScript -> torch; ``.onnx`` -> ONNX Runtime on
CPU for ``device: cpu``, else TensorRT when it and a GPU are available (engine built and cached by
the TensorRT module), else ONNX Runtime (CUDA EP when present, CPU otherwise). Heavy imports happen
only for the chosen backend.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_runtime.backends.tensorrt import TensorRTBackend
from edge_runtime.backends.torch import TorchBackend
from edge_runtime.config_schema import InferenceConfig
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import ENGINE_SUFFIXES, TORCHSCRIPT_SUFFIXES, manifest_path
from edge_runtime.model_contract import check_model_file
from edge_runtime.parity_record import refuse_failed_parity

log = logging.getLogger("sonomap.backends")

BACKENDS = ("auto", "onnxruntime", "tensorrt", "torch")
# The model formats (manifest key 'format') each backend loads. A TensorRT engine is the tensorrt
# backend's; it also builds and caches one from an ONNX model.
LOADS = {"onnxruntime": ("onnx",), "tensorrt": ("onnx", "tensorrt"), "torch": ("torchscript",)}
# Formats no backend serves, and what to serve instead (the file's name fills {name}).
NOT_SERVED = {
    "checkpoint": (
        "a training checkpoint, which the runtime does not serve: export it first "
        "(sonomap export onnx --checkpoint {name} --out model.onnx) and serve model.onnx"
    ),
    "torch-tensorrt": (
        "a Torch-TensorRT program (export tensorrt --via torch-tensorrt), which the runtime does not "
        "serve: serve the ONNX model (the tensorrt backend builds and caches its engine from it) or a "
        "TorchScript export"
    ),
}


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def choose_backend(model_path: str | Path, device: str = "auto") -> tuple[str, str]:
    """(backend name, reason) for ``auto``; ``device: cpu`` never gets TensorRT (a GPU-only backend)."""
    suffix = Path(model_path).suffix.lower()
    if suffix in ENGINE_SUFFIXES:
        if device == "cpu":
            raise ConfigError(
                f"inference.device: cpu, but model {Path(model_path).name} is a TensorRT engine, which runs "
                "only on the GPU; use the ONNX model for the CPU, or device auto/cuda"
            )
        return "tensorrt", f"model {Path(model_path).name} is a TensorRT engine"
    if suffix in TORCHSCRIPT_SUFFIXES:
        return "torch", f"model {Path(model_path).name} is TorchScript"
    if device == "cpu":
        return "onnxruntime", "inference.device is cpu: ONNX Runtime on CPU"
    if _has("tensorrt") and _has("pycuda"):
        return "tensorrt", "tensorrt and pycuda are installed (engine built from the ONNX and cached)"
    import onnxruntime as ort  # deferred: about 0.1 s to import, and only `auto` on an .onnx model asks it

    if "CUDAExecutionProvider" in ort.get_available_providers():
        return "onnxruntime", "onnxruntime has the CUDA execution provider"
    return "onnxruntime", "no TensorRT/pycuda and no CUDA execution provider: ONNX Runtime on CPU"


def create_backend(name: str, model_path: str | Path, manifest, **options):
    """Instantiate a backend; ``options`` go to its constructor (device, threads, fp16, ...).
    Raises ConfigError for an unknown name or a model whose recorded parity check failed."""
    name, why = _resolve(name, model_path, manifest, options.get("device", "auto"))
    return _instantiate(name, why, model_path, manifest, options)


def _resolve(name: str, model_path: str | Path, manifest, device: str) -> tuple[str, str]:
    """(backend name, why): ``auto`` decided (and logged); the model refused first if its parity failed."""
    if name not in BACKENDS:
        raise ConfigError(f"inference.backend: {name!r} is not one of {BACKENDS}")
    _refuse_format(name, Path(model_path).name, manifest.format)
    refuse_failed_parity(model_path, manifest)
    if name != "auto":
        return name, f"backend {name} requested"
    name, why = choose_backend(model_path, device)
    log.info("backend auto -> %s: %s", name, why)
    return name, why


def _refuse_format(name: str, file: str, model_format: str) -> None:
    """ConfigError naming the model file when no backend, or not backend ``name``, loads its format:
    said before a loader meets the bytes and reports a parse error about the wrong kind of file."""
    if model_format in NOT_SERVED:
        raise ConfigError(f"{file}: {NOT_SERVED[model_format].format(name=file)}")
    if name != "auto" and model_format not in LOADS[name]:
        raise ConfigError(
            f"inference.backend {name} loads {' or '.join(LOADS[name])} models, but {file} is "
            f"{model_format}; choose backend auto"
        )


def _instantiate(name: str, why: str, model_path: str | Path, manifest, options: dict):
    if name == "tensorrt":
        if Path(model_path).suffix.lower() == ".onnx":
            # the engine is built from this graph: its manifest must describe it (the ONNX Runtime
            # backend checks the same when it makes its session)
            check_model_file(model_path, manifest)
        _refuse_cancer_as_zero(model_path, manifest)  # before an engine build, not after minutes of it
        backend = TensorRTBackend(model_path, manifest, **options)
    else:
        backend = (OnnxRuntimeBackend if name == "onnxruntime" else TorchBackend)(
            model_path, manifest, **options
        )
        # after the backend's own contract check, which names a manifest that does not describe the graph
        _refuse_cancer_as_zero(model_path, manifest)
    backend.selected_because = why
    return backend


def _refuse_cancer_as_zero(model_path: str | Path, manifest) -> None:
    """ConfigError when the model's cancer class is id 0. Everything downstream of a backend (the
    overlay's cut and heat map, the mask filter, recordings, OpenIGTLink labelmaps, biopsy captures)
    reads a mask's 0 as "no finding": such a model would show cancer as nothing, or everything as
    cancer. Export keeps any order; serving needs cancer at id 1 or above."""
    if manifest.cancer_index == 0:
        raise ConfigError(
            f"{manifest_path(model_path)}: 'classes': cancer is id 0, which the runtime reads as no "
            "finding; serve a model whose cancer class is id 1 or above"
        )


def backend_from_config(inference: InferenceConfig, model_path: str | Path, manifest, **extra):
    """The runtime config's ``inference`` section -> a backend, each option passed only to the
    backends that take it (the pipeline and ``sonomap bench`` build theirs here). ``auto`` is decided
    first, so the backend it picks gets the same options as when it is named."""
    name, why = _resolve(inference.backend, model_path, manifest, inference.device)
    opts = {"device": inference.device, **extra}
    if inference.threads:
        opts["threads"] = inference.threads
    if name in ("torch", "tensorrt"):
        opts.update(fp16=inference.fp16, cuda_graphs=inference.cuda_graphs, input_size=inference.input_size)
    return _instantiate(name, why, model_path, manifest, opts)
