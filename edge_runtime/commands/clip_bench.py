"""``sonomap make-clip`` and ``sonomap bench``: a scanner-screen test clip, and the pipeline measured.

Input: the parsed arguments. Output: an mp4 clip with its ``.json`` (ROI, mm scale), or the
benchmark's report (printed, and as JSON with ``--json``).
Settings and output paths are checked before anything is written or measured
(:mod:`edge_runtime.commands.output_paths`); a clip whose writer failed is a one-line error, not a
``wrote`` line, and gets no ``.json``.
The bench is imported when it runs, so `sonomap --help` does not load it.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime import cli_args
from edge_runtime.atomic import atomic_write_text
from edge_runtime.commands.options import add_capture_options, add_model_options, runtime_config
from edge_runtime.commands.output_paths import Output, check_outputs, runtime_inputs
from edge_runtime.errors import ConfigError, InputError, SonomapError
from edge_runtime.jsonfile import atomic_write_json, json_text
from edge_runtime.live_stats import EVENTS
from edge_runtime.sinks.mp4_file import unfinished
from edge_runtime.sources import synthetic
from edge_runtime.sources.frame_size import MAX_FRAME_PIXELS, MAX_FRAME_SIDE, too_large
from edge_runtime.stop_signals import sigterm_stops
from edge_runtime.units import DEFAULT_FPS

CLIP_SUFFIX = ".mp4"  # the writer makes H.264 MP4 whatever the name says
INFO_SUFFIX = ".json"  # the clip's description, beside it
# Below this the ROI (5/8 of the screen width) is a few pixels and the screen text unreadable.
MIN_CLIP_WIDTH, MIN_CLIP_HEIGHT = 64, 36
SHA_SHOWN_CHARS = 12  # of the image's SHA-256 on stdout: tells images apart, as simulate-procedure's
WRITER_FAILED_EVENT = (
    "recording_failed"  # counted by every recorder that stops on an error (sinks/threaded.py)
)


def clip_size(size: str) -> tuple[int, int]:
    """``--size WxH`` -> (width, height), or a ConfigError naming the option and the limit."""
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise ConfigError(f"--size: expected WxH, got {size!r}")
    if int(width) < MIN_CLIP_WIDTH or int(height) < MIN_CLIP_HEIGHT:
        raise ConfigError(f"--size {size}: at least {MIN_CLIP_WIDTH}x{MIN_CLIP_HEIGHT}")
    # a clip replay would refuse frame by frame is no clip (and beyond libx264's widest frame, the
    # encoder fails only after every frame is rendered); a typo'd size must not allocate gigabytes
    if too_large(int(width), int(height)):
        raise ConfigError(
            f"--size {size}: at most {MAX_FRAME_SIDE} px a side and {MAX_FRAME_PIXELS / 1e6:.1f} Mpx, the "
            "largest frame the runtime replays"
        )
    return int(width), int(height)


def check_clip_args(args) -> tuple[int, int]:
    """Refuse (ConfigError) a setting make-clip cannot write before any file is touched; the size."""
    size = clip_size(args.size)
    if args.frames < 1:
        raise ConfigError(f"--frames {args.frames}: must be at least 1")
    if not args.fps > 0:
        raise ConfigError(f"--fps {args.fps}: must be > 0")
    out = Path(args.out)
    if out.suffix.lower() != CLIP_SUFFIX:
        raise ConfigError(f"--out {out}: the clip is written as H.264 MP4; name it *{CLIP_SUFFIX}")
    check_outputs(
        [Output("--out", out), Output(f"--out's {INFO_SUFFIX}", out.with_suffix(INFO_SUFFIX))],
        {"--image": Path(args.image)} if args.image else {},
    )
    return size


def frames_in(path: Path) -> int:
    """Video frames (packets) the mp4 at ``path`` holds; 0 when it is missing or unreadable."""
    import av  # deferred: PyAV loads FFmpeg, and `sonomap --help` imports this module

    try:
        with av.open(str(path)) as container:
            return sum(1 for packet in container.demux(container.streams.video[0]) if packet.size)
    except (OSError, IndexError, av.FFmpegError):  # no file, no video stream, not an mp4
        return 0


def cmd_make_clip(args) -> int:
    width, height = check_clip_args(args)
    image = Path(args.image) if args.image else synthetic.default_image()
    out = Path(args.out)
    failures_before = EVENTS.snapshot().get(WRITER_FAILED_EVENT, 0)
    try:
        info = synthetic.write_clip(
            image, out, args.frames, args.fps, width, height, args.seed, args.noise, args.patient_line
        )
    except SonomapError as exc:
        if EVENTS.snapshot().get(WRITER_FAILED_EVENT, 0) == failures_before:
            raise  # not the writer: the image or a setting, which the error names
        raise InputError(f"--out {out}: {exc}") from exc
    # The writer's thread may fail on the last frames or while finalising, after the last write
    # returned, and FFmpeg does not report every failed write (a file size limit): the file itself
    # says whether every frame and its closing index are in it.
    written = frames_in(out)
    if written != args.frames:
        raise InputError(
            f"--out {out}: writing the video failed: the file holds {written} of {args.frames} frames"
        )
    problem = unfinished(out)
    if problem:
        raise InputError(f"--out {out}: {problem}")
    atomic_write_json(out.with_suffix(INFO_SUFFIX), info)
    # the image by its content, as the .json records it: its file name may be the patient's
    print(
        f"wrote {args.out}: {args.frames} frames at {args.fps} fps, ROI {','.join(map(str, info['roi']))} "
        f"({info['mm_per_pixel']:.4f} mm/px) from image sha256 {info['image_sha256'][:SHA_SHOWN_CHARS]}"
    )
    return 0


def cmd_bench(args) -> int:
    if args.json:  # checked before the run: a bad path must not throw away minutes of measurement
        inputs = runtime_inputs(args, runtime_config(args), "the input")  # config, model, its manifest...
        if args.input:
            inputs["the input"] = Path(args.input)
        check_outputs([Output("--json", Path(args.json))], inputs)
    if args.source and args.source.startswith("igtl://"):
        from edge_runtime.tools.igtl_bench import run_igtl_bench  # deferred for --help (module doc)

        report = run_igtl_bench(args.source, runtime_config(args), args.frames)
    else:
        from edge_runtime.tools.bench import run_bench  # deferred for --help (module doc)

        report = run_bench(args)
    if args.json:  # atomically: a failed write keeps an earlier report whole, and names the file
        atomic_write_text(args.json, json_text(report, default=str))
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
    p.add_argument("--frames", type=cli_args.at_least(1), default=90, help="number of frames (default 90)")
    p.add_argument("--fps", type=cli_args.at_least(1), default=int(DEFAULT_FPS))
    p.add_argument("--size", default="1920x1080", help="screen size WxH")
    p.add_argument("--seed", type=cli_args.seed, default=0)
    p.add_argument(
        "--noise",
        type=cli_args.non_negative_float,
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
    # SIGTERM as Ctrl-C: frames are drawn in this thread, and a stop in write_clip ends the encoder's
    # thread and fails the short clip, so an earlier clip and its .json stay and no hidden file is left
    p.set_defaults(func=sigterm_stops(cmd_make_clip))

    p = sub.add_parser(
        "bench",
        help="per-stage latency, throughput and the naive-loop comparison",
        description="Replay INPUT through the pipeline and, in the same run, through a naive "
        "sequential loop and the backend alone; print p50/p95/p99/max per stage and the ratios.",
    )
    p.add_argument(
        "input", nargs="?", default=None, help="clip to replay (default: a generated 1080p synthetic clip)"
    )
    p.add_argument("--frames", type=cli_args.at_least(1), default=120, help="frames per measurement")
    p.add_argument("--json", help="write the report as JSON")
    p.add_argument(
        "--source",
        help="live source to measure (default: synthetic 30 fps; igtl://... for OpenIGTLink round trips)",
    )
    p.add_argument(
        "--live-seconds",
        type=cli_args.non_negative_float,
        default=6.0,
        help="length of the live measurement (0 = skip)",
    )
    p.add_argument(
        "--rounds",
        type=cli_args.at_least(1),
        default=1,
        help="repeat backend-only / naive / pipeline this many times, "
        "interleaved, and report the median ratios (steadier on a shared machine)",
    )
    p.add_argument(
        "--compare-bgr", action="store_true", help="also time the pipeline forced onto its BGR path"
    )
    add_model_options(p)  # no --summary/--save-masks/--record-raw: the bench writes only --json
    add_capture_options(p)
    # SIGTERM keeps its default action: where the backend is TensorRT (`auto` where it is installed),
    # its engine is built in native code on the backend's own thread for minutes, and a stop taken here
    # would unwind past that build and exit under it (export tensorrt keeps the default for the same
    # build); --json is written last, atomically, so a killed bench leaves an earlier report whole
    p.set_defaults(func=cmd_bench)
