"""Manual biopsy marks, requested from any thread (window key, HTTP ``POST /mark``, SIGUSR1).

A process-wide :data:`MARKS` queue: requesters call :meth:`MarkRequests.request`; the capture
observer takes them once per rendered frame (:meth:`MarkRequests.take`). No lock: a SIGUSR1
handler runs on the main thread, which in live mode is also the thread taking marks, so a lock
could deadlock it; ``deque.append``/``popleft`` are atomic instead.
"""

from __future__ import annotations

from collections import deque

WINDOW_KEY = "b"  # the key that marks a biopsy in the OpenCV window


class MarkRequests:
    def __init__(self) -> None:
        self._pending: deque[str] = deque()
        self.enabled = False  # set by the capture observer: without --cases a mark has nowhere to go

    def request(self, via: str) -> bool:
        """Queue a mark made ``via`` ('key', 'http', 'signal'); False when capture is off."""
        if not self.enabled:
            return False
        self._pending.append(via)
        return True

    def take(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self._pending.popleft())
            except IndexError:
                return out


MARKS = MarkRequests()
