"""Frame and prediction records that flow between runtime stages.

A source yields :class:`Frame` objects; a backend turns a grayscale ROI into a
:class:`Prediction`; the overlay and sinks consume both.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

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
    # Set by the live schedule: the frame this prediction was computed on and its ROI, so an
    # observer (OpenIGTLink) can send it with that frame's timestamp even when it is drawn later.
    frame: "Frame | None" = None
    roi: Any = None


class Source:
    """A stream of frames. Iterate it; ``close()`` releases the device/file.

    ``live`` sources (capture cards, streams, OpenIGTLink) are read by a capture thread
    that keeps only the newest frame; non-live sources (files, folders, DICOM cine) are
    replayed frame by frame with none dropped. Iteration ends at end of stream; read
    errors raise :class:`edge_runtime.errors.InputError` naming the source and frame.
    """

    live: bool = False
    name: str = "source"

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources; safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Observer:
    """Gets every rendered frame from the pipeline's render stage (HTTP viewer,
    sd_notify watchdog, OpenIGTLink sink, ...). Must not block: copy what you need
    and hand it to your own thread."""

    def on_frame(self, frame: Frame, prediction: "Prediction | None", rendered: np.ndarray,
                 stats: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Called once when the pipeline stops."""
