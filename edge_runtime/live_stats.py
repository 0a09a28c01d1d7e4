"""Live service statistics: fps, per-stage latency histograms, drop/error counters.

Fed by observers (:meth:`LiveStats.update` once per rendered frame) and by fault
handlers anywhere in the process (:data:`EVENTS`, e.g. a source reconnect or a skipped
corrupt frame). Read by /metrics (edge_runtime.service.prometheus_export), /stats.json, the viewer page and
the sd_notify ``STATUS=`` line. Thread-safe; no I/O.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from edge_runtime import privacy
from edge_runtime.frames import Frame, Prediction
from edge_runtime.units import MS_PER_S

# Latency buckets (seconds): frame intervals at 60/30/15 fps sit at 0.017/0.033/0.067.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.017, 0.025, 0.033, 0.05, 0.067, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
FPS_WINDOW_S = 2.0  # fps is frames counted over the last 2 s
FPS_WINDOW_MAX_FRAMES = 512
# Stats keys the runtime reports as cumulative counts -> (metric, label) here.
COUNTER_KEYS = {
    "dropped": ("frames_dropped", None),
    "drops": ("frames_dropped", None),
    "frames_dropped": ("frames_dropped", None),
    "errors": ("errors", "backend"),
    "backend_errors": ("errors", "backend"),
    "skipped": ("errors", "corrupt_input"),
    "corrupt": ("errors", "corrupt_input"),
    "sink_errors": ("errors", "sink"),
}
# EVENTS that count things done, not faults -> (metric, help).
COUNT_EVENTS = {
    "biopsy_captures": (
        "sonomap_biopsy_captures_total",
        "Biopsies captured as cases (detected fires and manual marks).",
    )
}
INFO_KEYS = ("backend", "device", "precision", "provider", "model", "mode", "source", "threads")
SUMMARY_QUANTILES = (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"))
# The runtime's recorder state (sinks.recorder_state) -> the sonomap_recorder_state label.
RECORDER_STATES = {"": "off", "REC": "recording", "REC PAUSED: disk low": "paused", "REC FAILED": "failed"}


class EventCounters:
    """Process-wide named counters for faults (``EVENTS.inc("source_reconnect")``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def inc(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


EVENTS = EventCounters()


class Histogram:
    """Cumulative latency buckets, read by the /metrics collector. Not prometheus_client's Histogram:
    that one lives in a registry, and /metrics builds its families from one snapshot per scrape."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS_S):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, upper in enumerate(self.buckets):
            if value <= upper:
                self.counts[i] += 1
        self.total += 1
        self.sum += value


def _latencies_ms(
    frame: Frame, prediction: Prediction | None, stats: Mapping[str, Any], now: float, new_prediction: bool
) -> dict[str, float]:
    """Stage -> latency (ms) for this frame: end to end from the capture timestamp, the
    backend's own time (once per prediction: live mode redraws one mask on several
    frames), and any per-frame numeric timings the runtime put in ``stats``."""
    out = {"end_to_end": (now - frame.timestamp) * MS_PER_S}
    if prediction is not None and new_prediction:
        out["backend"] = float(prediction.latency_ms)
    nested = stats.get("latency_ms")
    if isinstance(nested, Mapping):
        out.update({str(k): float(v) for k, v in nested.items() if _is_number(v)})
    for key, value in stats.items():
        if key.endswith("_ms") and key != "latency_ms" and _is_number(value):
            out[key[: -len("_ms")]] = float(value)
    return {k: v for k, v in out.items() if math.isfinite(v) and v >= 0}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class MetricsSnapshot:
    """One consistent copy of the lock-protected state, for /metrics.

    ``hists`` maps stage -> (cumulative bucket counts, total, sum, bucket upper bounds)."""

    frames: int
    no_signal: bool
    hists: dict[str, tuple[list[int], int, float, tuple[float, ...]]]
    counters: dict[tuple[str, str | None], int]
    info: dict[str, str]
    summaries: dict[str, dict[str, float]]
    ai: dict[str, Any]
    recording: str


class LiveStats:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._times: deque[float] = deque(maxlen=FPS_WINDOW_MAX_FRAMES)
        self.frames = 0
        self.no_signal_frames = 0
        self.last_frame_t: float | None = None
        self.last_signal_t: float | None = None
        self.no_signal = False
        self.hist: dict[str, Histogram] = {}
        self.last_ms: dict[str, float] = {}
        self.counters: dict[tuple[str, str | None], int] = {}
        self.info: dict[str, str] = {}
        self.summaries: dict[str, dict[str, float]] = {}
        self.banner = ""
        self.ai: dict[str, Any] = {}  # the AI state drawn on the newest frame (edge_runtime.aistate)
        self.recording = ""
        self._last_prediction: Prediction | None = None

    def update(self, frame: Frame, prediction: Prediction | None, stats: Mapping[str, Any]) -> None:
        now = self.clock()
        # meta["no_signal"]: resilient.py's NO SIGNAL screen; index < 0: live.py's stall frame.
        no_signal = bool(frame.meta.get("no_signal", False)) or frame.index < 0
        new_prediction = prediction is not None and prediction is not self._last_prediction
        self._last_prediction = prediction
        lat = {} if no_signal else _latencies_ms(frame, prediction, stats, now, new_prediction)
        nested = stats.get("latency_ms")
        summaries = (
            {str(k): dict(v) for k, v in nested.items() if isinstance(v, Mapping)}
            if isinstance(nested, Mapping)
            else {}
        )
        info = stats.get("backend") if isinstance(stats.get("backend"), Mapping) else stats
        with self._lock:
            self.frames += 1
            self.last_frame_t = now
            self.no_signal = no_signal
            if no_signal:
                self.no_signal_frames += 1
            else:
                self.last_signal_t = now
            self._times.append(now)
            for stage, ms in lat.items():
                self.hist.setdefault(stage, Histogram()).observe(ms / MS_PER_S)
            self.last_ms.update(lat)
            for key, (metric, label) in COUNTER_KEYS.items():
                value = stats.get(key)
                if _is_number(value):
                    self.counters[(metric, label)] = int(value)
            for key in INFO_KEYS:
                if isinstance(info.get(key), str) or _is_number(info.get(key)):
                    self.info[key] = str(info[key])
            if summaries:
                self.summaries = summaries
            if isinstance(stats.get("recording"), str):
                self.recording = stats["recording"]
            self.banner = (
                str(stats.get("banner") or stats.get("last_error") or "")
                if stats.get("state") == "degraded" or stats.get("banner")
                else ""
            )
            if isinstance(stats.get("ai"), Mapping):
                self.ai = dict(stats["ai"])

    def fps(self) -> float:
        with self._lock:
            now = self.clock()
            recent = [t for t in self._times if now - t <= FPS_WINDOW_S]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    def frame_age_s(self, signal_only: bool = True) -> float | None:
        """Seconds since the last rendered frame (with a real signal when signal_only)."""
        last = self.last_signal_t if signal_only else self.last_frame_t
        return None if last is None else self.clock() - last

    def snapshot(self) -> dict[str, Any]:
        fps = self.fps()
        with self._lock:
            return {
                "fps": round(fps, 2),
                "frames": self.frames,
                "no_signal": self.no_signal,
                "no_signal_frames": self.no_signal_frames,
                "latency_ms": {k: round(v, 2) for k, v in self.last_ms.items()},
                "counters": {
                    (m if lab is None else f"{m}:{lab}"): v for (m, lab), v in self.counters.items()
                },
                "events": EVENTS.snapshot(),
                "info": dict(self.info),
                # the banner often quotes an exception, and what reads the snapshot (/stats.json, the
                # viewer page, /healthz, systemd's status line) carries it out of the process
                "banner": privacy.public_text(self.banner),
                "frame_age_s": self.frame_age_s(),
                "ai": privacy.redact_tree(dict(self.ai)),
                "recording": self.recording,
            }

    def metrics_snapshot(self) -> MetricsSnapshot:
        """Histograms, counters, info and states copied under one lock acquisition."""
        with self._lock:
            return MetricsSnapshot(
                frames=self.frames,
                no_signal=self.no_signal,
                hists={k: (list(h.counts), h.total, h.sum, h.buckets) for k, h in self.hist.items()},
                counters=dict(self.counters),
                info=dict(self.info),
                summaries={k: dict(v) for k, v in self.summaries.items()},
                ai=dict(self.ai),
                recording=self.recording,
            )

    def recorder_problem(self) -> str:
        """The recorder's state when it is paused or failed (degraded service), else ""."""
        return self.recording if RECORDER_STATES.get(self.recording) in ("paused", "failed") else ""

    def status_line(self) -> str:
        """One line for systemd's STATUS=: fps, latency, backend, faults."""
        snap = self.snapshot()
        if snap["no_signal"]:
            return f"NO SIGNAL from capture, reconnecting ({snap['no_signal_frames']} frames shown)"
        lat = snap["latency_ms"]
        ai = snap["ai"]
        parts = (
            [f"AI {ai['state']}" + (f" {ai['detail']}" if ai.get("detail") else "")]
            if ai.get("state")
            else []
        )
        parts += [f"{snap['fps']:.1f} fps", f"latency {lat.get('end_to_end', float('nan')):.1f} ms"]
        if "backend" in lat:
            parts.append(f"backend {lat['backend']:.1f} ms")
        if "backend" in snap["info"]:
            parts.append(snap["info"]["backend"])
        if snap["banner"]:
            parts.append(snap["banner"])
        if self.recorder_problem():
            parts.append(self.recorder_problem())
        return ", ".join(parts)
