"""Test helper: compare a rendered frame with its golden PNG in tests/golden (what the user sees),
and render the golden BUSI images through the pipeline.

Regenerate after an intended change with ``SONOMAP_REGEN_GOLDEN=1``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
from pinned_versions import pins
from runtime_model import dark_onnx

from edge_runtime.config import build_config
from edge_runtime.frames import Observer
from edge_runtime.pipeline.graph import Pipeline

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_TOLERANCE = 0.005  # summed absolute difference within 0.5 % of the maximum
GOLDEN_IDS = ("malignant_002", "malignant_018", "benign_041")  # vendored BUSI images: two lesions, one benign


class Collect(Observer):
    """Keeps a copy of every rendered frame, and whether the pipeline closed it."""

    def __init__(self):
        self.frames, self.closed = [], False

    def on_frame(self, frame, prediction, rendered, stats):
        self.frames.append(rendered.copy())

    def close(self):
        self.closed = True


def render_golden_ids(busi_sample: Path, tmp_path: Path, overlay: dict) -> Collect:
    """The GOLDEN_IDS images replayed as a folder through the dark-region model, full-frame ROI."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, image_id in enumerate(GOLDEN_IDS):
        shutil.copy(busi_sample / "images" / f"{image_id}.png", folder / f"{i:02d}.png")
    config = build_config(
        {
            "source": {"input": str(folder)},
            "roi": {"rect": "full"},
            "inference": {"model": str(dark_onnx())},
            "overlay": overlay,
        }
    )
    collect = Collect()
    Pipeline(config, observers=[collect]).run()
    return collect


def assert_matches_golden(name: str, rendered: np.ndarray) -> None:
    """``rendered`` (BGR) equals ``tests/golden/NAME.png`` within :data:`GOLDEN_TOLERANCE`."""
    golden = GOLDEN / f"{name}.png"
    if os.environ.get("SONOMAP_REGEN_GOLDEN"):
        cv2.imwrite(str(golden), rendered)
    expected = cv2.imread(str(golden))
    assert expected is not None, f"missing golden {golden}"
    assert expected.shape == rendered.shape
    diff = np.abs(expected.astype(np.int32) - rendered).sum() / (255.0 * rendered.size)
    assert diff <= GOLDEN_TOLERANCE, (
        f"{name}: differs from golden by {diff:.4%} (drawn by OpenCV {cv2.__version__}; "
        f"constraints.txt pins {pins().get('opencv-python', 'none')})"
    )
