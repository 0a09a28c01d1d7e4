"""``sonomap replay`` and ``sonomap live``: run the pipeline over a recording, or live.

Input: the parsed arguments (the input or the capture source, outputs, observers). Output: the run
(:class:`edge_runtime.pipeline.graph.Pipeline`), its summary and what the observers wrote, printed.
The output paths are checked before anything opens (:mod:`edge_runtime.commands.output_paths`). A
recorder that stopped on an error (disk full, unwritable file) is not reported as written: replay
ends with a one-line error naming it (exit status non-zero), live warns (its session ran; the screen
showed REC FAILED). A replay's recorder that paused below ``sinks.min_free_gb`` has failed too: its
output misses frames (live resumes instead; the log says so). What the other outputs wrote is reported
and kept either way, and no ``wrote`` line names a file the run never made. A biopsy captured with
``--cases`` but not written (the disk full or gone, the queue full, a mark with no image area known)
ends replay and live with a one-line error (exit status non-zero): the operator took it.
Each handler imports the pipeline (and live, the service hooks) when it runs, so
`sonomap --help` does not load them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from edge_runtime import config as cfg
from edge_runtime import source_kinds
from edge_runtime.commands.observers import (
    capture_failures,
    capture_observers,
    observer_hooks,
    print_captures,
    print_sequences,
    sequence_observers,
)
from edge_runtime.commands.options import (
    add_common_options,
    add_output_options,
    add_study_id_option,
    print_summary,
    runtime_overrides,
)
from edge_runtime.commands.output_paths import check_outputs, runtime_inputs, runtime_outputs, sink_options
from edge_runtime.errors import SIGNAL_EXIT_BASE, SonomapError
from edge_runtime.privacy import redact

SYNTHETIC_REPLAY_FRAMES = 90
REPLAY_VIDEO_OPTION, LIVE_VIDEO_OPTION = "--out", "--record"
REPLAY_INPUT_NAME, LIVE_INPUT_NAME = "the input", "--source"


def synthetic_replay_source(args, config):
    """The source of ``replay synthetic``: the synthetic screen, not paced, for ``--max-frames``
    frames, endless with ``--loop`` (stopped by Ctrl-C or SIGTERM), else SYNTHETIC_REPLAY_FRAMES.
    None for any other input (the pipeline opens it from the config)."""
    from edge_runtime.sources.opener import SyntheticSource  # deferred for --help (module doc)

    if args.input != source_kinds.SYNTHETIC:
        return None
    endless = args.loop and not args.max_frames
    return SyntheticSource(
        image=config.source.image,
        frames=None if endless else (args.max_frames or SYNTHETIC_REPLAY_FRAMES),
        live=False,
        width=config.source.width,
        height=config.source.height,
    )


def cmd_replay(args) -> int:
    from edge_runtime.pipeline.graph import Pipeline  # deferred for --help (module doc)
    from edge_runtime.service.sdnotify import Notifier  # deferred for --help (module doc)
    from edge_runtime.service.signals import install_signal_handlers  # deferred for --help (module doc)

    cli = runtime_overrides(
        args,
        source__input=args.input,
        source__loop=args.loop or None,
        source__realtime=args.realtime or None,
        source__max_frames=args.max_frames,
        sinks__video=args.out,
        sinks__window=args.window or None,
    )
    config = cfg.load_with_overrides(args.config, cli)
    check_outputs(  # before any sink opens: a bad path is refused before the input is touched
        runtime_outputs(args, config, REPLAY_VIDEO_OPTION), runtime_inputs(args, config, REPLAY_INPUT_NAME)
    )
    source = synthetic_replay_source(args, config)
    capture = capture_observers(args, config)
    sequence = sequence_observers(args, config, live=False)
    observers = observer_hooks(args) + capture + sequence
    pipeline = Pipeline(config, config_path=args.config, overrides=cli, source=source, observers=observers)
    # SIGTERM and Ctrl-C stop at a frame boundary: outputs finalised, summary written (no sd_notify:
    # a replay is no service); a second one gives up waiting
    handlers = install_signal_handlers(pipeline, Notifier(env={}))
    try:
        summary = pipeline.run()
    finally:
        handlers.restore()
    failed = print_outputs(
        summary, pipeline.stages.outputs, capture, sequence, sink_options(args, REPLAY_VIDEO_OPTION)
    )
    lost = capture_failures(capture)
    if failed or lost:
        raise SonomapError("; ".join([*failed.values(), *lost]))
    if handlers.stopped_by is not None:  # the outputs hold the frames before the signal only
        print(
            f"sonomap replay: stopped by {handlers.stopped_by.name} after {summary['frames']} frame(s); "
            "the outputs are finalised",
            file=sys.stderr,
        )
        return SIGNAL_EXIT_BASE + int(handlers.stopped_by)  # partial outputs
    return 0


def cmd_live(args) -> int:
    from edge_runtime.pipeline.graph import Pipeline  # deferred for --help (module doc)
    from edge_runtime.service import hooks as service  # deferred for --help; sd_notify, signals, reconnect
    from edge_runtime.service.http_auth import warn_command_line_token  # deferred for --help (module doc)

    if args.token:  # still accepted, but every local user can read a command line
        warn_command_line_token()
    cli = runtime_overrides(
        args,
        source__input=args.source,
        source__fps=args.fps,
        source__width=args.width,
        source__height=args.height,
        source__fourcc=args.fourcc,
        live__mode=args.mode,
        live__duration_s=args.duration,
        sinks__video=args.record,
        source__realtime=True,
        sinks__window=False if args.headless else None,
        sinks__fullscreen=args.fullscreen or None,
    )
    config = cfg.load_with_overrides(args.config, cli)
    if not args.headless and config.sinks.window is False and not args.config:
        config.sinks.window = True
    check_outputs(  # before the recording folders are made and any sink opens
        runtime_outputs(args, config, LIVE_VIDEO_OPTION),
        runtime_inputs(args, config, LIVE_INPUT_NAME),
    )
    capture = capture_observers(args, config)
    sequence = sequence_observers(args, config, live=True)
    pipeline = Pipeline(
        config,
        config_path=args.config,
        overrides=cli,
        **service.live_kwargs(config, observer_hooks(args) + capture + sequence),
    )
    pipeline.live_schedule = True  # a file too: newest frame wins, the display never waits on the AI
    handlers = service.install(pipeline)
    try:
        summary = pipeline.run()
    finally:
        handlers.restore()
    failed = print_outputs(
        summary, pipeline.stages.outputs, capture, sequence, sink_options(args, LIVE_VIDEO_OPTION)
    )
    for message in failed.values():  # the session itself ran: a warning, exit status 0
        print(redact(f"sonomap live: warning: {message}"), file=sys.stderr)
    lost = capture_failures(capture)
    if lost:  # a biopsy the operator took is not on disk: that must not read as a clean session
        raise SonomapError("; ".join(lost))
    return 0


def print_outputs(
    summary: dict, paths: dict[str, str], capture: list, sequence: list, names: dict[str, str]
) -> dict[str, str]:
    """Print what a replay or live run wrote: its summary (no ``wrote`` line for a failed recorder or
    a file never made), its biopsy captures and its sequence recordings that ended without an error.
    ``summary``, ``paths``, ``sequence`` and ``names``: as for :func:`recorder_failures`; ``capture``:
    the --cases observers. Returns the failed recorders (:func:`recorder_failures`), for the caller
    to report as its command does."""
    failed = recorder_failures(summary, paths, sequence, names)
    print_summary(summary, set(failed) | never_made(summary))
    print_captures(capture)
    print_sequences([recorder for recorder in sequence if recorder.error is None])
    return failed


def recorder_failures(
    summary: dict, paths: dict[str, str], sequence: list, names: dict[str, str]
) -> dict[str, str]:
    """The recorders that stopped on an error -> {their file or folder: one line naming the option, the
    path and the writer's error}. ``summary``: the run's (``failed_outputs``: sink name -> error);
    ``paths``: every recorder's path by sink name (the summary's ``outputs`` lists only the files
    written, so a failed recorder's path comes from here); ``sequence``: the --record-sequence
    recorders; ``names``: sink name -> option (:func:`output_paths.sink_options`). What a failed
    recorder wrote before its error stays on disk."""
    failed = {}
    for kind, error in summary.get("failed_outputs", {}).items():
        path = paths.get(kind, kind)
        failed[path] = f"{names.get(kind, kind)} {path}: recording failed: {error}"
    for recorder in sequence:
        if recorder.error is not None:
            failed[str(recorder.path)] = (
                f"--record-sequence {recorder.path}: recording failed: {recorder.error}"
            )
    return failed


def never_made(summary: dict) -> set[str]:
    """The summary's outputs that are not on disk: a live recorder paused for disk space before its
    first frame opened no file."""
    return {path for path in summary.get("outputs", {}).values() if not Path(path).exists()}


def register(sub) -> None:
    """Add ``replay`` and ``live`` to the top-level parser's subparsers."""
    p = sub.add_parser(
        "replay",
        help="run the model over a video, image folder or DICOM cine and write an overlay mp4",
        description="Process every frame (none dropped) of INPUT: a video file (PyAV), an image "
        "folder, a DICOM cine (.dcm) or 'synthetic'; draw the cancer overlay and write H.264 mp4.",
    )
    p.add_argument(
        "input",
        help="video file, image folder, .dcm file, .seq.nrrd or PLUS .igs.mha sequence, or 'synthetic'",
    )
    p.add_argument("--out", help="overlay mp4 to write")
    p.add_argument("--loop", action="store_true", help="loop the input (stop with Ctrl-C)")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="pace at the clip's frame rate (a sequence: its recorded times)",
    )
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--window", action="store_true", help="also show a window")
    add_output_options(p)
    add_common_options(p)
    add_study_id_option(p)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser(
        "live",
        help="live overlay from a capture card, stream, OpenIGTLink or the synthetic source",
        description="Live mode: the newest captured frame wins; raw video is shown at capture rate "
        "and the overlay never holds it back.",
    )
    p.add_argument(
        "--source",
        default=None,
        help="synthetic | /dev/videoN | N | rtsp://... | igtl://HOST:PORT?device=NAME | file",
    )
    p.add_argument(
        "--mode",
        choices=["latest", "strict"],
        help="overlay the newest mask (with its age) or only a frame's own mask",
    )
    p.add_argument("--fps", type=float, help="capture frame rate")
    p.add_argument("--width", type=int, help="capture width")
    p.add_argument("--height", type=int, help="capture height")
    p.add_argument("--fourcc", help="capture pixel format (e.g. YUYV, MJPG)")
    p.add_argument("--headless", action="store_true", help="no window")
    p.add_argument("--fullscreen", action="store_true", help="fullscreen window")
    p.add_argument("--record", metavar="MP4", help="record the rendered overlay (fragmented mp4)")
    p.add_argument("--duration", type=float, help="stop after S seconds")
    p.add_argument(
        "--no-ai",
        action="store_true",
        help="start with the AI off: raw video with an 'AI OFF' badge (key 'a' in the window switches it on)",
    )
    p.add_argument("--http", metavar="HOST:PORT", help="serve /healthz, /metrics and a viewer")
    p.add_argument(
        "--token",
        help="access token for --http (visible to every local user in ps: prefer $SONOMAP_HTTP_TOKEN "
        "or the systemd credential http-token)",
    )
    p.add_argument("--tls-cert", metavar="PEM", help="serve --http over HTTPS with this certificate (chain)")
    p.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    add_output_options(p)
    add_common_options(p)
    add_study_id_option(p)
    p.set_defaults(func=cmd_live)
