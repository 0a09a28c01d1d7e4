"""Fail-safe inference: a backend fault never stops or hides the video.

:class:`GuardedInference` wraps a backend. ``infer(gray)`` returns a Prediction, or None
when the backend raised, returned non-finite values, a mask that is not the ROI's size or one holding a
class id the model lacks; the caller then shows the raw frame with :meth:`banner`. Live: after a
fault it skips inference for ``retry_after_s`` (doubling up to ``retry_max_s``) so a failing backend
cannot slow the video, then tries again; after ``reload_after_errors`` consecutive faults it re-creates
the backend. Replay (:meth:`GuardedInference.retry_every_call`): no skipping, the next frame tries
again, since a replay runs faster than real time and seconds of back-off would leave whole stretches
of the clip without the AI. The first good prediction clears the fault: the pipeline recovers by itself. A fault is logged
once, and again when its message changes; ``unanswered`` counts the calls that gave no prediction.

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
        self.backoff = True  # False: replay's per-frame retries (retry_every_call)
        self.unanswered = 0  # calls that returned no prediction: a fault, or skipped in a back-off
        self._logged_fault: str | None = None  # the message last logged in this run of faults

    def retry_every_call(self) -> None:
        """No wall-clock back-off: after a fault the next call tries the backend again (replay: every
        frame is inferred, none skipped). The backend is still re-created after
        ``reload_after_errors`` consecutive faults, then after twice as many, and so on, so a model that
        fails on every frame is not rebuilt every few frames."""
        self.backoff = False

    def _failed(self, message: str, banner: str) -> None:
        message = " ".join(message.split())  # one line: ONNX Runtime's messages span several
        self.consecutive += 1
        self.stats.errors += 1
        self.stats.last_error = message
        self.stats.state = "degraded"
        self.fault = banner
        delay = (
            min(self.retry_max_s, self.retry_after_s * 2 ** (self.consecutive - 1)) if self.backoff else 0.0
        )
        self.retry_at = time.monotonic() + delay
        if message == self._logged_fault:  # the same fault again: counted, /metrics and the badge show it
            log.debug("inference fault #%d (%s)", self.consecutive, message)
            return
        self._logged_fault = message
        next_step = f"passthrough for {delay:.1f} s" if self.backoff else "the next frame tries again"
        log.warning("inference fault #%d (%s); %s", self.consecutive, message, next_step)

    def report_fault(self, message: str) -> None:
        """A fault in the inference step around the backend call (cutting the ROI, the mask filter, a
        config reload between frames): shown, counted and logged as a backend fault, so the AI reads
        ERROR with its banner instead of ON over frames that get no mask. The next good prediction
        clears it, as it clears a backend fault."""
        self._failed(message, BANNER_FAULT)

    def _reload_due(self) -> bool:
        """Whether this run of consecutive faults has reached a backend re-creation (see retry_every_call)."""
        runs, rest = divmod(self.consecutive, self.reload_after_errors)
        if runs == 0 or rest:
            return False
        return self.backoff or runs & (runs - 1) == 0  # per-call retries: 1, 2, 4, ... runs

    def _maybe_reload(self) -> None:
        if not self._reload_due():
            return
        try:
            with self.monitor.loading("reloading model"):
                new = _tracked(self.factory)
        except Exception as exc:  # the old backend keeps serving; the next fault run tries again
            log.error("backend re-creation after %d consecutive faults failed: %s", self.consecutive, exc)
            self.stats.last_error = f"backend reload failed: {exc}"
            return
        self._retire(new)
        log.warning("backend re-created after %d consecutive faults", self.consecutive)

    def replace_backend(self, make: Callable[[], object]) -> None:
        """Swap in a backend built by ``make`` (a config reload), shown as LOADING meanwhile; a ``make``
        that raises leaves the running backend in place and raises."""
        with self.monitor.loading("reloading model"):
            new = _tracked(make)
        self._retire(new)

    def _retire(self, new) -> None:
        """``new`` serves from now on; the old backend is closed, and a failure to close it is logged
        as that, not as a failed swap (the swap has happened: the new backend is serving)."""
        old, self.backend = self.backend, new
        try:
            old.close()
        except Exception as exc:
            log.error("closing the replaced backend failed (the new one is serving): %s", exc)

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
        """Gray ROI (H, W) -> the backend's Prediction, or None (a fault, or a back-off after one: the
        caller shows the raw frame with :meth:`banner`)."""
        prediction = self._infer(gray)
        if prediction is None:
            self.unanswered += 1
        return prediction

    def _in_backoff(self) -> bool:
        """Whether a fault's back-off is still running (never with retry_every_call)."""
        return self.fault is not None and time.monotonic() < self.retry_at

    def _infer(self, gray: np.ndarray) -> Prediction | None:
        if self._in_backoff():
            return None
        if self.fault is not None:
            self._maybe_reload()
        faults = self.consecutive
        self.prepare()
        if self.consecutive > faults or self._in_backoff():  # preparing failed: nothing to call
            return None
        try:
            prediction = _tracked(self.backend.infer, gray)
        except Exception as exc:
            self._failed(f"{type(exc).__name__}: {exc}", BANNER_FAULT)
            return None
        invalid = invalid_output(prediction, gray.shape[:2], len(self.backend.manifest.classes))
        if invalid is not None:
            self._failed(invalid, BANNER_NAN)
            return None
        if self.fault is not None:
            log.warning("inference recovered after %d faults", self.consecutive)
        self.consecutive = 0
        self.fault = None
        self._logged_fault = None
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


def invalid_output(prediction: Prediction | None, roi_shape: tuple[int, ...], num_classes: int) -> str | None:
    """Why a backend's answer for a ROI of ``roi_shape`` (H, W) cannot be drawn, or None when it can:
    no prediction, a mask that is not the ROI's size (it would be dropped at drawing, leaving raw
    ultrasound under an AI ON badge), a mask holding a class id the model does not have (0/255 from
    a graph built elsewhere: nothing would be coloured under AI ON either), a probability that is not
    a 2-D image (it may be at the model's output size: :class:`Prediction` resizes it) or one with
    NaN/inf."""
    if prediction is None:
        return "backend returned no prediction"
    mask, prob = np.asarray(prediction.mask), np.asarray(prediction.native_prob)
    if mask.shape != tuple(roi_shape):
        return f"backend returned a mask of shape {mask.shape} for a ROI of shape {tuple(roi_shape)}"
    top = int(mask.max()) if mask.size else 0
    if top >= num_classes:
        return f"backend returned class id {top} in its mask; the model has {num_classes} classes"
    if prob.ndim != 2 or prob.size == 0:
        return f"backend returned a probability of shape {prob.shape} for a ROI of shape {tuple(roi_shape)}"
    if not np.isfinite(prob).all():
        return "backend returned NaN/inf probabilities"
    return None


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
