"""`sonomap bench`: where the time goes, measured in one run on this machine.

Three measurements over the same frames (a 1080p scanner-screen clip, ROI auto-detected):
1. backend only: the model on pre-decoded ROIs, nothing else;
2. naive loop: decode -> BGR -> infer -> full-frame blend -> encode (BGR into libx264), one
   frame after another, the way a first prototype would do it;
3. the pipeline's replay schedule (threads overlap decode | inference | overlay+encode; a yuv420p
   clip stays in the decoder's YUV planes: Y-plane ROI, blend in Y/U/V inside the mask's box,
   encode the planes as they are), timed around ``run()`` with an already loaded and warmed
   backend, as backend-only is (model loading is not throughput);
   ``--compare-bgr`` adds the same pipeline forced onto its BGR path.
``--rounds N`` interleaves the three N times and reports the median ratios: on a shared machine
the load drifts between measurements, and interleaving exposes each to the same drift.
Each measurement also reports ``cpu_ms_per_frame`` (process CPU time, all threads, per frame): unlike
frames/s it hardly moves with other jobs' load, so it shows what a change saves on a busy machine.
The pipeline's CPU is also split by thread (:mod:`edge_runtime.tools.threadcpu`); its sum against the
process's cores is the CPU-bound ceiling of the frame rate, printed beside the measured rate.
With ``--cases DIR`` the pipeline runs again on its BGR path without and with the biopsy-capture
observer, and the observer's own CPU per frame on the render path (fire detection + expected yield) is printed.
Then a short live run (synthetic 30 fps source, or ``--source``) for capture-to-display latency.
Peak RSS is reported twice: the bench process (which also holds the decoded ROIs of measurement 1)
and ``sonomap replay`` of the same clip and settings in a process of its own, the runtime's footprint.
Prints per-stage p50/p95/p99/max, throughput and the ratios; returns them as a dict.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from edge_runtime import config as cfg
from edge_runtime.backends import backend_from_config
from edge_runtime.config_schema import RuntimeConfig
from edge_runtime.cpus import available_cores
from edge_runtime.errors import InputError, SonomapError
from edge_runtime.manifest import load_manifest
from edge_runtime.preprocess import to_gray
from edge_runtime.privacy import redact_url
from edge_runtime.roi import resolve_roi
from edge_runtime.stats import summarise
from edge_runtime.tools.threadcpu import ThreadCpu
from edge_runtime.units import DEFAULT_FPS, MS_PER_S

KIB_PER_GIB = 1024**2
LIVE_SECONDS = 6.0
NAIVE_ALPHA = 0.4
NAIVE_BGR = (40, 40, 255)  # the overlay colour of the naive loop (the manifest cancer red)


def _decode_rois(path: str, limit: int, rect) -> tuple[list[np.ndarray], object]:
    """The clip's first ``limit`` frames as gray ROIs (the ROI resolved on the first frame).
    Frame by frame, so the bench never holds the full 1080p frames: its peak RSS is the runtime's."""
    import av

    rois, roi = [], None
    with av.open(path) as c:
        for vf in c.decode(c.streams.video[0]):
            bgr = vf.to_ndarray(format="bgr24")
            roi = roi or resolve_roi(rect, bgr)
            rois.append(np.ascontiguousarray(to_gray(roi.crop(bgr))))
            if len(rois) >= limit:
                break
    if roi is None:
        raise InputError(f"{path}: no video frames to benchmark")
    return rois, roi


def _cpu_per_frame(cpu0: float, frames: int) -> float:
    return (time.process_time() - cpu0) * MS_PER_S / max(frames, 1)


def backend_only(backend, rois: list[np.ndarray]) -> dict:
    times, painted = [], 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    for gray in rois:
        t = time.perf_counter()
        prediction = backend.infer(gray)
        times.append((time.perf_counter() - t) * MS_PER_S)
        painted += np.count_nonzero(prediction.mask)
    wall = time.perf_counter() - t0
    # How much of the ROI the overlay paints: its blend and contour cost grow with it.
    coverage = painted / max(1, sum(g.size for g in rois))
    return {
        "fps": len(rois) / wall,
        "cpu_ms_per_frame": _cpu_per_frame(cpu0, len(rois)),
        "mask_coverage": coverage,
        "latency_ms": {"backend": summarise(times)},
    }


