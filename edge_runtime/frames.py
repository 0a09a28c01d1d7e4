"""Frame and prediction records that flow between runtime stages.

A source yields :class:`Frame` objects; a backend turns a grayscale ROI into a
:class:`Prediction`; the overlay and sinks consume both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edge_runtime.errors import InputError

# Smaller frames are refused: ROI detection, the overlay and the encoders need a few pixels each way.
# A file's frame below it is an error naming the frame; a live device's is skipped as corrupt input.
MIN_FRAME_W, MIN_FRAME_H = 16, 16


def check_min_size(width: int, height: int, origin: str, index: int) -> None:
    """InputError naming ``origin`` and frame ``index`` when the frame is below MIN_FRAME_W x MIN_FRAME_H."""
    if width < MIN_FRAME_W or height < MIN_FRAME_H:
        raise InputError(
            f"{origin}: frame {index} is {width}x{height}, smaller than the minimum {MIN_FRAME_W}x{MIN_FRAME_H}"
        )


# The device name of a frame whose meta carries none (a file, a capture card): what the OpenIGTLink
# sink derives its names from (``Prediction``, ``ProbMap``) and what a Slicer sequence records, so a
# session and the replay of its recording send under the same names.
DEFAULT_DEVICE = "Image"


@dataclass
class Frame:
    index: int  # 0-based position in the stream
    image: np.ndarray  # BGR uint8 (H, W, 3): the full scanner screen
    timestamp: float  # time.monotonic() when captured/decoded
    pts: float | None = None  # presentation time in seconds, when the container has one
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. mm_per_pixel, igtl matrix, device


class Prediction:
    """A backend's output for one ROI.

    ``mask``: uint8 (h, w) class ids at ROI size. ``prob``: float32 cancer probability at ROI size.
    A backend may hand over the probability at the model's output size instead (``prob`` of another
    shape): it is resized to the mask's size the first time ``prob`` is read. Only EMA smoothing and
    a few observers read it, so the common path (no smoothing) never pays for a full-size float
    image; :attr:`native_prob` is the array as the backend gave it (the fail-safe's NaN check
    looks there, since a linear resize keeps a NaN and adds none).
    ``frame``/``roi`` are set by the pipeline: the frame this prediction was computed on and its ROI,
    so an observer (OpenIGTLink) can send it with that frame's timestamp even when it is drawn later.
    """

    def __init__(
        self,
        mask: np.ndarray,
        prob: np.ndarray,
        latency_ms: float = 0.0,
        frame: Frame | None = None,
        roi: Any = None,
    ):
        self.mask = mask
        self.native_prob = prob
        self._prob = prob if prob.shape == mask.shape else None
        self.latency_ms = latency_ms  # backend time for this frame
        self.frame = frame
        self.roi = roi

    @classmethod
    def at_roi_size(
        cls, mask: np.ndarray, prob: np.ndarray, height: int, width: int, latency_ms: float
    ) -> Prediction:
        """A model's (mask, prob) at its output size -> Prediction for an (height, width) ROI.

        The mask is resized now (nearest: class ids stay class ids); the float probability keeps the
        model's size and is resized only if something reads :attr:`prob`."""
        mask = np.ascontiguousarray(mask, np.uint8)
        if mask.shape != (height, width):
            mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
        return cls(mask, np.ascontiguousarray(prob, np.float32), latency_ms)

    def zero_boxes(self, boxes) -> None:
        """Predict nothing inside ``boxes`` ((x0, y0, x1, y1) at mask size): mask and probability to 0
        (a backend's read-only output is copied first). The probability may be at another size: scaled."""
        self.mask = self.mask if self.mask.flags.writeable else self.mask.copy()
        prob = self.native_prob if self.native_prob.flags.writeable else self.native_prob.copy()
        sy, sx = prob.shape[0] / self.mask.shape[0], prob.shape[1] / self.mask.shape[1]
        for x0, y0, x1, y1 in boxes:
            self.mask[y0:y1, x0:x1] = 0
            prob[int(y0 * sy) : int(np.ceil(y1 * sy)), int(x0 * sx) : int(np.ceil(x1 * sx))] = 0
        self.native_prob = prob
        self._prob = prob if prob.shape == self.mask.shape else None

    @property
    def prob(self) -> np.ndarray:
        if self._prob is None:  # two threads may both resize here: same result, no harm
            height, width = self.mask.shape[:2]
            self._prob = cv2.resize(self.native_prob, (width, height), interpolation=cv2.INTER_LINEAR)
        return self._prob


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

    def on_frame(
        self, frame: Frame, prediction: Prediction | None, rendered: np.ndarray, stats: dict[str, Any]
    ) -> None:
        raise NotImplementedError

    def banners(self, frame: Frame, ai: str) -> list[tuple[str, str]]:
        """(level, text) banners to draw on ``frame`` (e.g. a short toast); called while drawing.
        ``ai``: the AI state drawn on the frame; an AI finding is shown under ON only."""
        return []

    def draw(self, frame: Frame, image: np.ndarray, roi: Any, ai: str) -> None:
        """Draw on the rendered BGR ``image`` of ``frame`` (in place) before it is shown; ``ai`` as
        for :meth:`banners`."""

    def on_long_build(self, seconds_estimate: float) -> None:
        """A model engine build of about this many seconds starts (a service extends its start timeout)."""

    def close(self) -> None:
        """Called once when the pipeline stops."""
