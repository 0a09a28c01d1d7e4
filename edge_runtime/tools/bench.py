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
Then a short live run (synthetic 30 fps source, or ``--source``) for capture-to-display latency;
``--live-seconds 0`` skips it, and the report's ``live`` and ``live_budget_ms`` are then None (JSON null).
Peak RSS is reported twice: the bench process (which also holds the decoded ROIs of measurement 1)
and ``sonomap replay`` of the same clip and settings in a process of its own, the runtime's footprint.
Prints per-stage p50/p95/p99/max, throughput and the ratios; returns them as a dict.
This module runs the rounds and assembles the report; the measurements are in
:mod:`edge_runtime.tools.bench_runs`, the printing in :mod:`edge_runtime.tools.bench_report`.
"""

from __future__ import annotations

import resource
import tempfile
from pathlib import Path

import numpy as np

from edge_runtime import config as cfg
from edge_runtime import source_kinds
from edge_runtime.backends import backend_from_config
from edge_runtime.manifest import load_manifest
from edge_runtime.sources import synthetic
from edge_runtime.tools.bench_report import print_report
from edge_runtime.tools.bench_runs import (
    backend_only,
    capture_cost,
    decode_rois,
    live_run,
    naive_loop,
    pipeline_replay,
    runtime_peak_rss,
)
from edge_runtime.units import DEFAULT_FPS, MS_PER_S

KIB_PER_GIB = 1024**2
LIVE_SECONDS = 6.0
LIVE_BUDGET_FRAMES = 1.5  # live capture-to-display budget: backend p50 + this many frame intervals


def live_measurement(config, source: str | None, seconds: float) -> tuple[dict | None, float | None]:
    """The live run's summary and its capture-to-display budget (backend p50 + LIVE_BUDGET_FRAMES
    frame intervals), or (None, None) for ``seconds`` 0: a skipped run is reported as skipped, not
    as a measurement of 0 frames/s."""
    if seconds <= 0:
        return None, None
    live = live_run(config, source, seconds)
    backend_p50 = live["latency_ms"].get("backend", {}).get("p50", float("nan"))
    return live, backend_p50 + LIVE_BUDGET_FRAMES * MS_PER_S / DEFAULT_FPS


def run_bench(args) -> dict:
    """The measurements of ``args`` (see module docstring), printed and returned; the clips the rounds
    write go to a scratch folder removed at the end, whatever the outcome (a clip a round, in MB)."""
    with tempfile.TemporaryDirectory(prefix="sonomap-bench-") as scratch:
        return _measure(args, Path(scratch))


def _measure(args, work: Path) -> dict:
    config = cfg.merge(
        cfg.load_config(args.config),
        {
            "roi": {"rect": args.roi, "mm_per_pixel": getattr(args, "mm_per_pixel", None)},
            "inference": {"model": args.model, "backend": args.backend, "device": args.device},
            "overlay": {"ema": args.ema},
        },
    )
    model = cfg.resolve_model(config)
    manifest = load_manifest(model)
    clip = args.input
    if clip is None:
        clip = str(work / "clip.mp4")
        synthetic.write_clip(synthetic.default_image(), Path(clip), args.frames, int(DEFAULT_FPS))
    rois, roi = decode_rois(clip, args.frames, config.roi.rect)

    def warm_backend():
        made = backend_from_config(config.inference, model, manifest)
        made.model_path, made.selected_because = model, "bench"
        made.warmup(roi.h, roi.w)
        return made

    backend = warm_backend()
    # the report may be shared as a measurement: the clip by its kind and the model by its manifest's
    # name and digest, never a path (a recording, or a folder above it, may be named after a patient)
    report = {
        "clip": source_kinds.SYNTHETIC if args.input is None else source_kinds.VIDEO_FILE,
        "frames": len(rois),
        "roi": roi.as_list(),
        "model": manifest.name,
        "model_sha256": manifest.sha256,
        "backend": backend.describe(),
        "rounds": [],
    }
    compare_bgr = bool(getattr(args, "compare_bgr", False))
    for _ in range(args.rounds):  # >= 1: the parser refuses fewer (edge_runtime/cli_args.py)
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
    report["live"], report["live_budget_ms"] = live_measurement(config, args.source, seconds)
    report["rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_GIB
    report["runtime_rss_gib"] = runtime_peak_rss(args, clip, len(rois), work)
    print_report(report, args.source, seconds, manifest.name)
    return report
