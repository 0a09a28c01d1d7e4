"""Fail-safe inference: a backend fault never stops or hides the video.

:class:`GuardedInference` wraps a backend. ``infer(gray)`` returns a Prediction, or None
when the backend raised or returned non-finite values; the caller then shows the raw
frame with :meth:`banner`. After a fault it skips inference for ``retry_after_s`` (doubling
up to ``retry_max_s``) so a failing backend cannot slow the video, then tries again; after
``reload_after_errors`` consecutive faults it re-creates the backend. The first good
prediction clears the fault: the pipeline recovers by itself.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np

from edge_runtime.frames import Prediction
from edge_runtime.stats import Stats

log = logging.getLogger("sonomap.failsafe")
BANNER_FAULT = "AI PAUSED: inference fault - raw ultrasound only"
BANNER_NAN = "AI PAUSED: invalid model output - raw ultrasound only"


class GuardedInference:
    def __init__(self, factory: Callable[[], object], stats: Stats, retry_after_s: float = 1.0,
                 retry_max_s: float = 30.0, reload_after_errors: int = 3, backend=None):
        self.factory = factory
        self.stats = stats
        self.retry_after_s = retry_after_s
        self.retry_max_s = retry_max_s
        self.reload_after_errors = max(1, int(reload_after_errors))
        self.backend = backend if backend is not None else factory()
        self.consecutive = 0
        self.retry_at = 0.0
        self.fault: str | None = None

    def _failed(self, message: str, banner: str) -> None:
        self.consecutive += 1
        self.stats.errors += 1
        self.stats.last_error = message
        self.stats.state = "degraded"
        self.fault = banner
        delay = min(self.retry_max_s, self.retry_after_s * 2 ** (self.consecutive - 1))
        self.retry_at = time.monotonic() + delay
        log.warning("inference fault #%d (%s); passthrough for %.1f s", self.consecutive, message, delay)

    def _maybe_reload(self) -> None:
        if self.consecutive < self.reload_after_errors or self.consecutive % self.reload_after_errors:
            return
        try:
            old, self.backend = self.backend, self.factory()
            old.close()
            log.warning("backend re-created after %d consecutive faults", self.consecutive)
        except Exception as exc:  # noqa: BLE001 - any failure here is one more fault to ride out
            self.stats.last_error = f"backend reload failed: {exc}"

    def infer(self, gray: np.ndarray) -> Prediction | None:
        if self.fault is not None and time.monotonic() < self.retry_at:
            return None
        if self.fault is not None:
            self._maybe_reload()
        try:
            prediction = self.backend.infer(gray)
        except Exception as exc:  # noqa: BLE001 - fail-safe: any backend error means passthrough
            self._failed(f"{type(exc).__name__}: {exc}", BANNER_FAULT)
            return None
        if prediction is None or not np.isfinite(prediction.native_prob).all():
            self._failed("backend returned NaN/inf probabilities", BANNER_NAN)
            return None
        if self.fault is not None:
            log.warning("inference recovered after %d faults", self.consecutive)
        self.consecutive = 0
        self.fault = None
        self.stats.state = "running"
        return prediction

    def banner(self) -> tuple[str, str] | None:
        return ("error", self.fault) if self.fault else None

    def close(self) -> None:
        self.backend.close()