def naive_loop(path: str, backend, roi, limit: int, out: Path) -> dict:
    """decode -> BGR -> infer -> full-frame blend -> BGR encode, strictly sequential."""
    import av

    stages = {k: [] for k in ("decode", "infer", "blend", "encode")}
    src = av.open(path)
    dst = av.open(str(out), "w")
    stream = None
    n = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    it = src.decode(src.streams.video[0])
    while n < limit:
        t = time.perf_counter()
        vf = next(it, None)
        if vf is None:
            break
        bgr = vf.to_ndarray(format="bgr24")
        t1 = time.perf_counter()
        pred = backend.infer(to_gray(roi.crop(bgr)))
        t2 = time.perf_counter()
        full = np.zeros(bgr.shape[:2], np.uint8)
        roi.crop(full)[:] = pred.mask
        colour = np.zeros_like(bgr)
        colour[full > 0] = NAIVE_BGR
        blended = cv2.addWeighted(bgr, 1 - NAIVE_ALPHA, colour, NAIVE_ALPHA, 0)
        bgr = np.where(full[:, :, None] > 0, blended, bgr)
        t3 = time.perf_counter()
        if stream is None:
            stream = dst.add_stream("libx264", rate=Fraction(30))
            stream.width, stream.height, stream.pix_fmt = bgr.shape[1], bgr.shape[0], "yuv420p"
            stream.options = {"preset": "ultrafast"}
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        frame.pts = n
        for packet in stream.encode(frame):
            dst.mux(packet)
        t4 = time.perf_counter()
        for key, a, b in (("decode", t, t1), ("infer", t1, t2), ("blend", t2, t3), ("encode", t3, t4)):
            stages[key].append((b - a) * MS_PER_S)
        n += 1
    if stream is not None:
        for packet in stream.encode(None):
            dst.mux(packet)
    dst.close()
    src.close()
    wall = time.perf_counter() - t0
    return {
        "fps": n / wall,
        "frames": n,
        "cpu_ms_per_frame": _cpu_per_frame(cpu0, n),
        "latency_ms": {k: summarise(v) for k, v in stages.items()},
    }


def pipeline_replay(
    config: RuntimeConfig,
    path: str,
    limit: int,
    out: Path,
    backend=None,
    yuv: bool = True,
    observers: list | None = None,
) -> dict:
    from edge_runtime.pipeline.graph import Pipeline

    config = cfg.merge(config, {"source": {"input": path, "max_frames": limit}, "sinks": {"video": str(out)}})
    pipeline = Pipeline(config, backend=backend, observers=observers)
    pipeline.prefer_yuv = yuv
    threads = ThreadCpu(caller="inference").start()  # replay infers on the thread that calls run()
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        summary = pipeline.run()
    finally:
        threads.stop()
    summary["wall_s"] = time.perf_counter() - t0
    summary["cpu_by_thread_ms"] = threads.per_frame_ms(summary["frames"])
    summary["cpu_cores"], summary["cpu_thread_sum_ms"], summary["cpu_bound_ceiling_fps"] = cpu_ceiling(
        summary
    )
    summary["cpu_ms_per_frame"] = _cpu_per_frame(cpu0, summary["frames"])
    summary["fps"] = summary["frames"] / summary["wall_s"]
    summary["yuv_path"] = pipeline.yuv_render
    return summary


