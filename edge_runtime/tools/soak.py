"""`sonomap soak`: replay a clip in a loop for N minutes and check that memory stays flat.

Input: a clip (default: a synthetic scanner-screen clip made from a real BUSI image), a
model. Runs the real replay pipeline (looping, real-time paced by default) with the
service observers attached (HTTP server on an ephemeral loopback port, sd_notify observer,
an optional mp4 recording), samples the process RSS every ``--sample-s`` seconds, and
reports the growth between the window just after warm-up and the last window.
Output: a JSON report (``--json``) and one summary line; exit status 1 when RSS grew by
``--max-growth`` (default 2%) or more.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import threading
import time
from pathlib import Path
from statistics import median

from edge_runtime.memory import rss_bytes
from edge_runtime.units import DEFAULT_FPS

log = logging.getLogger("sonomap.soak")

MIB = 1024 * 1024
SECONDS_PER_MINUTE = 60.0
WARMUP_FRACTION = 0.2  # ignore the first 20% (allocator pools, caches and stat windows fill)
WINDOW_FRACTION = 0.1  # compare the median of the first and last 10% after warm-up
DEFAULT_MAX_GROWTH = 0.02
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
    from edge_runtime import config as cfg
    from edge_runtime.pipeline.graph import Pipeline
    from edge_runtime.service.http_server import make_http_observer
    from edge_runtime.service.watchdog import ServiceObserver
    from edge_runtime.sources import synthetic

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


def cmd_soak(args) -> int:
    report = run_soak(
        args.minutes,
        args.input,
        args.model,
        realtime=not args.fast,
        record=not args.no_record,
        sample_s=args.sample_s,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    g = report["growth"]
    ok = g is not None and g < args.max_growth
    print(
        f"soak {report['minutes']:g} min: {report['frames']} frames at {report['fps']:.1f} fps, "
        f"backend {report['backend']}, errors {report['errors']}; RSS {report['baseline_mib']} MiB after "
        f"warm-up -> {report['final_mib']} MiB at the end (growth {100 * (g or 0):+.2f}%, limit "
        f"{100 * args.max_growth:.0f}%), max {report['rss_max_mib']} MiB: {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


def register(sub) -> None:
    p = sub.add_parser(
        "soak",
        help="replay a clip in a loop for N minutes and check RSS stays flat",
        description="Soak test: the replay pipeline loops a clip (real-time paced) with the HTTP "
        "and sd_notify observers and a recording; RSS is sampled and its growth after warm-up "
        "must stay under --max-growth.",
    )
    p.add_argument("input", nargs="?", default=None, help="clip to loop (default: a synthetic 640x480 clip)")
    p.add_argument("--minutes", type=float, default=10.0, help="duration (default 10)")
    p.add_argument("--model", help="model (default: the shipped default model)")
    p.add_argument("--fast", action="store_true", help="as fast as possible instead of real-time pacing")
    p.add_argument("--no-record", action="store_true", help="do not record the overlay mp4 meanwhile")
    p.add_argument("--sample-s", type=float, default=1.0, help="RSS sampling period (default 1 s)")
    p.add_argument(
        "--max-growth", type=float, default=DEFAULT_MAX_GROWTH, help="allowed RSS growth (0.02 = 2%%)"
    )
    p.add_argument("--json", help="write the report (with the RSS trace) as JSON")
    p.set_defaults(func=cmd_soak)


def main(argv: list[str] | None = None) -> int:
    """``python -m edge_runtime.tools.soak`` works too, without the sonomap CLI."""
    parser = argparse.ArgumentParser(prog="python -m edge_runtime.tools.soak")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["soak", *(argv if argv is not None else __import__("sys").argv[1:])])
    logging.basicConfig(level=logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
