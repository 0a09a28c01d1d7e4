"""Test helper: compare a rendered frame with its golden PNG in tests/golden (what the user sees).

Regenerate after an intended change with ``SONOMAP_REGEN_GOLDEN=1``.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_TOLERANCE = 0.005  # summed absolute difference within 0.5 % of the maximum


def assert_matches_golden(name: str, rendered: np.ndarray) -> None:
    """``rendered`` (BGR) equals ``tests/golden/NAME.png`` within :data:`GOLDEN_TOLERANCE`."""
    golden = GOLDEN / f"{name}.png"
    if os.environ.get("SONOMAP_REGEN_GOLDEN"):
        cv2.imwrite(str(golden), rendered)
    expected = cv2.imread(str(golden))
    assert expected is not None, f"missing golden {golden}"
    assert expected.shape == rendered.shape
    diff = np.abs(expected.astype(np.int32) - rendered).sum() / (255.0 * rendered.size)
    assert diff <= GOLDEN_TOLERANCE, f"{name}: differs from golden by {diff:.4%}"