def runtime_peak_rss(args, clip: str, frames: int, work: Path) -> float:
    """Peak RSS (GiB) of ``sonomap replay`` on ``clip`` with the bench's settings, as its own process
    (from its summary: VmHWM, see :mod:`edge_runtime.memory`)."""
    summary_path, log_path = work / "rss_summary.json", work / "rss_replay.log"
    cmd = [
        sys.executable,
        "-m",
        "edge_runtime.cli",
        "replay",
        clip,
        "--out",
        str(work / "rss.mp4"),
        "--max-frames",
        str(frames),
        "--summary",
        str(summary_path),
    ]
    for flag, value in (
        ("--model", args.model),
        ("--backend", args.backend),
        ("--device", args.device),
        ("--config", args.config),
        ("--roi", args.roi),
        ("--ema", args.ema),
    ):
        if value is not None:
            cmd += [flag, str(value)]
    with open(log_path, "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    if rc:
        raise SonomapError(f"bench: the replay run for peak RSS failed (exit {rc}); see {log_path}")
    return float(json.loads(summary_path.read_text())["peak_rss_gib"])


def live_run(config: RuntimeConfig, source: str | None, seconds: float) -> dict:
    from edge_runtime.pipeline.graph import Pipeline

    config = cfg.merge(
        config,
        {
            "source": {"input": source or "synthetic", "fps": DEFAULT_FPS},
            "live": {"duration_s": seconds},
            "sinks": {"window": False},
        },
    )
    return Pipeline(config).run()


def _print_stages(title: str, fps: float, latency: dict, cpu_ms: float | None = None) -> None:
    cpu = f" (CPU {cpu_ms:.1f} ms/frame, all threads)" if cpu_ms is not None else ""
    print(f"{title}: {fps:.2f} frames/s{cpu}")
    for stage, s in latency.items():
        if s.get("n"):
            print(
                f"  {stage:<19} p50 {s['p50']:8.2f}  p95 {s['p95']:8.2f}  p99 {s['p99']:8.2f}  max {s['max']:8.2f} ms"
            )


def cpu_ceiling(pipeline: dict) -> tuple[int, float, float]:
    """(this process's cores, CPU ms a frame over all threads, the frame rate no schedule can beat
    at that cost)."""
    cores, total = available_cores(), sum(pipeline["cpu_by_thread_ms"].values())
    return cores, total, (cores * MS_PER_S / total if total else float("nan"))


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


def run_bench(args) -> dict:
    from edge_runtime.sources import synthetic

    config = cfg.merge(
        cfg.load_config(args.config),
        {
            "roi": {"rect": args.roi},
            "inference": {"model": args.model, "backend": args.backend, "device": args.device},
            "overlay": {"ema": args.ema},
        },
    )
    model = cfg.resolve_model(config)
    manifest = load_manifest(model)
    work = Path(tempfile.mkdtemp(prefix="sonomap-bench-"))
    clip = args.input
    if clip is None:
        clip = str(work / "clip.mp4")
        synthetic.write_clip(synthetic.default_image(), Path(clip), args.frames, int(DEFAULT_FPS))
    rois, roi = _decode_rois(clip, args.frames, config.roi.rect)

    def warm_backend():
        made = backend_from_config(config.inference, model, manifest)
        made.model_path, made.selected_because = model, "bench"
        made.warmup(roi.h, roi.w)
        return made

    backend = warm_backend()
    report = {
        "clip": clip,
        "frames": len(rois),
        "roi": roi.as_list(),
        "model": str(model),
        "backend": backend.describe(),
        "rounds": [],
    }
    compare_bgr = bool(getattr(args, "compare_bgr", False))
    for _ in range(max(1, int(getattr(args, "rounds", 1) or 1))):
        backend = backend or warm_backend()
        result = {
            "backend_only": backend_only(backend, rois),
            "naive": naive_loop(clip, backend, roi, len(rois), work / "naive.mp4"),
        }
        result["pipeline"] = pipeline_replay(
            config, clip, len(rois), work / "pipeline.mp4", backend
        )  # closes it
        backend = None
        if compare_bgr:
            result["pipeline_bgr"] = pipeline_replay(
                config, clip, len(rois), work / "bgr.mp4", warm_backend(), yuv=False
            )
        b, n, p = result["backend_only"]["fps"], result["naive"]["fps"], result["pipeline"]["fps"]
        result["ratios"] = {"pipeline_vs_backend_only": p / b, "pipeline_vs_naive": p / n}
        if compare_bgr:
            result["ratios"]["bgr_pipeline_vs_backend_only"] = result["pipeline_bgr"]["fps"] / b
        report["rounds"].append(result)
    # The round with the median pipeline/backend-only ratio is the one shown in full.
    ordered = sorted(report["rounds"], key=lambda r: r["ratios"]["pipeline_vs_backend_only"])
    report.update({k: v for k, v in ordered[len(ordered) // 2].items()})
    report["ratios"] = {
        k: float(np.median([r["ratios"][k] for r in report["rounds"]])) for k in report["ratios"]
    }
    if getattr(args, "cases", None):
        report["capture"] = capture_cost(
            args, config, clip, len(rois), work, warm_backend, manifest, model, roi
        )
    seconds = getattr(args, "live_seconds", LIVE_SECONDS)
    report["live"] = (
        live_run(config, args.source, seconds) if seconds > 0 else {"fps": 0.0, "drops": 0, "latency_ms": {}}
    )
    b, n, p = report["backend_only"]["fps"], report["naive"]["fps"], report["pipeline"]["fps"]
    live_lat = report["live"]["latency_ms"]
    backend_p50 = live_lat.get("backend", {}).get("p50", float("nan"))
    report["live_budget_ms"] = backend_p50 + 1.5 * MS_PER_S / DEFAULT_FPS
    report["rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_GIB
    report["runtime_rss_gib"] = runtime_peak_rss(args, clip, len(rois), work)
    print(
        f"clip {clip}: {len(rois)} frames, ROI {roi.w}x{roi.h}, model {manifest.name}, "
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
    _print_stages(
        f"live ({redact_url(args.source or 'synthetic 30 fps')}, {seconds:.0f} s; shown frames/s)",
        report["live"]["fps"],
        live_lat,
    )
    c2d = live_lat.get("capture_to_display", {}).get("p99", float("nan"))
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
        f"ratio pipeline / backend-only throughput: {report['ratios']['pipeline_vs_backend_only']:.2f} (target >= 0.80)"
    )
    print(
        f"ratio pipeline / naive loop throughput:   {report['ratios']['pipeline_vs_naive']:.2f} (target >= 1.30)"
    )
    print(
        f"live capture-to-display p99 {c2d:.1f} ms vs budget backend p50 + 1.5 frames = "
        f"{report['live_budget_ms']:.1f} ms; live drops {report['live']['drops']}"
    )
    print(
        f"peak RSS of the runtime (sonomap replay, own process) {report['runtime_rss_gib']:.2f} GiB "
        f"(target <= 1.5); of this bench process {report['rss_gib']:.2f} GiB"
    )
    if "capture" in report:
        c = report["capture"]
        print(
            f"biopsy capture (--cases): fire detection + expected yield {c['observer_cpu_ms_per_frame']:.2f} ms CPU/frame "
            f"(target <= 2); pipeline (BGR path) CPU {c['without_cpu_ms_per_frame']:.1f} -> "
            f"{c['with_cpu_ms_per_frame']:.1f} ms/frame, {c['without_fps']:.1f} -> {c['with_fps']:.1f} frames/s; "
            f"{c['captures']} captures on this clip"
        )
    return report


def capture_cost(
    args, config: RuntimeConfig, clip: str, frames: int, work: Path, warm_backend, manifest, model, roi
) -> dict:
    """The pipeline (BGR path: an observer needs BGR) without and with the biopsy-capture observer,
    and the observer's own CPU per frame on the render path. Without a given scale the ROI is taken
    to image the synthetic clip's depth (the detector needs millimetres)."""
    from edge_runtime.biopsy.observer import CaptureObserver
    from edge_runtime.sources import synthetic

    scale = config.roi.mm_per_pixel or synthetic.DEPTH_MM / roi.h
    config = cfg.merge(config, {"roi": {"mm_per_pixel": scale}})

    without = pipeline_replay(config, clip, frames, work / "nocases.mp4", warm_backend(), yuv=False)
    observer = CaptureObserver(
        Path(args.cases),
        {"name": manifest.name, "file": model.name, "sha256": manifest.sha256},
        clip,
        gauge=args.gauge,
    )
    with_cases = pipeline_replay(
        config, clip, frames, work / "cases.mp4", warm_backend(), yuv=False, observers=[observer]
    )  # closes the observer
    return {
        "observer_cpu_ms_per_frame": observer.cpu_ms_per_frame,
        "captures": observer.captures,
        "without_cpu_ms_per_frame": without["cpu_ms_per_frame"],
        "with_cpu_ms_per_frame": with_cases["cpu_ms_per_frame"],
        "without_fps": without["fps"],
        "with_fps": with_cases["fps"],
    }
