"""The I/O of one TensorRT execution context: pinned host and device buffers per tensor, bound with
``set_tensor_address``, and one run through them with ``execute_async_v3`` (TensorRT 10 name-based
API).

Input: a gray uint8 array at a size inside the engine's optimisation profile. Output: the
``prob`` (float32) and ``mask`` arrays at that size, copied out of the pinned buffers (the next
run overwrites them). Buffers are reallocated only when the input size changes.
``set_input_shape``, ``set_tensor_address`` and ``execute_async_v3`` return False on failure
rather than raising (NvInferRuntime.h, TensorRT 10.3: "True on success, false if ..."); each is
checked. Used on the backend's owner thread only (pycuda contexts belong to one thread).
Written against NVIDIA's documented API; not run on this project's build machines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_runtime.errors import ConfigError
from edge_runtime.tensorrt.engine_io import INPUT, OUTPUTS


class BoundBuffers:
    """Host and device buffers of ``context``'s tensors, bound for one input size."""

    def __init__(self, trt, cuda, engine, context, model_path: Path):
        self._trt, self._cuda, self._engine, self._context = trt, cuda, engine, context
        self.model_path = model_path
        self.hw: tuple[int, int] | None = None  # the input size bound now (None: nothing bound)
        self._host: dict[str, np.ndarray] = {}
        self._device: dict[str, object] = {}

    def bind(self, height: int, width: int, profile) -> None:
        """(Re)allocate pinned host + device buffers for this input size and bind them; ``profile``
        (min, opt, max shapes) names the engine's range in the error when TensorRT refuses the size."""
        cuda, trt = self._cuda, self._trt
        self.hw = None  # until every call below succeeded
        shape = (1, 1, height, width)
        if not self._context.set_input_shape(INPUT, shape):
            raise RuntimeError(
                f"{self.model_path}: TensorRT refused input shape {shape} for '{INPUT}' "
                f"(engine profile min/opt/max {profile})"
            )
        self.clear()
        for name in (INPUT, *OUTPUTS):
            tensor_shape = tuple(self._context.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
            self._host[name] = cuda.pagelocked_empty(tensor_shape, dtype)
            self._device[name] = cuda.mem_alloc(self._host[name].nbytes)
            if not self._context.set_tensor_address(name, int(self._device[name])):
                raise RuntimeError(
                    f"{self.model_path}: TensorRT refused the device buffer of tensor '{name}' {tensor_shape}"
                )
        if self._host[INPUT].dtype != np.uint8:
            raise ConfigError(
                f"{self.model_path}: engine input '{INPUT}' is {self._host[INPUT].dtype}, expected uint8"
            )
        self.hw = (height, width)

    def run(self, x: np.ndarray, stream) -> tuple[np.ndarray, np.ndarray]:
        """``x`` (the bound size) -> (prob float32, mask), copied out of the pinned buffers."""
        cuda = self._cuda
        np.copyto(self._host[INPUT][0, 0], x)
        cuda.memcpy_htod_async(self._device[INPUT], self._host[INPUT], stream)
        if not self._context.execute_async_v3(stream.handle):
            raise RuntimeError(f"{self.model_path}: TensorRT execute_async_v3 failed")
        for name in OUTPUTS:
            cuda.memcpy_dtoh_async(self._host[name], self._device[name], stream)
        stream.synchronize()
        return self._host["prob"][0, 0].astype(np.float32), self._host["mask"][0, 0].copy()

    def clear(self) -> None:
        """Drop the buffers (before the CUDA context goes: freeing them after it logs CUDA errors)."""
        self._host.clear()
        self._device.clear()
        self.hw = None
