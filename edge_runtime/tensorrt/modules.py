"""Guarded imports: TensorRT and pycuda exist only on GPU machines (JetPack, cart PC).

Each function returns the module or raises :class:`TensorRTUnavailable` (a SonomapError,
so the CLI prints one line) saying what to install.

TensorRT's own messages: the process's one logger (:func:`trt_logger`) is a ``trt.ILogger``
subclass, NVIDIA's documented way to receive them (subclass, call ``ILogger.__init__``, implement
``log(severity, msg)``). It passes warnings and errors to Python logging (``sonomap.tensorrt``,
redacted like every line) and keeps the last errors, because the calls that fail by returning
``None`` (``build_serialized_network``, ``deserialize_cuda_engine``) or by a bare ``TypeError``
(a ``Runtime`` or ``Builder`` that cannot start: a CUDA 13 build of TensorRT on an older driver)
say why only there: :func:`logged_errors` puts that reason into the one-line error.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from edge_runtime.errors import SonomapError

_logger_lock = threading.Lock()
_logger: tuple[object, object] | None = None  # (tensorrt module, its Logger)
UNUSABLE: list = []  # TensorRT objects that failed to start: destroying them crashes (construct)
ERRORS_KEPT = 5  # TensorRT's last error lines kept for the next exception; one failure logs a few
trt_log = logging.getLogger("sonomap.tensorrt")
DRIVER_ADVICE = (
    "TensorRT's CUDA is newer than this machine's NVIDIA driver, or no GPU is usable: a CUDA 13 build "
    "(what 'pip install tensorrt' installs) needs a CUDA 13 driver (R580 or later); update the driver, "
    "or install the CUDA 12 build (pip install tensorrt-cu12)"
)


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
            recording = hasattr(trt, "ILogger")  # every TensorRT; the tests' stand-ins have none
            _logger = (trt, _recording_logger(trt) if recording else trt.Logger(trt.Logger.WARNING))
        return _logger[1]


def _recording_logger(trt):
    """A ``trt.ILogger`` passing TensorRT's warnings and errors to Python logging, keeping the last
    :data:`ERRORS_KEPT` errors (module docstring). TensorRT may call it from its own threads."""

    class RecordingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: deque[str] = deque(maxlen=ERRORS_KEPT)
            self.lock = threading.Lock()

        def log(self, severity, msg) -> None:
            if int(severity) <= int(trt.ILogger.Severity.ERROR):  # INTERNAL_ERROR is 0, ERROR 1
                with self.lock:
                    self.errors.append(str(msg).strip())
                trt_log.error("%s", msg)
            elif int(severity) == int(trt.ILogger.Severity.WARNING):
                trt_log.warning("%s", msg)

        def take_errors(self) -> str:
            with self.lock:
                text = "; ".join(self.errors)
                self.errors.clear()
            return text

    return RecordingLogger()


def logged_errors(trt=None) -> str:
    """TensorRT's error messages since the last call ('' when none), and forgets them: why a call
    that returned None or raised a bare TypeError failed. ``trt``: the module, when its logger may
    not be made yet; without it, the logger made already (none yet: '')."""
    if trt is not None:
        logger = trt_logger(trt)
    else:
        with _logger_lock:
            logger = _logger[1] if _logger is not None else None
    take = getattr(logger, "take_errors", None)
    return take() if take is not None else ""


def construct(trt, kind: str):
    """``trt.Builder`` or ``trt.Runtime`` (``kind``) with the shared logger. TensorRTUnavailable
    with TensorRT's own reason when it cannot start: the binding raises ``TypeError`` (its factory
    returned nullptr) or hands back an object after logging the failure (tensorrt-lean does), as a
    CUDA 13 build on an older driver does."""
    logged_errors(trt)  # forget errors of earlier calls: only this one's explain it
    try:
        made = getattr(trt, kind)(trt_logger(trt))
    except TypeError as exc:
        why = logged_errors(trt) or str(exc)
        raise TensorRTUnavailable(
            f"TensorRT {trt.__version__} {kind} cannot start ({why}): {DRIVER_ADVICE}"
        ) from exc
    why = logged_errors(trt)
    if made is None or why:
        if made is not None:
            # tensorrt-lean 11.4 hands back an object around the failed start whose destructor
            # crashes the process (seen here: no GPU); kept, never destroyed, and the CLI ends the
            # process without finalising it (edge_runtime.cli)
            UNUSABLE.append(made)
        raise TensorRTUnavailable(
            f"TensorRT {trt.__version__} {kind} cannot start ({why or 'no object made'}): {DRIVER_ADVICE}"
        )
    return made
