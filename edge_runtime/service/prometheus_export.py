"""/metrics: the live service statistics as Prometheus text, through ``prometheus_client``.

Input: a :class:`LiveStats` (read through its public snapshot methods) and the
process-wide :data:`EVENTS` counters. Output: Prometheus text exposition 0.0.4, every
series prefixed ``sonomap_``. No files, no I/O besides reading this process's /proc
memory figures.

A custom collector on a private registry, not the library's global one: each scrape
builds its families from one snapshot of the runtime's own counters, so nothing else in
the process (or a second runtime in a test) can add or clash with series.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from edge_runtime.aistate import STATES as AI_STATES
from edge_runtime.live_stats import (
    COUNT_EVENTS,
    EVENTS,
    RECORDER_STATES,
    SUMMARY_QUANTILES,
    LiveStats,
    MetricsSnapshot,
)
from edge_runtime.memory import peak_rss_bytes, rss_bytes
from edge_runtime.units import MS_PER_S

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
RECORDER_STATE_NAMES = ("off", "recording", "paused", "failed")
NO_FRAME_AGE_S = -1  # sonomap_last_frame_age_seconds before the first frame


class SonomapCollector(Collector):
    """Builds every ``sonomap_`` family from one LiveStats/EVENTS snapshot per scrape."""

    def __init__(self, live: LiveStats):
        self.live = live

    def collect(self) -> Iterator[Metric]:
        live = self.live
        fps = live.fps()
        age = live.frame_age_s(signal_only=False)
        snap = live.metrics_snapshot()
        events = EVENTS.snapshot()
        yield GaugeMetricFamily(
            "sonomap_fps", "Rendered frames per second over the last 2 s.", value=round(fps, 3)
        )
        # Counter families are named without _total: the library appends it.
        yield CounterMetricFamily(
            "sonomap_frames_rendered", "Frames rendered since start.", value=snap.frames
        )
        yield GaugeMetricFamily(
            "sonomap_no_signal",
            "1 while the capture device is gone and NO SIGNAL is shown.",
            value=int(snap.no_signal),
        )
        yield GaugeMetricFamily(
            "sonomap_last_frame_age_seconds",
            "Seconds since the last rendered frame.",
            value=NO_FRAME_AGE_S if age is None else round(age, 3),
        )
        yield _latency_histogram(snap)
        yield _stage_quantiles(snap)
        yield CounterMetricFamily(
            "sonomap_frames_dropped",
            "Frames dropped (live: superseded before inference).",
            value=snap.counters.get(("frames_dropped", None), 0),
        )
        yield _errors(snap, events)
        for name, (metric, text) in COUNT_EVENTS.items():
            yield CounterMetricFamily(metric.removesuffix("_total"), text, value=events.get(name, 0))
        yield from _states(snap)
        info = GaugeMetricFamily(
            "sonomap_backend_info", "Inference backend in use (value is always 1).", labels=sorted(snap.info)
        )
        info.add_metric([snap.info[k] for k in sorted(snap.info)], 1)
        yield info
        # A cart runs for days: a growing resident size is the early sign of a leak.
        yield GaugeMetricFamily(
            "sonomap_resident_memory_bytes", "Resident memory of the runtime process.", value=rss_bytes()
        )
        yield GaugeMetricFamily(
            "sonomap_peak_resident_memory_bytes",
            "Peak resident memory of the runtime process.",
            value=peak_rss_bytes(),
        )


def _latency_histogram(snap: MetricsSnapshot) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "sonomap_latency_seconds", "Per-stage latency of rendered frames.", labels=["stage"]
    )
    for stage, (counts, total, total_sum, uppers) in sorted(snap.hists.items()):
        buckets = [(floatToGoString(upper), n) for upper, n in zip(uppers, counts, strict=True)]
        family.add_metric([stage], buckets + [("+Inf", total)], sum_value=round(total_sum, 6))
    return family


def _stage_quantiles(snap: MetricsSnapshot) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "sonomap_stage_latency_quantile_seconds",
        "Runtime per-stage latency quantiles over its last 4096 samples per stage "
        "(decode, roi, inference, overlay, sinks, ...).",
        labels=["stage", "quantile"],
    )
    for stage, summ in sorted(snap.summaries.items()):
        if summ.get("n"):
            for key, q in SUMMARY_QUANTILES:
                family.add_metric([stage, q], round(float(summ[key]) / MS_PER_S, 6))
    return family


def _errors(snap: MetricsSnapshot, events: dict[str, int]) -> CounterMetricFamily:
    errors = {lab: v for (m, lab), v in snap.counters.items() if m == "errors"}
    for name, value in events.items():
        if name not in COUNT_EVENTS:
            errors[name] = errors.get(name, 0) + value
    errors.setdefault("backend", 0)
    family = CounterMetricFamily(
        "sonomap_errors", "Faults by kind (backend, corrupt_input, source_lost, ...).", labels=["kind"]
    )
    for kind, value in sorted(errors.items()):
        family.add_metric([kind], value)
    return family


def _states(snap: MetricsSnapshot) -> Iterator[Metric]:
    ai_state = GaugeMetricFamily(
        "sonomap_ai_state",
        "The AI state drawn on the newest frame (1 for the current one).",
        labels=["state"],
    )
    for state in AI_STATES:
        ai_state.add_metric([state], int(snap.ai.get("state") == state))
    yield ai_state
    yield CounterMetricFamily(
        "sonomap_inference_stalls",
        "Inference calls that passed inference.deadline_ms.",
        value=snap.ai.get("stalls", 0),
    )
    current = RECORDER_STATES.get(snap.recording, "off")
    recorder = GaugeMetricFamily(
        "sonomap_recorder_state",
        "Recorder state: 1 on the current state (paused: disk below "
        "sinks.min_free_gb; failed: stopped by an error).",
        labels=["state"],
    )
    for state in RECORDER_STATE_NAMES:
        recorder.add_metric([state], int(state == current))
    yield recorder


def render_prometheus(live: LiveStats) -> str:
    """Prometheus text exposition format 0.0.4, every series prefixed ``sonomap_``."""
    # auto_describe=False: the registry would otherwise call collect() once at registration
    # to learn the names; one collector on a private registry cannot clash with anything.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SonomapCollector(live))
    return generate_latest(registry).decode("utf-8")
