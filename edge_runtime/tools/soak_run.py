"""The soak run behind `sonomap soak` (:mod:`edge_runtime.tools.soak`): replay a clip in a loop and
sample the process RSS.

Input: a clip (default: a synthetic scanner-screen clip made from a real BUSI image), a model.
Runs the real replay pipeline (looping, real-time paced by default) with the service observers
attached (HTTP server on an ephemeral loopback port, sd_notify observer, an optional mp4
recording), samples the RSS every ``sample_s`` seconds and reports the growth between the window
just after warm-up and the last window (:func:`growth`). Output: the report dict.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from statistics import median

from edge_runtime import config as cfg
from edge_runtime.memory import rss_bytes
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.service.http_server import make_http_observer
from edge_runtime.service.watchdog import ServiceObserver
from edge_runtime.sources import synthetic
from edge_runtime.units import DEFAULT_FPS

MIB = 1024 * 1024
SECONDS_PER_MINUTE = 60.0
WARMUP_FRACTION = 0.2  # ignore the first 20% (allocator pools, caches and stat windows fill)
WINDOW_FRACTION = 0.1  # compare the median of the first and last 10% after warm-up
JOIN_MARGIN_S = 5.0
CLIP_FPS = int(DEFAULT_FPS)
CLIP_FRAMES = 3 * CLIP_FPS  # a 3 s clip, looped
CLIP_SIZE = (640, 480)


def growth(
    samples: list[tuple[float, int]],
    duration_s: float,
    warmup: float = WARMUP_FRACTION,
    window_fraction: float = WINDOW_FRACTION,
) -> dict:
    """RSS growth from the post-warm-up window to the last window of ``samples`` (t, bytes)."""
    start = duration_s * warmup
    window = max(duration_s * window_fraction, 1e-9)
    first = [b for t, b in samples if start <= t < start + window]
    last = [b for t, b in samples if t >= duration_s - window]
    if not first or not last:
        return {"baseline_mib": None, "final_mib": None, "growth": None}
    base, final = median(first), median(last)
    return {
        "baseline_mib": round(base / MIB, 2),
        "final_mib": round(final / MIB, 2),
        "growth": round((final - base) / base, 5),
    }


def run_soak(
    minutes: float,
    clip: str | None = None,
    model: str | None = None,
    realtime: bool = True,
    record: bool = True,
    sample_s: float = 1.0,
    warmup: float = WARMUP_FRACTION,
    window_fraction: float = WINDOW_FRACTION,
) -> dict:
    duration = minutes * SECONDS_PER_MINUTE
    with tempfile.TemporaryDirectory(prefix="sonomap-soak-") as tmp:
        if clip is None:
            clip = str(Path(tmp) / "clip.mp4")
            synthetic.write_clip(synthetic.default_image(), Path(clip), CLIP_FRAMES, CLIP_FPS, *CLIP_SIZE)
        sinks = {"video": str(Path(tmp) / "soak.mp4")} if record else {}
        config = cfg.build_config(
            {
                "source": {"input": clip, "loop": True, "realtime": realtime},
                "inference": {"model": model},
                "sinks": sinks,
            }
        )
        http = make_http_observer("127.0.0.1", 0, None)
        pipeline = Pipeline(config, observers=[http, ServiceObserver()])
        samples: list[tuple[float, int]] = []
        t0 = time.monotonic()

        def sampler() -> None:
            while not pipeline.stopping:
                elapsed = time.monotonic() - t0
                samples.append((elapsed, rss_bytes()))
                if elapsed >= duration:
                    pipeline.stop()
                    return
                time.sleep(sample_s)

        thread = threading.Thread(target=sampler, name="soak-sampler", daemon=True)
        thread.start()
        summary = pipeline.run()
        thread.join(timeout=sample_s + JOIN_MARGIN_S)  # it wakes every sample_s and sees the stop
    report = {
        "minutes": minutes,
        "frames": summary["frames"],
        "fps": summary["fps"],
        "errors": summary["errors"],
        "sink_errors": summary["sink_errors"],
        "backend": summary["backend"].get("backend"),
        "samples": len(samples),
        "rss_first_mib": round(samples[0][1] / MIB, 2) if samples else None,
        "rss_max_mib": round(max(b for _, b in samples) / MIB, 2) if samples else None,
        **growth(samples, duration, warmup, window_fraction),
        "rss_trace_mib": [(round(t, 1), round(b / MIB, 2)) for t, b in samples],
    }
    return report
