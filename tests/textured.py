"""Test helper: a synthetic frame that is an image to the runtime, not one plain level.

A fixed ROI that holds one plain grey level holds no image (``edge_runtime.likeness.plain``: under
30 levels from its 1st to its 99th percentile), so the AI is off there. Tests that need the AI to run
on a synthetic frame of a chosen brightness use this checkerboard instead of a flat fill: its mean is
the chosen level, exactly, and its levels span 2 x TEXTURE_LEVELS.
"""

from __future__ import annotations

import numpy as np

TEXTURE_LEVELS = 25  # each pixel this far above or below the level: a spread of 50, past the 30 of plain


def textured(shape: tuple[int, ...], level: int) -> np.ndarray:
    """A uint8 image of ``shape`` (H, W[, C]) whose pixels alternate level +- TEXTURE_LEVELS (clipped
    to 0..255) in a checkerboard; its mean is ``level`` when no pixel is clipped and H x W is even."""
    rows, cols = np.indices(shape[:2])
    sign = np.where((rows + cols) % 2 == 0, 1, -1)
    plane = np.clip(level + sign * TEXTURE_LEVELS, 0, 255).astype(np.uint8)
    return plane if len(shape) == 2 else np.repeat(plane[..., None], shape[2], axis=2)
