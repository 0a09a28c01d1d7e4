"""Frame and prediction records that flow between runtime stages.

A source yields :class:`Frame` objects; a backend turns a grayscale ROI into a
:class:`Prediction`; the overlay and sinks consume both.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Frame:
    index: int                 # 0-based position in the stream
    image: np.ndarray          # BGR uint8 (H, W, 3): the full scanner screen
    timestamp: float           # time.monotonic() when captured/decoded
    pts: float | None = None   # presentation time in seconds, when the container has one
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. mm_per_pixel, igtl matrix, device


@dataclass
class Prediction:
    mask: np.ndarray           # uint8 (h, w) class ids at ROI size
    prob: np.ndarray           # float32 (h, w) cancer probability at ROI size
    latency_ms: float = 0.0    # backend time for this frame
