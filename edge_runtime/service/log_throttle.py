"""One log line a while for a fault that can repeat per connection, so a flood cannot flood the journal.

:class:`ThrottledWarning` counts events and says when to log about them: at most once every
``every_s`` seconds, with how many happened since the last line. journald rate-limits a unit as a
whole, so a fault logged per connection would otherwise crowd out the service's other warnings.
"""

from __future__ import annotations

import threading
import time


class ThrottledWarning:
    """Thread-safe count of one kind of event, released for logging at most once every ``every_s``."""

    def __init__(self, every_s: float):
        self.every_s = every_s
        self._lock = threading.Lock()
        self._logged_at = -every_s  # monotonic time of the last line: the first event is logged at once
        self._unlogged = 0

    def count(self) -> int:
        """Count one event. Returns how many to report now (this one and those since the last line),
        or 0 while the last line is less than ``every_s`` old: log only when it is not 0."""
        with self._lock:
            self._unlogged += 1
            now = time.monotonic()
            if now - self._logged_at < self.every_s:
                return 0
            count, self._logged_at, self._unlogged = self._unlogged, now, 0
            return count
