"""ONNX Runtime backend: CPU, or the CUDA execution provider where present.

Input: gray uint8 ROI (H, W). Output: Prediction (mask uint8, prob float32) at (H, W).
Two model flavours, told apart by ``manifest.preprocessing_in_graph``:
- folded (the export contract): input ``frame`` uint8 [1,1,H,W], outputs ``prob``/``mask``;
  a model with fixed H/W is fed the ROI resized to its size; its mask is resized back (the
  probability when read: :meth:`edge_runtime.frames.Prediction.at_roi_size`);
- plain: input float32 from :func:`edge_runtime.preprocess.preprocess_for`, output logits
  [1,C,h,w]; calibration (temperature, softmax or the manifest's curve), threshold and resize
  happen here.
When the session is made, the graph's model contract (:mod:`edge_runtime.model_contract`) is
compared with the manifest: a manifest that does not belong to the graph is refused.

The session is made from the model file's bytes, checked against the manifest's sha256 first
(:func:`edge_runtime.manifest.vouched_bytes`), so what
runs is what the manifest vouches for, even if the file is replaced after the manifest was loaded.
A model keeping weights outside the file (ONNX external data, ``model.onnx.data``) is refused: the
sha256 does not cover them, and ONNX Runtime would read them from whatever file of that name it
found. Loaded from bytes, it looks for them in EXTERNAL_DATA_FOLDER_KEY's folder, which is set to one
that cannot hold a file; an ONNX Runtime older than 1.19, which ignores that key, loads a copy of the
checked bytes from a private folder that holds nothing else (:func:`checked_session`).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time

import cv2
import numpy as np

from edge_runtime.backends.base import Backend
from edge_runtime.calibration_curve import cancer_probability
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.frames import Prediction
from edge_runtime.graph_shapes import SPATIAL_DIMS, check_input_shapes
from edge_runtime.manifest import manifest_path, vouched_bytes
from edge_runtime.model_contract import check_contract, check_io
from edge_runtime.preprocess import preprocess_for
from edge_runtime.units import MS_PER_S

log = logging.getLogger("sonomap.backend.onnxruntime")
CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"
THREADS_ENV = "SONOMAP_ORT_THREADS"  # intra-op threads when inference.threads is not set
DEFAULT_THREADS = 0  # ONNX Runtime's own choice: one per core
FP32, FP16 = "fp32", "fp16"
PRECISIONS = (FP32, FP16)  # what 'sonomap export onnx' records in extra.precision (none recorded: fp32)
# Where ONNX Runtime (1.19+) looks for a model's external data when the model is given as bytes (else:
# the working folder). os.devnull is no folder, so no external data file is ever found under it.
EXTERNAL_DATA_FOLDER_KEY = "session.model_external_initializers_file_folder_path"
NO_FOLDER = os.devnull
EXTERNAL_DATA_ERROR = "external data"  # in ONNX Runtime's message for an initializer it cannot find
# ONNX Runtime before 1.19 ignores EXTERNAL_DATA_FOLDER_KEY and looks in the working folder instead
FOLDER_KEY_SINCE = (1, 19)
# a failed run raises, and the fail-safe logs its message once per cause; at ONNX Runtime's default
# level the library also prints its own error line to stderr for every failed frame
RUN_LOG_FATAL_ONLY = 4


def env_threads() -> int:
    """Intra-op threads from :data:`THREADS_ENV`: unset or empty gives :data:`DEFAULT_THREADS`;
    anything but a positive integer is a ConfigError naming the variable (a typo must not silently
    leave ONNX Runtime on every core, competing with decode and encode)."""
    text = os.environ.get(THREADS_ENV, "").strip()
    if not text:
        return DEFAULT_THREADS
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ConfigError(
            f"environment variable {THREADS_ENV} must be a positive integer (ONNX Runtime's "
            f"intra-op threads), got {text!r}; unset it for one per core"
        )
    return int(text)


def checked_session(ort, model: bytes, options, providers: list[str], version: str | None = None):
    """An ONNX Runtime session of the checked bytes ``model``, which never reads external data: from
    the bytes where ``version`` (ONNX Runtime's, by default the one imported) honours
    EXTERNAL_DATA_FOLDER_KEY; else from a copy in a new private folder that holds nothing else, since
    an older one, given bytes, would read ``model.onnx.data`` from whatever working folder it ran in."""
    numbers = re.match(r"(\d+)\.(\d+)", version or ort.__version__)
    if numbers is None or tuple(map(int, numbers.groups())) >= FOLDER_KEY_SINCE:
        return ort.InferenceSession(model, options, providers=providers)
    with tempfile.TemporaryDirectory(prefix="sonomap-model-") as folder:  # mode 0700, removed after
        path = os.path.join(folder, "model.onnx")
        with open(path, "wb") as fh:
            fh.write(model)
        return ort.InferenceSession(path, options, providers=providers)


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(
        self,
        model_path,
        manifest,
        device: str = "auto",
        threads: int | None = None,
        spin: bool = False,
        **options,
    ):
        super().__init__(model_path, manifest, **options)
        import onnxruntime as ort  # deferred: about 0.1 s, paid when this backend is built, not by `--help`

        if not self.model_path.is_file():
            raise InputError(f"{self.model_path}: model file not found")
        self.precision = self._recorded_precision()
        available = ort.get_available_providers()
        if device == "cuda" and CUDA_EP not in available:
            raise ConfigError(
                f"inference.device: cuda requested but onnxruntime has no {CUDA_EP} (available: {available})"
            )
        use_cuda = device in ("cuda", "auto") and CUDA_EP in available
        providers = [CUDA_EP, CPU_EP] if use_cuda else [CPU_EP]
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads or env_threads())
        self.threads = so.intra_op_num_threads  # 0: ONNX Runtime's default (one per core)
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spin:
            # ORT's worker threads busy-wait between runs by default; on a small CPU that steals
            # the cycles decode, overlay and encode need while they overlap with inference.
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        so.add_session_config_entry(EXTERNAL_DATA_FOLDER_KEY, NO_FOLDER)
        model = vouched_bytes(self.model_path, self.manifest)
        try:
            self.session = checked_session(ort, model, so, providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            if EXTERNAL_DATA_ERROR in str(exc).lower():
                raise InputError(
                    f"{self.model_path}: keeps weights outside the file (ONNX external data), which its "
                    "manifest's sha256 does not cover: re-export it as one file with 'sonomap export onnx'"
                ) from exc
            raise InputError(f"{self.model_path}: onnxruntime cannot load it ({exc})") from exc
        self.providers = self.session.get_providers()
        self.device = "cuda" if CUDA_EP in self.providers else "cpu"
        self.input = self.session.get_inputs()[0]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._check_io()
        self.run_options = ort.RunOptions()
        self.run_options.log_severity_level = RUN_LOG_FATAL_ONLY
        # the manifest must describe this graph: its tensors, and the class ids, threshold and input
        # size baked into it
        listing = {
            "inputs": {t.name: t.type for t in self.session.get_inputs()},
            "outputs": {t.name: t.type for t in self.session.get_outputs()},
        }
        check_io(self.manifest, listing, self.model_path)
        shapes = {t.name: list(t.shape) for t in self.session.get_inputs()}
        # a 3-channel graph fails here, not on the first frame; a fixed height and width are resized to
        check_input_shapes(self.manifest, shapes, self.model_path, resized=SPATIAL_DIMS)
        check_contract(self.session.get_modelmeta().custom_metadata_map, self.manifest, self.model_path)

    def _recorded_precision(self) -> str:
        """The precision the model was exported at (its manifest's ``extra.precision``): an FP16 model
        computes in FP16 here too, and the HUD, logs and /metrics must show what runs."""
        precision = self.manifest.extra.get("precision", FP32)
        if precision not in PRECISIONS:
            raise ConfigError(
                f"{manifest_path(self.model_path)}: 'extra.precision' must be one of {PRECISIONS}, "
                f"got {precision!r}"
            )
        return precision

    def _check_io(self) -> None:
        folded = self.manifest.preprocessing_in_graph
        in_type = self.input.type
        if folded and in_type != "tensor(uint8)":
            raise ConfigError(
                f"{self.model_path}: manifest says preprocessing_in_graph but input "
                f"{self.input.name!r} is {in_type}, not uint8"
            )
        if folded and not {"prob", "mask"} <= set(self.output_names):
            raise ConfigError(
                f"{self.model_path}: folded model must output 'prob' and 'mask', has {self.output_names}"
            )
        if not folded and in_type != "tensor(float)":
            raise ConfigError(
                f"{self.model_path}: manifest says preprocessing_in_graph: false but input is {in_type}"
            )
        shape = self.input.shape
        self.fixed_hw = tuple(shape[2:4]) if all(isinstance(d, int) for d in shape[2:4]) else None
        if (
            not folded
            and self.fixed_hw
            and self.fixed_hw != (self.manifest.input_height, self.manifest.input_width)
        ):
            raise ConfigError(
                f"{self.model_path}: input is {self.fixed_hw} but manifest input is "
                f"{self.manifest.input_height}x{self.manifest.input_width}"
            )

    def infer(self, gray_roi: np.ndarray) -> Prediction:
        start = time.perf_counter()
        height, width = gray_roi.shape[:2]
        if self.manifest.preprocessing_in_graph:
            x = gray_roi
            if self.fixed_hw and self.fixed_hw != (height, width):
                x = cv2.resize(gray_roi, (self.fixed_hw[1], self.fixed_hw[0]), interpolation=cv2.INTER_LINEAR)
            prob, mask = self.session.run(
                ["prob", "mask"], {self.input.name: x[None, None]}, self.run_options
            )
            return Prediction.at_roi_size(
                mask[0, 0], prob[0, 0], height, width, (time.perf_counter() - start) * MS_PER_S
            )
        else:
            x = preprocess_for(gray_roi, self.manifest)[None]
            logits = self.session.run([self.output_names[0]], {self.input.name: x}, self.run_options)[0][0]
            prob = cv2.resize(
                cancer_probability(logits, self.manifest),  # calibrated, as a folded graph does
                (width, height),
                interpolation=cv2.INTER_LINEAR,
            )
            mask = (prob >= self.manifest.threshold).astype(np.uint8) * np.uint8(self.manifest.cancer_index)
        return Prediction(
            np.ascontiguousarray(mask, np.uint8),
            np.ascontiguousarray(prob, np.float32),
            (time.perf_counter() - start) * MS_PER_S,
        )

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "device": self.device,
            "providers": self.providers,
            "precision": self.precision,
            "model": self.manifest.name,
            "threads": self.threads,
        }

    def close(self) -> None:
        self.session = None
