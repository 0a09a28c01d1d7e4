"""Per-stage latency and throughput bookkeeping shared by replay, live and bench.

Each stage records milliseconds per frame; ``snapshot()`` reduces them to
p50/p95/p99/max (over the last ``WINDOW`` samples, so a months-long run stays bounded).
Thread-safe: stages run on different threads.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

WINDOW = 4096  # samples kept per stage
FPS_WINDOW_S = 2.0  # the HUD's fps is measured over the last 2 s
PERCENTILES = (50, 95, 99)


def summarise(samples) -> dict:
    """ms samples -> {n, mean, p50, p95, p99, max} (empty -> n=0 only)."""
    a = np.asarray(list(samples), dtype=np.float64)
    if a.size == 0:
        return {"n": 0}
    p = np.percentile(a, PERCENTILES)
    return {
        "n": int(a.size),
        "mean": round(float(a.mean()), 3),
        "p50": round(float(p[0]), 3),
        "p95": round(float(p[1]), 3),
        "p99": round(float(p[2]), 3),
        "max": round(float(a.max()), 3),
    }


class Stats:
    def __init__(self):
        self._lock = threading.Lock()
        self._stages: dict[str, deque] = {}
        self._recent: deque = deque()
        self.started = time.monotonic()
        self.frames = 0  # frames rendered (shown/written)
        self.inferred = 0  # frames with a prediction
        self.drops = 0  # frames captured but never shown (live) or not inferred
        self.errors = 0  # backend faults (raise / NaN)
        self.sink_errors = 0
        self.last_frame_monotonic: float | None = None
        self.state = "starting"
        self.backend: dict = {}
        self.last_error = ""
        self.recording = ""  # the recorder's state for the HUD, /healthz and /metrics (sinks.recorder_state)

    def record(self, stage: str, ms: float) -> None:
        with self._lock:
            self._stages.setdefault(stage, deque(maxlen=WINDOW)).append(float(ms))

    def frame_done(self) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames += 1
            self.last_frame_monotonic = now
            self._recent.append(now)
            while self._recent and now - self._recent[0] > FPS_WINDOW_S:
                self._recent.popleft()

    def recent_fps(self) -> float:
        with self._lock:
            if len(self._recent) < 2:
                return 0.0
            span = self._recent[-1] - self._recent[0]
            return (len(self._recent) - 1) / span if span > 0 else 0.0

    def latest(self, stage: str) -> float | None:
        with self._lock:
            d = self._stages.get(stage)
            return d[-1] if d else None

    def snapshot(self) -> dict:
        with self._lock:
            stages = {k: list(v) for k, v in self._stages.items()}
            elapsed = max(time.monotonic() - self.started, 1e-9)
            out = {
                "frames": self.frames,
                "inferred": self.inferred,
                "drops": self.drops,
                "errors": self.errors,
                "sink_errors": self.sink_errors,
                "elapsed_s": round(elapsed, 3),
                "fps": round(self.frames / elapsed, 3),
                "backend": dict(self.backend),
                "last_frame_monotonic": self.last_frame_monotonic,
                "state": self.state,
                "last_error": self.last_error,
                "recording": self.recording,
            }
        out["recent_fps"] = round(self.recent_fps(), 3)
        out["latency_ms"] = {k: summarise(v) for k, v in stages.items()}
        return out
