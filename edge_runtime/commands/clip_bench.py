"""``sonomap make-clip`` and ``sonomap bench``: a scanner-screen test clip, and the pipeline measured.

Input: the parsed arguments. Output: an mp4 clip with its ``.json`` (ROI, mm scale), or the
benchmark's report (printed, and as JSON with ``--json``).
The bench is imported when it runs, so `sonomap --help` does not load it.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge_runtime.commands.options import add_common_options, runtime_config
from edge_runtime.errors import ConfigError
from edge_runtime.sources import synthetic
from edge_runtime.units import DEFAULT_FPS


def cmd_make_clip(args) -> int:
    width, _, height = args.size.partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise ConfigError(f"--size: expected WxH, got {args.size!r}")
    image = Path(args.image) if args.image else synthetic.default_image()
    info = synthetic.write_clip(
        image,
        Path(args.out),
        args.frames,
        args.fps,
        int(width),
        int(height),
        args.seed,
        args.noise,
        args.patient_line,
    )
    Path(args.out).with_suffix(".json").write_text(json.dumps(info, indent=2))
    print(
        f"wrote {args.out}: {args.frames} frames at {args.fps} fps, ROI {','.join(map(str, info['roi']))} "
        f"({info['mm_per_pixel']:.4f} mm/px) from {image.name}"
    )
    return 0


def cmd_bench(args) -> int:
    if args.source and args.source.startswith("igtl://"):
        from edge_runtime.tools.igtl_bench import run_igtl_bench  # deferred for --help (module doc)

        report = run_igtl_bench(args.source, runtime_config(args), args.frames)
    else:
        from edge_runtime.tools.bench import run_bench  # deferred for --help (module doc)

        report = run_bench(args)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


def register(sub) -> None:
    """Add ``make-clip`` and ``bench`` to the top-level parser's subparsers."""
    p = sub.add_parser(
        "make-clip",
        help="make a scanner-screen replay clip from a real BUSI image with probe motion",
        description="Render a real ultrasound image into a dark 1080p scanner screen with text, "
        "moving as under a handheld probe, and write H.264 mp4 (+ a .json with the ROI and mm scale).",
    )
    p.add_argument("--image", help="grayscale ultrasound PNG (default: a vendored BUSI malignant image)")
    p.add_argument("--out", required=True, help="mp4 to write")
    p.add_argument("--frames", type=int, default=90, help="number of frames (default 90)")
    p.add_argument("--fps", type=int, default=int(DEFAULT_FPS))
    p.add_argument("--size", default="1920x1080", help="screen size WxH")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--noise",
        type=float,
        default=synthetic.NOISE_SIGMA,
        help=f"frame-independent noise in grey levels (default {synthetic.NOISE_SIGMA:g}: analogue capture; "
        "0: digital scanner output)",
    )
    p.add_argument(
        "--patient-line",
        metavar="TEXT",
        help="burn this patient line (name, ID, birth date) into the "
        "screen above the image, as scanners do, to check de-identification (its box goes in the .json)",
    )
    p.set_defaults(func=cmd_make_clip)

    p = sub.add_parser(
        "bench",
        help="per-stage latency, throughput and the naive-loop comparison",
        description="Replay INPUT through the pipeline and, in the same run, through a naive "
        "sequential loop and the backend alone; print p50/p95/p99/max per stage and the ratios.",
    )
    p.add_argument(
        "input", nargs="?", default=None, help="clip to replay (default: a generated 1080p synthetic clip)"
    )
    p.add_argument("--frames", type=int, default=120, help="frames per measurement")
    p.add_argument("--json", help="write the report as JSON")
    p.add_argument(
        "--source",
        help="live source to measure (default: synthetic 30 fps; igtl://... for OpenIGTLink round trips)",
    )
    p.add_argument(
        "--live-seconds", type=float, default=6.0, help="length of the live measurement (0 = skip)"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat backend-only / naive / pipeline this many times, "
        "interleaved, and report the median ratios (steadier on a shared machine)",
    )
    p.add_argument(
        "--compare-bgr", action="store_true", help="also time the pipeline forced onto its BGR path"
    )
    add_common_options(p)
    p.set_defaults(func=cmd_bench)
