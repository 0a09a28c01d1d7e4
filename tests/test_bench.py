"""`sonomap bench` runs all three measurements in one process and reports the ratios.
(Numbers are not asserted: performance is a benchmark, not a timed test.)"""

from __future__ import annotations

import json
import os

import pytest
from cli import sonomap
from runtime_model import dark_onnx


def test_bench_reports_stages_ratios_and_naive_loop(tmp_path):
    clip = tmp_path / "clip.mp4"
    sonomap("make-clip", "--out", clip, "--frames", 8, "--size", "640x360")
    out = sonomap(
        "bench",
        clip,
        "--model",
        dark_onnx(),
        "--frames",
        8,
        "--live-seconds",
        1.5,
        "--json",
        tmp_path / "b.json",
    )
    for text in (
        "backend only",
        "naive sequential loop",
        "pipeline replay",
        "ratio pipeline / backend-only",
        "ratio pipeline / naive loop",
        "capture-to-display p99",
        "peak RSS",
        "CPU-bound ceiling",
    ):
        assert text in out.stdout
    report = json.loads((tmp_path / "b.json").read_text())
    # a shareable measurement: the clip by kind, the model by manifest name and digest, no path
    assert report["clip"] == "video file" and report["model_sha256"]
    assert str(tmp_path) not in (tmp_path / "b.json").read_text() and "/" not in report["model"]
    assert report["frames"] == 8 and report["pipeline"]["frames"] == 8 and report["naive"]["frames"] == 8
    for stage in ("decode", "infer", "blend", "encode"):
        assert {"p50", "p95", "p99", "max"} <= set(report["naive"]["latency_ms"][stage])
    assert report["ratios"]["pipeline_vs_backend_only"] > 0 and report["ratios"]["pipeline_vs_naive"] > 0
    assert report["live"]["latency_ms"]["capture_to_display"]["n"] > 0
    # The replay's threads by name; their CPU adds up to the ceiling's denominator. (An 8-frame run is
    # too short for /proc's 10 ms ticks and the 50 ms sampler to see every thread: those are unattributed.)
    pipeline = report["pipeline"]
    names = set(pipeline["cpu_by_thread_ms"])
    assert names and all(
        n in {"inference", "decode", "sinks", "sink-video", "unattributed"}
        or n.startswith(("render_", "native:"))
        for n in names
    ), names
    assert abs(sum(pipeline["cpu_by_thread_ms"].values()) - pipeline["cpu_thread_sum_ms"]) < 0.1
    assert pipeline["cpu_bound_ceiling_fps"] == pytest.approx(
        pipeline["cpu_cores"] * 1000 / pipeline["cpu_thread_sum_ms"]
    )
    assert pipeline["cpu_cores"] == len(os.sched_getaffinity(0))
    assert 0 < report["rss_gib"] < 4
    # The runtime alone, in its own process: it never holds the bench's decoded ROIs.
    assert 0.05 < report["runtime_rss_gib"] < report["rss_gib"]
