"""The measurements of `sonomap bench` (:mod:`edge_runtime.tools.bench`), each over the same frames.

- :func:`backend_only`: the model on pre-decoded ROIs (:func:`decode_rois`), nothing else;
- :func:`naive_loop`: decode -> BGR -> infer -> full-frame blend -> encode, one frame after another;
- :func:`pipeline_replay`: the pipeline's replay schedule around ``run()`` with a warmed backend, its
  CPU split by thread (:mod:`edge_runtime.tools.threadcpu`) and the CPU-bound ceiling (:func:`cpu_ceiling`);
- :func:`capture_cost`: the pipeline without and with the biopsy-capture observer;
- :func:`live_run`: a short live run; :func:`runtime_peak_rss`: ``sonomap replay`` in its own process.
Each returns a dict of frames/s, CPU ms a frame (all threads) and per-stage latency summaries.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from edge_runtime import config as cfg
from edge_runtime import source_kinds
from edge_runtime.biopsy.observer import CaptureObserver
from edge_runtime.config_schema import RuntimeConfig
from edge_runtime.cpus import available_cores
from edge_runtime.errors import InputError, SonomapError
from edge_runtime.frames import check_min_size
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.preprocess import to_gray
from edge_runtime.roi import Roi, resolve_roi
from edge_runtime.sources import synthetic
from edge_runtime.stats import summarise
from edge_runtime.tools.threadcpu import ThreadCpu
from edge_runtime.units import DEFAULT_FPS, MS_PER_S

NAIVE_ALPHA = 0.4
NAIVE_BGR = (40, 40, 255)  # the overlay colour of the naive loop (the manifest cancer red)


def decode_rois(path: str, limit: int, rect) -> tuple[list[np.ndarray], Roi]:
    """The clip's first ``limit`` frames as gray ROIs (the ROI resolved on the first frame).
    Frame by frame, so the bench never holds the full 1080p frames: its peak RSS is the runtime's."""
    rois, roi = [], None
    try:
        with av.open(path) as c:
            for vf in c.decode(c.streams.video[0]):
                bgr = vf.to_ndarray(format="bgr24")
                roi = roi or resolve_roi(rect, bgr)
                rois.append(np.ascontiguousarray(to_gray(roi.crop(bgr))))
                if len(rois) >= limit:
                    break
    except (av.FFmpegError, OSError, IndexError, UnicodeDecodeError) as exc:
        # empty, text or truncated file, no video stream: one line naming the clip, as replay's
        where = f" at frame {len(rois)}" if rois else ""
        reason = getattr(exc, "strerror", None) or ("no video stream" if isinstance(exc, IndexError) else exc)
        raise InputError(f"{path}: unreadable video{where} ({reason})") from exc
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
        check_min_size(vf.width, vf.height, path, n)  # as the pipeline refuses it, before the encoder
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
        # 4:2:0 needs even sides: an odd clip's last row (or column) goes
        bgr = bgr[: bgr.shape[0] & ~1, : bgr.shape[1] & ~1]
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


def cpu_ceiling(pipeline: dict) -> tuple[int, float, float]:
    """(this process's cores, CPU ms a frame over all threads, the frame rate no schedule can beat
    at that cost)."""
    cores, total = available_cores(), sum(pipeline["cpu_by_thread_ms"].values())
    return cores, total, (cores * MS_PER_S / total if total else float("nan"))


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
    """A ``seconds`` long live run of ``source`` (default: the synthetic 30 fps source) -> its summary."""
    config = cfg.merge(
        config,
        {
            "source": {"input": source or source_kinds.SYNTHETIC, "fps": DEFAULT_FPS},
            "live": {"duration_s": seconds},
            "sinks": {"window": False},
        },
    )
    pipeline = Pipeline(config)
    pipeline.live_schedule = True  # a file too, as 'sonomap live' plays it: paced, newest frame wins
    return pipeline.run()


def capture_cost(
    args, config: RuntimeConfig, clip: str, frames: int, work: Path, warm_backend, manifest, model, roi
) -> dict:
    """The pipeline (BGR path: an observer needs BGR) without and with the biopsy-capture observer,
    and the observer's own CPU per frame on the render path. Without a given scale the ROI is taken
    to image the synthetic clip's depth (the detector needs millimetres)."""
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
        "captures": observer.book.captures,
        "without_cpu_ms_per_frame": without["cpu_ms_per_frame"],
        "with_cpu_ms_per_frame": with_cases["cpu_ms_per_frame"],
        "without_fps": without["fps"],
        "with_fps": with_cases["fps"],
    }
