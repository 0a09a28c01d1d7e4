"""The AI's state, as every rendered frame, /healthz, /metrics and systemd show it.

States (:class:`AiStatus`):

- ``ON``       results arrive; the detail gives the drawn mask's age;
- ``LOADING``  the backend is being created or prepared (model load, TensorRT engine build),
               or no result has come yet since it was;
- ``STALLED``  a frame was handed to the AI and no answer came within ``inference.deadline_ms``, or,
               where a frame is shown only with its own mask (live ``strict``), the answers come later
               than the display waits for them (``live.stale_ms``): every frame is then shown raw;
- ``ERROR``    the backend raised or gave invalid output (the fail-safe's passthrough);
- ``OFF``      the operator chose passthrough (``inference.enabled: false``, ``--no-ai``, key ``a``).

:class:`AiMonitor` is fed by the schedules (``request_sent`` when a frame is handed to the AI,
``answered`` when the answer comes, from whichever thread) and by
:class:`edge_runtime.backends.failsafe.GuardedInference` (``loading``). It never calls the backend, so it
answers while the inference thread is stuck inside a native call. Thread-safe; no I/O but logging.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from edge_runtime.config_schema import InferenceConfig
from edge_runtime.typed_config import as_dict
from edge_runtime.units import MS_PER_S

log = logging.getLogger("sonomap.aistate")

ON, LOADING, STALLED, ERROR, OFF = "ON", "LOADING", "STALLED", "ERROR", "OFF"
STATES = (ON, LOADING, STALLED, ERROR, OFF)
UNHEALTHY = (STALLED, ERROR)  # /healthz answers 503 in these (the video itself still flows)
GAP_STATES = (LOADING, ERROR, OFF)  # entering one ends what the AI showed: results so far are void
# the badge's detail where the schedule, not the monitor, knows why no mask is drawn
NO_SIGNAL_DETAIL = "no signal"  # the detail on a NO SIGNAL screen (AI OFF: nothing to infer)
WAITING_DETAIL = "waiting for a result"  # AI LOADING: AI ON, but no result for this frame's ROI yet
SKIPPED_DETAIL = "frame not analysed"  # strict live: the AI was busy with an earlier frame, none drawn
STATE_BANNERS = {  # non-ON states also get a full-width banner: raw video must not read as "no cancer"
    LOADING: ("info", "AI LOADING: {detail} - raw ultrasound only"),
    STALLED: ("error", "AI STALLED: no answer for {detail} - raw ultrasound only"),
    OFF: ("info", "AI OFF: raw ultrasound only (operator's choice)"),
}


def smoothing_restarts(roi_before, state_before: str | None, roi, state: str) -> bool:
    """Whether the mask's EMA smoothing starts afresh on a frame drawn in ``roi`` with the AI in
    ``state``, after one in ``roi_before`` and ``state_before``: on another ROI (or a screen with
    none), when the AI enters LOADING, ERROR or OFF, and when it comes back ON. Otherwise the first
    frames after a gap would draw the earlier image's smoothed probability over a new one. The one
    rule of live and replay."""
    return roi != roi_before or (state != state_before and state in (*GAP_STATES, ON))


@dataclass(frozen=True)
class AiStatus:
    state: str
    detail: str = ""
    stalls: int = 0  # stall episodes since start (the metric)
    watchdog_ok: bool = True  # False once a stall outlasts inference.stall_restart_s

    @property
    def label(self) -> str:
        """What the badge says, e.g. ``AI STALLED 3.2 s``."""
        return f"AI {self.state}" + (f" {self.detail}" if self.detail else "")

    @property
    def healthy(self) -> bool:
        return self.state not in UNHEALTHY

    def as_dict(self) -> dict:
        return {
            "state": self.state,
            "detail": self.detail,
            "stalls": self.stalls,
            "watchdog_ok": self.watchdog_ok,
        }


def state_banner(status: AiStatus) -> tuple[str, str] | None:
    """(level, text) of the banner a non-ON state adds (ERROR keeps the fail-safe's own banner)."""
    template = STATE_BANNERS.get(status.state)
    if template is None:
        return None
    return template[0], template[1].format(detail=status.detail or "waiting for the first result")


MONITOR_KEYS = ("enabled", "deadline_ms", "stall_restart_s")  # of the config's inference section


def backend_settings(inference: InferenceConfig) -> dict:
    """The inference settings whose change needs a new backend (not the model path, not the monitor's)."""
    return {k: v for k, v in as_dict(inference).items() if k != "model" and k not in MONITOR_KEYS}


class AiMonitor:
    """Tracks the one outstanding AI request and the backend's loading; derives :class:`AiStatus`."""

    def __init__(
        self,
        deadline_ms: float,
        stall_restart_s: float | None = None,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.deadline_s = float(deadline_ms) / MS_PER_S
        self.stall_restart_s = stall_restart_s
        self.clock = clock
        self.enabled = enabled
        self._lock = threading.Lock()
        self._loading: str | None = None
        self._loaded_at = float("-inf")
        self._request_t0: float | None = None
        self._has_result = False
        self._in_stall = False
        # live strict: an answer later than this is no answer for the frame shown (None: no such limit)
        self.late_after_s: float | None = None
        self._late_s = 0.0  # how long the last late request waited (0: the last answer was in time)
        self.stalls = 0

    @classmethod
    def from_config(cls, inference: InferenceConfig) -> AiMonitor:
        return cls(inference.deadline_ms, inference.stall_restart_s, inference.enabled)

    def configure(self, inference: InferenceConfig) -> None:
        """Apply a reloaded inference section: deadline, restart limit, on/off."""
        self.deadline_s, self.stall_restart_s = inference.deadline_ms / MS_PER_S, inference.stall_restart_s
        self.set_enabled(inference.enabled)

    def set_enabled(self, enabled: bool) -> None:
        """The operator's AI on/off (window key, config): OFF is raw video with an AI OFF badge."""
        if enabled != self.enabled:
            self.enabled = enabled
            self._late_s = 0.0  # the answers after a switch are timed afresh
            log.warning("AI switched %s by the operator", "on" if enabled else "off")

    # --- fed by the schedules and the fail-safe ------------------------------------------
    @contextlib.contextmanager
    def loading(self, what: str) -> Iterator[None]:
        """Marks model load / engine build: LOADING, and the deadline clock waits for it."""
        with self._lock:
            self._loading = what
        try:
            yield
        finally:
            with self._lock:
                self._loading = None
                self._loaded_at = self.clock()
                self._has_result = False

    def request_sent(self) -> None:
        with self._lock:
            if self._request_t0 is None:
                self._request_t0 = self.clock()

    def expect_within(self, late_after_ms: float | None) -> None:
        """Live ``strict``: an answer later than this is too late to be drawn, so answers that keep
        coming late are a stall too (None: answers are drawn whenever they come)."""
        with self._lock:
            self.late_after_s = None if late_after_ms is None else float(late_after_ms) / MS_PER_S

    def answered(self, ok: bool) -> None:
        with self._lock:
            waited = self._pending_s(self.clock())
            self._request_t0 = None
            if ok:
                self._has_result = True
            late = ok and self.late_after_s is not None and waited > self.late_after_s
            self._late_s = waited if late else 0.0
            if self._in_stall and not late:
                self._in_stall = False
                log.warning("inference answered again after a stall of %.1f s", waited)

    # --- read by the render path ------------------------------------------------------------
    def _pending_s(self, now: float) -> float:
        if self._request_t0 is None or self._loading is not None:
            return 0.0
        return max(0.0, now - max(self._request_t0, self._loaded_at))

    def pending_s(self) -> float:
        """Seconds the current request has waited for its answer (0 when none, or loading)."""
        with self._lock:
            return self._pending_s(self.clock())

    def status(self, fault: str | None = None, mask_age_ms: float | None = None) -> AiStatus:
        """The state now. ``fault``: the fail-safe's banner text while it is in passthrough;
        ``mask_age_ms``: age of the mask drawn on this frame (None: no mask on it)."""
        with self._lock:
            pending = self._pending_s(self.clock())
            # late (strict): the last answer came after the display had stopped waiting for it. A
            # request merely past that wait is no stall yet: a hang is told by the deadline
            late = self._has_result and self._late_s > 0
            stalled = pending > self.deadline_s or late
            if stalled and not self._in_stall:
                self._in_stall = True
                self.stalls += 1
                limit = (self.late_after_s if late else self.deadline_s) * MS_PER_S
                log.warning(
                    "inference stalled: no result for %.1f s (%s %.0f ms); raw video continues",
                    max(pending, self._late_s),
                    "live.stale_ms" if late else "deadline",
                    limit,
                )
            watchdog_ok = self.stall_restart_s is None or pending < self.stall_restart_s
            common = {"stalls": self.stalls, "watchdog_ok": watchdog_ok}
            if not self.enabled:
                return AiStatus(OFF, "", **common)
            if stalled:
                return AiStatus(STALLED, f"{max(pending, self._late_s):.1f} s", **common)
            if self._loading is not None:
                return AiStatus(LOADING, self._loading, **common)
            if fault:
                return AiStatus(ERROR, "", **common)
            if not self._has_result:
                return AiStatus(LOADING, "", **common)
            return AiStatus(ON, "" if mask_age_ms is None else f"{mask_age_ms:.0f} ms", **common)

    def must_restart(self) -> bool:
        """True once a stall has lasted ``stall_restart_s``: the process should end non-zero."""
        return self.stall_restart_s is not None and self.pending_s() >= self.stall_restart_s
