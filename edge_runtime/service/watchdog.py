"""systemd integration as a pipeline Observer: READY=1, WATCHDOG=1 and STATUS=.

- ``READY=1`` once, on the first rendered frame: by then the engine is loaded (the
  pipeline builds/loads it before the first frame) and capture works end to end.
- ``WATCHDOG=1`` from the render path, at most every half ``WATCHDOG_USEC``
  (sd_watchdog_enabled(3)), so pings stop when frames stop and systemd restarts a hung
  capture or GPU. The live schedule's stall frames (``frame.index < 0``: nothing came from
  the source for 2 s) do not ping. resilient.py's "NO SIGNAL" frames do: the device is
  gone and being reconnected, a restart cannot re-plug a cable; /healthz and STATUS= say so.
  Pings also stop while an inference call has been stuck for ``inference.stall_restart_s``
  (``stats["ai"]["watchdog_ok"]``): liveness covers the AI, not only the render path.
- ``STATUS=`` with the AI state, fps and latency once a second, and at once when the AI state changes;
  ``EXTEND_TIMEOUT_USEC`` during engine builds via :meth:`ServiceObserver.on_long_build`; ``STOPPING=1`` on close.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edge_runtime.frames import Frame, Observer, Prediction
from edge_runtime.live_stats import LiveStats
from edge_runtime.service.sdnotify import Notifier

log = logging.getLogger("sonomap.watchdog")

STATUS_INTERVAL_S = 1.0  # systemctl status refreshes its STATUS= line about once a second too
WATCHDOG_PING_FRACTION = 0.5  # ping at half the timeout, as sd_watchdog_enabled(3) advises
BUILD_TIMEOUT_MARGIN = 1.5  # ask for 50% more than the builder's own estimate
MIN_EXTEND_S = (
    60.0  # never ask for less: small builds' estimates are noisy, and a start that times out costs a restart
)


class ServiceObserver(Observer):
    def __init__(
        self,
        notifier: Notifier | None = None,
        stats: LiveStats | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.notifier = notifier or Notifier()
        self.stats = stats or LiveStats(clock)
        self.clock = clock
        self.ready_sent = False
        self._last_ping = float("-inf")
        self._last_status = float("-inf")
        self._last_ai_state: str | None = None
        wd = self.notifier.watchdog_s
        self.ping_interval_s = None if wd is None else wd * WATCHDOG_PING_FRACTION

    def on_long_build(self, seconds_estimate: float) -> None:
        """Give to the engine builder: extends systemd's start timeout while it builds."""
        extend = max(MIN_EXTEND_S, float(seconds_estimate) * BUILD_TIMEOUT_MARGIN)
        log.warning(
            "building the inference engine (about %.0f s); asking systemd for %.0f s",
            seconds_estimate,
            extend,
        )
        self.notifier.extend_timeout(extend)
        self.notifier.status(f"building inference engine (about {seconds_estimate:.0f} s)")

    def on_frame(
        self, frame: Frame, prediction: Prediction | None, rendered: np.ndarray, stats: dict[str, Any]
    ) -> None:
        self.stats.update(frame, prediction, stats)
        now = self.clock()
        if not self.ready_sent:
            self.ready_sent = (
                self.notifier.ready(f"first frame rendered; {self.stats.status_line()}")
                or not self.notifier.enabled
            )
            self._last_status = now
        stalled = frame.index < 0
        ai = stats.get("ai") or {}
        alive = not stalled and ai.get("watchdog_ok", True)
        if alive and self.ping_interval_s is not None and now - self._last_ping >= self.ping_interval_s:
            self.notifier.watchdog()
            self._last_ping = now
        changed = ai.get("state") != self._last_ai_state
        self._last_ai_state = ai.get("state")
        if changed or now - self._last_status >= STATUS_INTERVAL_S:
            self.notifier.status(self.stats.status_line())
            self._last_status = now

    def close(self) -> None:
        self.notifier.stopping("stopping: finalising recordings")
        self.notifier.close()
