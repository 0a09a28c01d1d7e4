"""torch backend: a TorchScript model (``sonomap export torchscript``) on CPU or CUDA.

torch is imported here only, when this backend is chosen. The TorchScript file carries the
same folded pre/post as the ONNX contract (uint8 [1,1,H,W] in; ``prob`` float32 and
``mask`` uint8 out, as a tuple or dict); with ``preprocessing_in_graph: false`` it takes the
output of :func:`edge_runtime.preprocess.preprocess_for` and returns logits.
A folded model bakes in the classes, threshold, temperature, curve, input size and normalisation,
so it must carry the model contract (:mod:`edge_runtime.model_contract`, saved by the export in the
file's ``_extra_files``), checked against the manifest as for ONNX; one without it is refused.
On CUDA: FP16 through autocast (``fp16``), and optionally CUDA graphs (``cuda_graphs``):
the forward pass is captured once per input shape and replayed, removing launch overhead.
"""

from __future__ import annotations

import logging
import os
import time

import cv2
import numpy as np

from edge_runtime.backends.base import Backend
from edge_runtime.calibration_curve import cancer_probability
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.frames import Prediction
from edge_runtime.manifest import manifest_path
from edge_runtime.model_contract import CONTRACT_KEY, check_contract
from edge_runtime.preprocess import preprocess_for
from edge_runtime.units import MS_PER_S

log = logging.getLogger("sonomap.backend.torch")
GRAPH_WARMUP_RUNS = 3
OMP_WAIT_ENV = "OMP_WAIT_POLICY"


