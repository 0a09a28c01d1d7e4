"""The interface every inference backend implements (ONNX Runtime, TensorRT, torch).

Input: a grayscale uint8 ROI (H, W) at any size. Output: a
:class:`edge_runtime.frames.Prediction` with the class-id mask and cancer
probability at the ROI's size (the probability may stay at the model's size:
:meth:`edge_runtime.frames.Prediction.at_roi_size`).
A backend whose model folds preprocessing into the graph (manifest.preprocessing_in_graph) is fed
uint8 directly; otherwise it calls :func:`edge_runtime.preprocess.preprocess_for`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.frames import Prediction
from edge_runtime.manifest import Manifest


class Backend:
    name: str = "base"

    def __init__(self, model_path: str | Path, manifest: Manifest, **options: Any):
        self.model_path = Path(model_path)
        self.manifest = manifest
        self.options = options

    def infer(self, gray_roi: np.ndarray) -> Prediction:
        """gray uint8 (H, W) -> Prediction at (H, W). Raises on failure; never returns None."""
        raise NotImplementedError

    def prepare(self) -> None:
        """One-off work before the first frame that must run on the inference thread (TensorRT:
        CUDA context, engine load or build). The runtime calls it there and shows AI LOADING."""

    def warmup(self, height: int, width: int, runs: int = 2) -> None:
        """Run dummy frames so the first real frame does not pay for lazy init."""
        blank = np.zeros((height, width), np.uint8)
        for _ in range(runs):
            self.infer(blank)

    def describe(self) -> dict[str, Any]:
        """What the HUD, logs and /metrics show: backend name, device, precision."""
        return {"backend": self.name}

    def close(self) -> None:
        """Free device memory/contexts; safe to call twice."""
