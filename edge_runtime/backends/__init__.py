"""Inference backends behind one interface (:class:`edge_runtime.backends.base.Backend`).

``create_backend(name, model, manifest)``: ``onnxruntime``, ``tensorrt``, ``torch`` or ``auto``.
``auto`` picks by the model file and what is installed, and logs why:
``.engine``/``.plan`` -> TensorRT; ``.ts``/``.pt2`` TorchScript -> torch; ``.onnx`` -> TensorRT when
it and a GPU are available (engine built and cached by the TensorRT module), else ONNX Runtime
(CUDA EP when present, CPU otherwise). Heavy imports happen only for the chosen backend.
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
from edge_runtime.model_contract import check_model_file

log = logging.getLogger("sonomap.backends")

BACKENDS = ("auto", "onnxruntime", "tensorrt", "torch")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
TORCHSCRIPT_SUFFIXES = (".ts", ".torchscript")


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def choose_backend(model_path: str | Path) -> tuple[str, str]:
    """(backend name, reason) for ``auto``."""
    suffix = Path(model_path).suffix.lower()
    if suffix in ENGINE_SUFFIXES:
        return "tensorrt", f"model {Path(model_path).name} is a TensorRT engine"
    if suffix in TORCHSCRIPT_SUFFIXES:
        return "torch", f"model {Path(model_path).name} is TorchScript"
    if _has("tensorrt") and _has("pycuda"):
        return "tensorrt", "tensorrt and pycuda are installed (engine built from the ONNX and cached)"
    import onnxruntime as ort  # deferred: about 0.1 s to import, and only `auto` on an .onnx model asks it

    if "CUDAExecutionProvider" in ort.get_available_providers():
        return "onnxruntime", "onnxruntime has the CUDA execution provider"
    return "onnxruntime", "no TensorRT/pycuda and no CUDA execution provider: ONNX Runtime on CPU"


def refuse_failed_parity(model_path: str | Path, manifest) -> None:
    """A model whose export recorded a failed parity check (``extra.parity.passed: false``) draws
    masks that differ from the network that was validated; serving it would show unvalidated
    output as if it were the model's, so it is refused with the figures that failed. A model made
    through several checked steps (an FP16 twin: torch -> FP32 -> FP16) records each step under
    ``chain``; the message names the first step that did not pass."""
    parity = manifest.extra.get("parity") if isinstance(manifest.extra, dict) else None
    if isinstance(parity, dict) and parity.get("passed") is False:
        links = parity.get("chain") if isinstance(parity.get("chain"), list) else []
        failed = next((x for x in links if isinstance(x, dict) and x.get("passed") is not True), parity)
        raise ConfigError(
            f"{model_path}: its manifest records a failed parity check "
            f"({failed.get('candidate', '?')} vs {failed.get('reference', '?')}: {_why_failed(failed)}); "
            "re-export the model, or choose one whose parity passed"
        )


def _why_failed(step: dict) -> str:
    """The figures and reasons of one failed parity step, for the refusal's one line."""
    parts = []
    if "mask_agreement" in step:  # a step never run has no figures, only a note saying so
        parts.append(f"mask agreement {step['mask_agreement']}, bar {step.get('bar', '?')}")
    reasons = step.get("failures") or ([step["note"]] if "note" in step else [])
    parts.extend(str(reason) for reason in reasons)
    return "; ".join(parts) or "no figures recorded"


def create_backend(name: str, model_path: str | Path, manifest, **options):
    """Instantiate a backend; ``options`` go to its constructor (device, threads, fp16, ...).
    Raises ConfigError for an unknown name or a model whose recorded parity check failed."""
    if name not in BACKENDS:
        raise ConfigError(f"inference.backend: {name!r} is not one of {BACKENDS}")
    refuse_failed_parity(model_path, manifest)
    if name == "auto":
        name, why = choose_backend(model_path)
        log.info("backend auto -> %s: %s", name, why)
    else:
        why = f"backend {name} requested"
    if name == "tensorrt" and Path(model_path).suffix.lower() == ".onnx":
        # the engine is built from this graph: its manifest must describe it (the ONNX Runtime
        # backend checks the same when it makes its session)
        check_model_file(model_path, manifest)
    if name == "onnxruntime":
        backend = OnnxRuntimeBackend(model_path, manifest, **options)
    elif name == "torch":
        backend = TorchBackend(model_path, manifest, **options)
    else:
        backend = TensorRTBackend(model_path, manifest, **options)
    backend.selected_because = why
    return backend


def backend_from_config(inference: InferenceConfig, model_path: str | Path, manifest, **extra):
    """The runtime config's ``inference`` section -> a backend, each option passed only to the
    backends that take it (the pipeline and ``sonomap bench`` build theirs here)."""
    name = inference.backend
    opts = {"device": inference.device, **extra}
    if inference.threads:
        opts["threads"] = inference.threads
    if name in ("torch", "tensorrt") or (name == "auto" and Path(model_path).suffix.lower() != ".onnx"):
        opts.update(fp16=inference.fp16, cuda_graphs=inference.cuda_graphs, input_size=inference.input_size)
    return create_backend(name, model_path, manifest, **opts)
