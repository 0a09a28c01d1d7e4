"""A sink's worker thread: ``submit`` queues an item, the thread writes it (``_write_now``), so a slow
disk or encoder never holds up the frame that is being shown. ``block`` chooses backpressure
(replay: every frame is written) or dropping (live: ``dropped`` counts them). A write error stops
that sink only (``error``; the display goes on) and is counted in ``EVENTS["recording_failed"]``, as
is a failure to finalise the file at the end.
A recorder that pauses for disk space (``sinks.min_free_gb``) counts the frames it left out
(``paused_frames``). Live, it resumes when space returns. With ``resume`` False (replay: a result
re-made on demand, every frame expected in it) a pause is final, and at close the recorder has failed:
``error`` says after how many frames it paused and how many it did not write.
``close`` waits at most :data:`CLOSE_TIMEOUT_S` for room in the queue and again for the thread: a
writer stuck on a hung disk is left behind, and finalises its file if the disk comes back.
"""

from __future__ import annotations

import logging
import queue
import threading

from edge_runtime.errors import SonomapError
from edge_runtime.live_stats import EVENTS

log = logging.getLogger("sonomap.sinks")

QUEUE_FRAMES = 8
CLOSE_TIMEOUT_S = 12.0  # a recorder finalises within this at shutdown (the units give TimeoutStopSec=20)


class ThreadedWriter:
    """Runs ``_write_now`` on a worker thread; ``block`` chooses backpressure vs dropping.

    ``resume`` False: a pause for disk space is final and makes a failed recording (replay);
    ``space``: the recorder's :class:`edge_runtime.sinks.recordings.SpaceGuard`, when it checks free
    space. A subclass sets what its writes need before calling this: the thread starts here."""

    def __init__(self, name: str, block: bool = True, *, resume: bool = True, space=None):
        self.name = name
        self.block = block
        self.resume = resume
        self.space = space
        self.frames = 0  # frames written
        self.paused = False  # below sinks.min_free_gb: frames are counted, not written
        self.paused_frames = 0
        self.dropped = 0
        self.error: Exception | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"sink-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            if self.error is None:
                try:
                    self._write_now(*item)
                except Exception as exc:  # disk full, encoder failure: stop this sink, keep displaying
                    self._failed(exc)
            if self._closed and self._queue.empty():  # close() gave up waiting (a hung disk came back)
                break
        try:
            self._finish()
        except Exception as exc:
            if self.error is None:  # every write went through, finalising failed: a failed recording too
                self.error = exc
                EVENTS.inc("recording_failed")
            log.error("sink %s could not finalise: %s", self.name, exc)
        if self.error is None and self.paused_frames and not self.resume:
            below = (
                f" (free space below sinks.min_free_gb {self.space.min_free_gb:g} GiB)" if self.space else ""
            )
            self.error = SonomapError(
                f"paused for low disk{below} after {self.frames} frame(s); {self.paused_frames} frame(s) "
                "not written"
            )
            EVENTS.inc("recording_failed")

    def submit(self, *item) -> None:
        if self._closed:
            return
        if self.error is not None:
            raise SonomapError(f"sink {self.name} stopped: {self.error}")
        if self.block:
            self._queue.put(item)
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._queue.put(None, timeout=CLOSE_TIMEOUT_S)  # a writer stuck on a dead disk is left behind
        except queue.Full:
            log.error("sink %s: writer stuck for %.0f s; leaving it", self.name, CLOSE_TIMEOUT_S)
            return
        self._thread.join(timeout=CLOSE_TIMEOUT_S)
        if self._thread.is_alive():
            log.error("sink %s did not finish within %.0f s; leaving it", self.name, CLOSE_TIMEOUT_S)

    def _write_now(self, *item) -> None:
        raise NotImplementedError

    def failure(self, exc: Exception) -> Exception:
        """What a write error ``exc`` is recorded and logged as (a sink writing a stand-in file names
        its output instead)."""
        return exc

    def _failed(self, exc: Exception) -> None:
        """A write raised: this sink stops (``error``), counted and logged once."""
        exc = self.failure(exc)
        self.error = exc
        EVENTS.inc("recording_failed")
        log.error("sink %s failed and stops recording: %s", self.name, exc)

    def _finish(self) -> None:
        """Flush and close files."""
