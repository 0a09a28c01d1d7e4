"""Guarded imports: TensorRT and pycuda exist only on GPU machines (JetPack, cart PC).

Each function returns the module or raises :class:`TensorRTUnavailable` (a SonomapError,
so the CLI prints one line) saying what to install.
"""

from __future__ import annotations

import threading

from edge_runtime.errors import SonomapError

_logger_lock = threading.Lock()
_logger: tuple[object, object] | None = None  # (tensorrt module, its Logger)


class TensorRTUnavailable(SonomapError):
    """TensorRT, its ONNX parser/builder, or pycuda is not installed here."""


def import_tensorrt():
    """The full ``tensorrt`` module (builder + ONNX parser + runtime)."""
    try:
        import tensorrt  # deferred: optional, present on GPU machines only
    except ImportError as exc:
        raise TensorRTUnavailable(
            "TensorRT Python module 'tensorrt' not found: on a Jetson install JetPack's python3-libnvinfer, "
            "on a cart PC 'pip install sonomap[tensorrt]' (needs an NVIDIA GPU and driver)"
        ) from exc
    if not hasattr(tensorrt, "Builder") or not hasattr(tensorrt, "OnnxParser"):
        raise TensorRTUnavailable(
            f"module 'tensorrt' {getattr(tensorrt, '__version__', '?')} has no Builder/OnnxParser "
            "(a runtime-only/lean package); engine builds need the full TensorRT package"
        )
    return tensorrt


def import_pycuda_driver():
    """``pycuda.driver``, initialised (no context is created here: see the backend)."""
    try:
        import pycuda.driver as cuda  # deferred: optional, present on GPU machines only
    except ImportError as exc:
        raise TensorRTUnavailable(
            "pycuda not found: 'pip install pycuda' (needs the CUDA toolkit headers; on a Jetson "
            "install it against JetPack's CUDA)"
        ) from exc
    try:
        cuda.init()
    except cuda.Error as exc:
        raise TensorRTUnavailable(
            f"CUDA driver initialisation failed ({exc}); is there an NVIDIA GPU and driver?"
        ) from exc
    if cuda.Device.count() == 0:
        raise TensorRTUnavailable("pycuda found no CUDA device")
    return cuda


def trt_logger(trt):
    """The process's one ``trt.Logger`` (WARNING), made on first use: the builder and the runtime
    share it. TensorRT keeps a single logger per process and warns when a later ``Runtime`` or
    ``Builder`` is given another one (NVIDIA/TensorRT#1475)."""
    global _logger
    with _logger_lock:
        if _logger is None or _logger[0] is not trt:  # another module only in tests (stand-ins)
            _logger = (trt, trt.Logger(trt.Logger.WARNING))
        return _logger[1]
