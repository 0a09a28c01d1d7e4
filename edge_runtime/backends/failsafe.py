"""Fail-safe inference: a backend fault never stops or hides the video.

:class:`GuardedInference` wraps a backend. ``infer(gray)`` returns a Prediction, or None
when the backend raised or returned non-finite values; the caller then shows the raw
frame with :meth:`banner`. After a fault it skips inference for ``retry_after_s`` (doubling
up to ``retry_max_s``) so a failing backend cannot slow the video, then tries again; after
``reload_after_errors`` consecutive faults it re-creates the backend. The first good
prediction clears the fault: the pipeline recovers by itself.

A call that never returns (a hung driver, a model stuck in a native loop) cannot be interrupted
from Python. The guard therefore only counts calls in flight (:func:`calls_in_flight`); the
schedules detect the stall through :class:`edge_runtime.aistate.AiMonitor`, keep the video going,
and at exit the CLI ends the process without waiting for the stuck thread. Backend creation and
:meth:`prepare` (TensorRT's engine build) run under ``monitor.loading`` so the screen says LOADING.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import numpy as np

from edge_runtime.aistate import AiMonitor
from edge_runtime.frames import Prediction
from edge_runtime.stats import Stats

log = logging.getLogger("sonomap.failsafe")
BANNER_FAULT = "AI ERROR: inference fault - raw ultrasound only"
BANNER_NAN = "AI ERROR: invalid model output - raw ultrasound only"
DEFAULT_DEADLINE_MS = 1000.0
_in_flight = 0
_in_flight_lock = threading.Lock()


def calls_in_flight() -> int:
    """Backend calls (infer, prepare, create) that have started and not returned, process-wide."""
    return _in_flight


def _count_in_flight(delta: int) -> None:
    global _in_flight
    with _in_flight_lock:
        _in_flight += delta


def _tracked(call: Callable, *args):
    """Run one backend call, counted in :func:`calls_in_flight` while it runs."""
    _count_in_flight(1)
    try:
        return call(*args)
    finally:
        _count_in_flight(-1)


class GuardedInference:
    def __init__(
        self,
        factory: Callable[[], object],
        stats: Stats,
        retry_after_s: float = 1.0,
        retry_max_s: float = 30.0,
        reload_after_errors: int = 3,
        backend=None,
        monitor: AiMonitor | None = None,
    ):
        self.factory = factory
        self.stats = stats
        self.retry_after_s = retry_after_s
        self.retry_max_s = retry_max_s
        self.reload_after_errors = max(1, int(reload_after_errors))
        self.monitor = monitor or AiMonitor(DEFAULT_DEADLINE_MS)
        if backend is None:
            with self.monitor.loading("loading model"):
                backend = _tracked(factory)
        self.backend = backend
        self._prepared: object | None = None
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
            with self.monitor.loading("reloading model"):
                old, self.backend = self.backend, _tracked(self.factory)
            old.close()
            log.warning("backend re-created after %d consecutive faults", self.consecutive)
        except Exception as exc:  # the old backend keeps serving; the next fault run tries again
            log.error("backend re-creation after %d consecutive faults failed: %s", self.consecutive, exc)
            self.stats.last_error = f"backend reload failed: {exc}"

    def replace_backend(self, make: Callable[[], object]) -> None:
        """Swap in a backend built by ``make`` (a config reload), shown as LOADING meanwhile."""
        with self.monitor.loading("reloading model"):
            new = _tracked(make)
        old, self.backend = self.backend, new
        old.close()

    def prepare(self) -> None:
        """The backend's one-off preparation (TensorRT: CUDA context and engine load or build), on
        the calling thread, shown as LOADING. Called by the inference thread before its first call;
        a failure is a fault like any other."""
        backend = self.backend
        prepare = getattr(backend, "prepare", None)
        if self._prepared is backend or prepare is None:
            return
        try:
            with self.monitor.loading(getattr(backend, "prepare_label", "loading model")):
                _tracked(prepare)
            self._prepared = backend
        except Exception as exc:
            self._failed(f"{type(exc).__name__}: {exc}", BANNER_FAULT)

    def infer(self, gray: np.ndarray) -> Prediction | None:
        if self.fault is not None and time.monotonic() < self.retry_at:
            return None
        if self.fault is not None:
            self._maybe_reload()
        self.prepare()
        if self.fault is not None and time.monotonic() < self.retry_at:
            return None
        try:
            prediction = _tracked(self.backend.infer, gray)
        except Exception as exc:
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
        """Free the backend, unless a call is stuck in it: freeing a session or CUDA context
        under a running call can crash or block; the process exit releases it instead."""
        if calls_in_flight():
            log.warning("an inference call is still running; the backend is left to the process exit")
            return
        self.backend.close()


class InferenceThread:
    """One daemon thread that runs inference calls in turn (a backend's CUDA context belongs to
    the thread that made it); the caller waits with a timeout, so it can notice a stall, stop or be
    interrupted while a call is stuck in native code. Daemon: a stuck call never blocks the exit."""

    def __init__(self, name: str = "inference"):
        self._calls: queue.Queue = queue.Queue(maxsize=1)
        self._done = threading.Event()
        self._result: tuple = (None, None)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            call, args = self._calls.get()
            try:
                self._result = (call(*args), None)
            except BaseException as exc:
                self._result = (None, exc)
            self._done.set()

    def submit(self, call: Callable, *args) -> None:
        """Start ``call(*args)``; one at a time (wait for the previous one first)."""
        self._done.clear()
        self._calls.put_nowait((call, args))

    def wait(self, timeout: float) -> bool:
        """True when the call has returned (then read :meth:`result`)."""
        return self._done.wait(timeout)

    def result(self):
        value, error = self._result
        if error is not None:
            raise error
        return value
