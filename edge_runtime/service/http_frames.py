"""The HTTP viewer's copy of the newest rendered frame, shared by all request threads.

The render thread only stores a reference to a copy (at most ``MJPEG_MAX_FPS`` a second); JPEG
encoding happens lazily in the request threads, once per frame however many viewers watch.
"""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np

MJPEG_MAX_FPS = 15.0  # viewers do not need capture rate; this caps CPU spent on JPEG
JPEG_QUALITY = 80
STREAM_WAIT_S = 1.0  # a streaming thread re-checks for shutdown this often


class NoFrame(Exception):
    """No JPEG to serve: none newer than asked for arrived in time, or it could not be encoded."""


class FrameStore:
    """Newest rendered frame + its JPEG, shared by all request threads."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.image: np.ndarray | None = None
        self.seq = 0
        self._jpeg: bytes | None = None
        self._jpeg_seq = -1
        self.closed = False
        self._last_put = 0.0

    def put(self, rendered: np.ndarray) -> None:
        now = time.monotonic()
        if now - self._last_put < 1.0 / MJPEG_MAX_FPS:
            return
        self._last_put = now
        copy = rendered.copy()  # the pipeline may reuse its render buffer
        with self.cond:
            self.image, self.seq = copy, self.seq + 1
            self.cond.notify_all()

    def jpeg(self, after_seq: int = -1, timeout: float = STREAM_WAIT_S) -> tuple[int, bytes]:
        """Wait until a frame newer than ``after_seq`` exists; return (seq, JPEG bytes).

        Raises :class:`NoFrame` (with the reason) when none came within ``timeout``."""
        with self.cond:
            self.cond.wait_for(
                lambda: self.closed or (self.image is not None and self.seq > after_seq), timeout
            )
            if self.image is None:
                raise NoFrame("no frame rendered yet")
            if self.seq <= after_seq:
                raise NoFrame(f"no new frame within {timeout:.1f} s")
            if self._jpeg_seq != self.seq:
                ok, buf = cv2.imencode(".jpg", self.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise NoFrame(f"frame {self.seq} could not be encoded as JPEG")
                self._jpeg, self._jpeg_seq = buf.tobytes(), self.seq
            return self.seq, self._jpeg

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
