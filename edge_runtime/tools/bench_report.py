"""The printed report of `sonomap bench` (:mod:`edge_runtime.tools.bench`): per-stage p50/p95/p99/max,
throughput, the CPU-bound ceiling and the ratios against their targets, from the report dict."""

from __future__ import annotations

from edge_runtime.source_kinds import public_source

TARGET_VS_BACKEND_ONLY = 0.80
TARGET_VS_NAIVE = 1.30
TARGET_RUNTIME_RSS_GIB = 1.5
TARGET_OBSERVER_CPU_MS = 2
LIVE_SKIPPED = "skipped (--live-seconds 0)"


def _print_stages(title: str, fps: float, latency: dict, cpu_ms: float | None = None) -> None:
    cpu = f" (CPU {cpu_ms:.1f} ms/frame, all threads)" if cpu_ms is not None else ""
    print(f"{title}: {fps:.2f} frames/s{cpu}")
    for stage, s in latency.items():
        if s.get("n"):
            print(
                f"  {stage:<19} p50 {s['p50']:8.2f}  p95 {s['p95']:8.2f}  p99 {s['p99']:8.2f}  max {s['max']:8.2f} ms"
            )


def _print_ceiling(pipeline: dict, backend_fps: float) -> None:
    cores, total, ceiling = (
        pipeline["cpu_cores"],
        pipeline["cpu_thread_sum_ms"],
        pipeline["cpu_bound_ceiling_fps"],
    )
    print(
        "  CPU by thread, ms/frame: "
        + ", ".join(f"{k} {v:.1f}" for k, v in pipeline["cpu_by_thread_ms"].items())
    )
    print(
        f"  CPU-bound ceiling at this CPU cost per frame: {cores} cores x 1000 / {total:.1f} ms = {ceiling:.1f} frames/s "
        f"(= {ceiling / backend_fps:.2f} x backend-only); the pipeline reached {pipeline['fps'] / ceiling:.0%} of it"
    )


def _print_live_budget(live: dict | None, budget_ms: float | None) -> None:
    if live is None:  # no live run: no capture-to-display to hold against the budget
        print(f"live capture-to-display vs budget: {LIVE_SKIPPED}")
        return
    c2d = live["latency_ms"].get("capture_to_display", {}).get("p99", float("nan"))
    print(
        f"live capture-to-display p99 {c2d:.1f} ms vs budget backend p50 + 1.5 frames = "
        f"{budget_ms:.1f} ms; live drops {live['drops']}"
    )


def print_report(report: dict, source: str | None, seconds: float, model_name: str) -> None:
    """Print ``report`` (:func:`edge_runtime.tools.bench.run_bench`'s dict); ``source``/``seconds``:
    the live run's, ``model_name``: the manifest's."""
    _, _, roi_w, roi_h = report["roi"]
    b, n, p = report["backend_only"]["fps"], report["naive"]["fps"], report["pipeline"]["fps"]
    live = report["live"]  # None: skipped with --live-seconds 0
    print(
        f"clip {report['clip']}: {report['frames']} frames, ROI {roi_w}x{roi_h}, model {model_name}, "
        f"backend {report['backend']}"
    )
    _print_stages(
        "backend only", b, report["backend_only"]["latency_ms"], report["backend_only"]["cpu_ms_per_frame"]
    )
    print(f"  masks cover {100 * report['backend_only']['mask_coverage']:.1f} % of the ROI on average")
    _print_stages(
        "naive sequential loop", n, report["naive"]["latency_ms"], report["naive"]["cpu_ms_per_frame"]
    )
    path = "YUV-native" if report["pipeline"]["yuv_path"] else "BGR"
    _print_stages(
        f"pipeline replay ({path} path)",
        p,
        report["pipeline"]["latency_ms"],
        report["pipeline"]["cpu_ms_per_frame"],
    )
    _print_ceiling(report["pipeline"], b)
    if "pipeline_bgr" in report:
        _print_stages(
            "pipeline replay (forced BGR path)",
            report["pipeline_bgr"]["fps"],
            report["pipeline_bgr"]["latency_ms"],
            report["pipeline_bgr"]["cpu_ms_per_frame"],
        )
    if live is None:
        print(f"live: {LIVE_SKIPPED}")
    else:
        _print_stages(
            f"live ({public_source(source) if source else 'synthetic 30 fps'}, {seconds:.0f} s; shown frames/s)",
            live["fps"],
            live["latency_ms"],
        )
    rounds = report["rounds"]
    if len(rounds) > 1:
        print(
            f"{len(rounds)} interleaved rounds; per round pipeline/backend-only: "
            + ", ".join(f"{r['ratios']['pipeline_vs_backend_only']:.2f}" for r in rounds)
            + "; pipeline/naive: "
            + ", ".join(f"{r['ratios']['pipeline_vs_naive']:.2f}" for r in rounds)
            + " (medians below)"
        )
    if "bgr_pipeline_vs_backend_only" in report["ratios"]:
        print(
            f"ratio BGR-path pipeline / backend-only:   {report['ratios']['bgr_pipeline_vs_backend_only']:.2f}"
        )
    print(
        f"ratio pipeline / backend-only throughput: {report['ratios']['pipeline_vs_backend_only']:.2f} "
        f"(target >= {TARGET_VS_BACKEND_ONLY:.2f})"
    )
    print(
        f"ratio pipeline / naive loop throughput:   {report['ratios']['pipeline_vs_naive']:.2f} (target >= {TARGET_VS_NAIVE:.2f})"
    )
    _print_live_budget(live, report["live_budget_ms"])
    print(
        f"peak RSS of the runtime (sonomap replay, own process) {report['runtime_rss_gib']:.2f} GiB "
        f"(target <= {TARGET_RUNTIME_RSS_GIB}); of this bench process {report['rss_gib']:.2f} GiB"
    )
    if "capture" in report:
        c = report["capture"]
        print(
            f"biopsy capture (--cases): fire detection + expected yield {c['observer_cpu_ms_per_frame']:.2f} ms CPU/frame "
            f"(target <= {TARGET_OBSERVER_CPU_MS}); pipeline (BGR path) CPU {c['without_cpu_ms_per_frame']:.1f} -> "
            f"{c['with_cpu_ms_per_frame']:.1f} ms/frame, {c['without_fps']:.1f} -> {c['with_fps']:.1f} frames/s; "
            f"{c['captures']} captures on this clip"
        )
