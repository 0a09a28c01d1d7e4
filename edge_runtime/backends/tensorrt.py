"""TensorRT backend: a folded engine run with pycuda, uint8 in, prob/mask out.

Input: gray uint8 ROI (H, W). Output: Prediction (mask uint8, prob float32) at (H, W).
Model: a ``.engine``/``.plan`` file (with its manifest) or a folded ``.onnx``; which engine runs,
its precision, and loading or building it (a failed build remembered) are
:class:`edge_runtime.tensorrt.engine_loader.EngineLoader`'s.

CUDA state is created lazily by the first :meth:`infer` call, on the backend's own thread
(:class:`edge_runtime.tensorrt.owner_thread.OwnerThread`): pycuda contexts belong to the thread
that made them, so creation, every inference and :meth:`close` run there, whichever thread
calls them (a context detached from another thread would leak). The constructor checks what
the build will need (folded model, FP16 twin for the strongly typed path) so a missing file
fails at start-up, not at the first frame; so do ``device: cpu`` and ``input_size``, which this
backend cannot honour. One stream; the buffers and the run through them are
:class:`edge_runtime.tensorrt.buffers.BoundBuffers`, rebound only when the ROI size changes. An
engine without a usable optimisation profile runs at its fixed input shape.
Written against NVIDIA's documented API; not run on this project's build machines
(no GPU there) - ``sonomap selfcheck`` proves it on the target.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

from edge_runtime.backends.base import Backend
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.frames import Prediction
from edge_runtime.tensorrt import modules
from edge_runtime.tensorrt.buffers import BoundBuffers
from edge_runtime.tensorrt.engine_io import check_engine_io, input_range
from edge_runtime.tensorrt.engine_loader import EngineLoader
from edge_runtime.tensorrt.engines import DEFAULT_WORKSPACE_MB
from edge_runtime.tensorrt.owner_thread import OwnerThread
from edge_runtime.units import MS_PER_S

log = logging.getLogger("sonomap.backend.tensorrt")
OWNER_THREAD_NAME = "sonomap-tensorrt"
CLOSE_TIMEOUT_S = 10.0  # teardown is milliseconds; longer means an inference call is stuck in the driver


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(
        self,
        model_path,
        manifest,
        cache_dir: str | Path | None = None,
        fp16: bool = True,
        workspace_mb: int = DEFAULT_WORKSPACE_MB,
        on_long_build=None,
        device_index: int = 0,
        profile: dict | None = None,
        device: str = "auto",
        input_size=None,
        **options,
    ):
        super().__init__(model_path, manifest, device=device, **options)
        if not self.model_path.is_file():
            raise InputError(f"{self.model_path}: model file not found")
        if not manifest.preprocessing_in_graph:
            raise ConfigError(
                f"{self.model_path}: the TensorRT backend needs a folded model "
                "(manifest preprocessing_in_graph: true); re-export with 'sonomap export onnx'"
            )
        if device == "cpu":
            raise ConfigError(
                "inference.device: cpu, but backend tensorrt runs on the GPU; use backend onnxruntime "
                "(or auto) for the CPU, or device auto/cuda"
            )
        if input_size is not None:  # refused rather than ignored: the operator expects it applied
            raise ConfigError(
                f"inference.input_size: {input_size} is not applied by the TensorRT backend (it feeds "
                "the ROI at its size within the engine's optimisation profile); remove it"
            )
        self._loader = EngineLoader(
            self.model_path, manifest, cache_dir, fp16, workspace_mb, profile, on_long_build, device_index
        )
        self.precision = self._loader.precision
        self.device_index = device_index
        self._owner: OwnerThread | None = None
        self._cuda = self._ctx = self._engine = self._context = self._stream = None
        self._buffers: BoundBuffers | None = None

    @property
    def engine_record(self):
        """The engine cache's record of the engine built or loaded (None for an engine file, or before
        the engine is loaded)."""
        return self._loader.record

    # --- CUDA/TensorRT state: made, used and freed on the owner thread only ---------------
    @property
    def prepare_label(self) -> str:
        """What AI LOADING says while :meth:`prepare` runs."""
        return "loading engine" if self._loader.is_engine_file() else "building engine"

    def prepare(self) -> None:
        """Create the CUDA context and load (or build and cache) the engine now, on the owner thread,
        rather than inside the first :meth:`infer` (the runtime shows AI LOADING meanwhile)."""
        if self._owner is None:
            self._owner = OwnerThread(OWNER_THREAD_NAME)
        self._owner.call(self._start_once)

    def _start_once(self) -> None:
        if self._engine is None:
            self._start()

    def _start(self) -> None:
        trt = modules.import_tensorrt()
        build_id = self._loader.refuse_failed_build()
        cuda = modules.import_pycuda_driver()
        self._trt, self._cuda = trt, cuda
        self._ctx = cuda.Device(self.device_index).make_context()  # current on the owner thread from now on
        try:
            runtime = modules.construct(trt, "Runtime")  # the builder's logger; its reason if it fails
            self._engine = self._loader.load(trt, runtime, build_id)
            check_engine_io(trt, self._engine, self.model_path)
            # The binding hands back the C++ pointer (pyCore.cpp, 10.3 - 11.1): None when TensorRT could
            # not make the context, e.g. no device memory for its activations.
            self._context = self._engine.create_execution_context()
            if self._context is None:
                raise RuntimeError(
                    f"{self.model_path}: TensorRT could not create an execution context (out of GPU memory?)"
                )
            self._stream = cuda.Stream()
            self._profile = input_range(self._engine, self.model_path)
            self._buffers = BoundBuffers(trt, cuda, self._engine, self._context, self.model_path)
        except BaseException:
            self._teardown()
            raise

    def _fit(self, height: int, width: int) -> tuple[int, int]:
        """Clamp the ROI size into the engine's optimisation profile (resized in and back out)."""
        lo, _, hi = self._profile
        return (min(max(height, lo[2]), hi[2]), min(max(width, lo[3]), hi[3]))

    def infer(self, gray_roi: np.ndarray) -> Prediction:
        start = time.perf_counter()
        if gray_roi.dtype != np.uint8 or gray_roi.ndim != 2:
            raise InputError(
                f"TensorRT backend: ROI must be gray uint8 (H, W), got {gray_roi.dtype} {gray_roi.shape}"
            )
        if self._owner is None:
            self._owner = OwnerThread(OWNER_THREAD_NAME)
        prob, mask = self._owner.call(self._run, gray_roi)
        return Prediction.at_roi_size(mask, prob, *gray_roi.shape, (time.perf_counter() - start) * MS_PER_S)

    def _run(self, gray_roi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._engine is None:
            self._start()
        height, width = gray_roi.shape
        run_hw = self._fit(height, width)
        x = (
            gray_roi
            if run_hw == (height, width)
            else cv2.resize(gray_roi, run_hw[::-1], interpolation=cv2.INTER_AREA)
        )
        if self._buffers.hw != run_hw:
            self._buffers.bind(*run_hw, self._profile)
        return self._buffers.run(x, self._stream)

    def describe(self) -> dict:
        info = {
            "backend": self.name,
            "device": f"cuda:{self.device_index}",
            "precision": self.precision,
            "model": self.manifest.name,
        }
        if self.engine_record is not None:
            info["engine"] = str(self.engine_record.path)
        return info

    def close(self) -> None:
        """Free the engine, buffers and CUDA context on the owner thread, from whichever thread
        calls this. Waits at most :data:`CLOSE_TIMEOUT_S` (an inference stuck in the driver must
        not hang the caller); then the teardown still runs once that inference returns."""
        owner, self._owner = self._owner, None
        if owner is None:
            return
        try:
            owner.call(self._teardown, timeout=CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.error(
                "TensorRT backend: teardown did not finish within %.0f s (an inference call is stuck); "
                "it runs when that call returns",
                CLOSE_TIMEOUT_S,
            )
        finally:
            owner.stop(timeout=0)

    def _teardown(self) -> None:
        """TensorRT objects and buffers go before the context (teardown order matters: destroying
        them after the context logs CUDA errors); then the context, on the thread that made it."""
        if self._buffers is not None:
            self._buffers.clear()
        self._buffers = None
        self._context = self._engine = self._stream = None
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            ctx.pop()
            ctx.detach()
