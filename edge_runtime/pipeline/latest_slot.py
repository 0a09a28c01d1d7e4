"""The live schedule's hand-over between its threads (capture -> display -> inference -> display): one
slot holding the newest item, so a slow reader skips to the newest instead of queueing stale work."""

from __future__ import annotations

import threading


class LatestSlot:
    """One frame slot with a sequence number; ``put`` overwrites (counting what it drops)."""

    def __init__(self):
        self._cond = threading.Condition()
        self.item = None
        self.seq = 0
        self.closed = False
        self.error: BaseException | None = None

    def put(self, item) -> None:
        with self._cond:
            self.item = item
            self.seq += 1
            self._cond.notify_all()

    def close(self, error: BaseException | None = None) -> None:
        with self._cond:
            self.closed = True
            self.error = error
            self._cond.notify_all()

    def wait_newer(self, seq: int, timeout: float):
        """(seq, item) newer than ``seq``, or (seq, None) on timeout/close."""
        with self._cond:
            self._cond.wait_for(lambda: self.seq > seq or self.closed, timeout)
            if self.seq > seq:
                return self.seq, self.item
            return seq, None
