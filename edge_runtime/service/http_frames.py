"""The HTTP viewer's copy of the newest rendered frame, shared by all request threads.

The render thread only stores a reference to a copy (at most ``MJPEG_MAX_FPS`` a second); JPEG
encoding happens lazily in the request threads, once per frame however many viewers watch. The
encode runs outside the store's lock, so :meth:`FrameStore.put` (the render loop) never waits for
one: a 4K encode takes a tenth of a second or more, several frames' worth of the render budget.
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
    """Newest rendered frame + its JPEG, shared by all request threads.

    ``encodes`` counts the JPEG encodes done: one per frame served, however many viewers ask.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.image: np.ndarray | None = None
        self.seq = 0
        self._jpeg: bytes | None = None
        self._jpeg_seq = -1
        self._encoding = False  # a request thread is encoding a frame (outside the lock)
        self.encodes = 0
        self.closed = False
        self._last_put = 0.0

    def put(self, rendered: np.ndarray) -> None:
        """Keep a copy of ``rendered`` as the newest frame. Holds the lock only to swap a reference,
        never while a JPEG is encoded: the render loop must not wait on a viewer. At most
        ``MJPEG_MAX_FPS`` frames a second are kept; the ones in between are dropped."""
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

        One encode runs at a time: a viewer that finds another one encoding waits for that JPEG and
        serves it when it is newer than ``after_seq`` (it was the newest frame a moment ago), so
        viewers never encode the same frame twice. Raises :class:`NoFrame` (with the reason) when
        none came within ``timeout`` or the frame could not be encoded."""
        deadline = time.monotonic() + timeout
        with self.cond:
            self.cond.wait_for(
                lambda: self.closed or (self.image is not None and self.seq > after_seq), timeout
            )
            if self.image is None:
                raise NoFrame("no frame rendered yet")
            if self.seq <= after_seq:
                raise NoFrame(f"no new frame within {timeout:.1f} s")
            if self._encoding:
                self.cond.wait_for(
                    lambda: self.closed or not self._encoding, max(0.0, deadline - time.monotonic())
                )
                if self._encoding:
                    raise NoFrame(f"no frame encoded within {timeout:.1f} s")
                if self._jpeg_seq > after_seq:
                    return self._jpeg_seq, self._jpeg
            if self._jpeg_seq == self.seq:
                return self.seq, self._jpeg
            seq, image, self._encoding = self.seq, self.image, True
        return seq, self._encode(seq, image)

    def _encode(self, seq: int, image: np.ndarray) -> bytes:
        """Encode frame ``seq`` without the lock held, then keep the result for the other viewers.
        The caller has set ``_encoding``; it is cleared here whatever happens."""
        jpeg = None
        try:
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            jpeg = buf.tobytes() if ok else None
        finally:
            with self.cond:
                self._encoding = False
                self.encodes += 1
                if jpeg is not None and seq > self._jpeg_seq:
                    self._jpeg, self._jpeg_seq = jpeg, seq
                self.cond.notify_all()
        if jpeg is None:
            raise NoFrame(f"frame {seq} could not be encoded as JPEG")
        return jpeg

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