def input_hw(input_size: int | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """``inference.input_size`` as (height, width): N is an N x N square (as the training config reads
    it), [h, w] is kept, None means the ROI goes in at its own size."""
    if not input_size:
        return None
    if isinstance(input_size, int):
        return input_size, input_size
    height, width = input_size
    return int(height), int(width)


class TorchBackend(Backend):
    name = "torch"

    def __init__(
        self,
        model_path,
        manifest,
        device: str = "auto",
        fp16: bool = True,
        cuda_graphs: bool = False,
        input_size=None,
        threads: int | None = None,
        **options,
    ):
        super().__init__(model_path, manifest, **options)
        # GNU OpenMP's threads spin while they wait. On the CPU, beside the decode, overlay and encode
        # threads, that takes their cores: replay CPU 67.8 -> 52.9 ms a frame on 2 cores with
        # PASSIVE. It only works before torch loads, which in the runtime is here (a user's value wins).
        os.environ.setdefault(OMP_WAIT_ENV, "PASSIVE")
        try:
            import torch  # deferred: the runtime imports torch only when this backend is chosen
        except ImportError as exc:  # a cart install has no torch: the ONNX model is its model
            raise ConfigError(
                f"{self.model_path}: the torch backend needs torch, which is not installed here ({exc}); "
                "install it (pip install sonomap[train]) or serve the ONNX model (inference.backend "
                "onnxruntime or tensorrt)"
            ) from exc

        self.torch = torch
        if not self.model_path.is_file():
            raise InputError(f"{self.model_path}: model file not found")
        if device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("inference.device: cuda requested but torch sees no CUDA device")
        self.device = torch.device(
            "cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
        )
        if threads:
            torch.set_num_threads(int(threads))
        extra = {CONTRACT_KEY: ""}  # filled in by torch.jit.load; b"" when the file has no such entry
        try:
            model = torch.jit.load(str(self.model_path), map_location=self.device, _extra_files=extra)
        except Exception as exc:  # torch raises RuntimeError/ValueError variants for foreign files
            raise InputError(f"{self.model_path}: not a loadable TorchScript model ({exc})") from exc
        self._check_contract(extra[CONTRACT_KEY])
        self.model = model.eval()
        self.fp16 = bool(fp16) and self.device.type == "cuda"
        self.cuda_graphs = bool(cuda_graphs) and self.device.type == "cuda"
        self.input_size = input_hw(input_size)
        self._graphs: dict = {}

    def _check_contract(self, raw: bytes | str) -> None:
        """The contract saved in the TorchScript file against the manifest (ConfigError naming the
        manifest and the key). A folded model without one is refused: what its graph bakes in could
        not be compared with what the manifest says, and the overlay trusts the manifest's classes.
        An unfolded model (logits out) bakes none of the manifest's facts in: noted, not refused."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        if text:
            check_contract({CONTRACT_KEY: text}, self.manifest, self.model_path)
        elif self.manifest.preprocessing_in_graph:
            raise ConfigError(
                f"{self.model_path}: this TorchScript model carries no model contract, so its manifest "
                f"{manifest_path(self.model_path).name} cannot be checked against it; re-export it with "
                "'sonomap export torchscript'"
            )
        else:
            log.info(
                "%s: unfolded TorchScript model without a model contract; nothing to check", self.model_path
            )

    # --- model call -----------------------------------------------------------------
    def _forward(self, x):
        torch = self.torch
        # autocast's cast-weight cache must be off while a CUDA graph is captured (PyTorch's CUDA
        # graph notes): cached casts would be freed after capture yet replayed by the graph.
        with (
            torch.inference_mode(),
            torch.autocast(
                self.device.type, dtype=torch.float16, enabled=self.fp16, cache_enabled=not self.cuda_graphs
            ),
        ):
            out = self.model(x)
        if isinstance(out, dict):
            return out.get("prob"), out.get("mask"), out.get("out")
        if isinstance(out, (tuple, list)):
            return (out[0], out[1], None) if len(out) >= 2 else (None, None, out[0])
        return None, None, out

    def _graph_forward(self, x):
        """Replay a captured CUDA graph for this shape (captured on first use)."""
        torch = self.torch
        key = tuple(x.shape)
        entry = self._graphs.get(key)
        if entry is None:
            static_in = x.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(GRAPH_WARMUP_RUNS):
                    self._forward(static_in)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._forward(static_in)
            entry = self._graphs[key] = (graph, static_in, static_out)
            log.info("captured a CUDA graph for input %s", key)
        graph, static_in, static_out = entry
        static_in.copy_(x)
        graph.replay()
        return static_out

    def infer(self, gray_roi: np.ndarray) -> Prediction:
        torch = self.torch
        start = time.perf_counter()
        height, width = gray_roi.shape[:2]
        if self.manifest.preprocessing_in_graph:
            x_np = gray_roi
            if self.input_size and self.input_size != (height, width):
                x_np = cv2.resize(
                    gray_roi, (self.input_size[1], self.input_size[0]), interpolation=cv2.INTER_LINEAR
                )
            x = torch.from_numpy(np.ascontiguousarray(x_np))[None, None].to(self.device, non_blocking=True)
        else:
            x = torch.from_numpy(preprocess_for(gray_roi, self.manifest)[None]).to(
                self.device, non_blocking=True
            )
        prob, mask, logits = self._graph_forward(x) if self.cuda_graphs else self._forward(x)
        if prob is None:
            if logits is None:
                raise InputError(f"{self.model_path}: model returned neither prob/mask nor logits")
            # Calibrated (temperature, softmax or the manifest's curve), as a folded graph does.
            prob_np = cancer_probability(logits[0].float().cpu().numpy(), self.manifest)
            prob_np = cv2.resize(prob_np, (width, height), interpolation=cv2.INTER_LINEAR)
            mask_np = (prob_np >= self.manifest.threshold).astype(np.uint8) * np.uint8(
                self.manifest.cancer_index
            )
        else:
            return Prediction.at_roi_size(
                mask[0, 0].to(torch.uint8).cpu().numpy(),
                prob[0, 0].float().cpu().numpy(),
                height,
                width,
                (time.perf_counter() - start) * MS_PER_S,
            )
        return Prediction(
            np.ascontiguousarray(mask_np, np.uint8),
            np.ascontiguousarray(prob_np, np.float32),
            (time.perf_counter() - start) * MS_PER_S,
        )

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "device": str(self.device),
            "model": self.manifest.name,
            "precision": "fp16" if self.fp16 else "fp32",
            "cuda_graphs": self.cuda_graphs,
        }

    def close(self) -> None:
        self._graphs.clear()
        self.model = None
