"""`sonomap soak`: replay a clip in a loop for N minutes and check that memory stays flat.

The command's parser and its verdict; the run itself is :mod:`edge_runtime.tools.soak_run`.
Output: a JSON report (``--json``) and one summary line; exit status 1 when RSS grew by
``--max-growth`` (default 2%) or more. ``python -m edge_runtime.tools.soak`` works too.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edge_runtime import cli_args
from edge_runtime.atomic import check_not_read, check_output_file
from edge_runtime.errors import ConfigError
from edge_runtime.jsonfile import atomic_write_json
from edge_runtime.model_files import model_files

DEFAULT_MAX_GROWTH = 0.02
SECONDS_PER_MINUTE = 60.0
SAMPLES_PER_WINDOW = 2  # samples drift a little past --sample-s apart: two per window keeps one in it


def check_soak_args(args, window_fraction: float) -> None:
    """ConfigError before the run, not after minutes of it: a --json path that cannot be written or
    is the clip or model being read, and a run too short for its growth windows (each
    ``window_fraction`` of the run) to hold the samples a verdict compares."""
    if args.json:
        json_path = Path(args.json)
        check_not_read(json_path, "--json", {"the input": args.input or None, **model_files(args.model)})
        check_output_file(json_path, "--json")
    window_s = args.minutes * SECONDS_PER_MINUTE * window_fraction
    if window_s < SAMPLES_PER_WINDOW * args.sample_s:
        shortest = SAMPLES_PER_WINDOW * args.sample_s / window_fraction / SECONDS_PER_MINUTE
        raise ConfigError(
            f"--minutes {args.minutes:g}: too short to measure RSS growth with --sample-s {args.sample_s:g} "
            f"(each {100 * window_fraction:g} % window needs {SAMPLES_PER_WINDOW} samples): give at least "
            f"{shortest:.3g} minutes"
        )


def cmd_soak(args) -> int:
    # deferred: the run loads PyAV, the pipeline and the HTTP server, and `sonomap --help` imports this
    # module for the parser
    from edge_runtime.tools.soak_run import WINDOW_FRACTION, run_soak

    check_soak_args(args, WINDOW_FRACTION)
    report = run_soak(
        args.minutes,
        args.input,
        args.model,
        realtime=not args.fast,
        record=not args.no_record,
        sample_s=args.sample_s,
    )
    if args.json:
        atomic_write_json(args.json, report)
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
    p.add_argument(
        "--minutes",
        type=cli_args.minutes,
        default=10.0,
        help="duration in minutes (default 10, at most 30 days)",
    )
    p.add_argument("--model", help="model (default: the shipped default model)")
    p.add_argument("--fast", action="store_true", help="as fast as possible instead of real-time pacing")
    p.add_argument("--no-record", action="store_true", help="do not record the overlay mp4 meanwhile")
    p.add_argument(
        "--sample-s", type=cli_args.positive_float, default=1.0, help="RSS sampling period (default 1 s)"
    )
    p.add_argument(
        "--max-growth",
        type=cli_args.non_negative_float,
        default=DEFAULT_MAX_GROWTH,
        help="allowed RSS growth (0.02 = 2%%)",
    )
    p.add_argument("--json", help="write the report (with the RSS trace) as JSON")
    # SIGTERM keeps its default action, as bench's: where the backend is TensorRT (`auto` where it is
    # installed), its engine is built in native code on a thread of its own for minutes, and a stop taken
    # in the main thread would unwind past that build and exit under it; --json is written last, atomically
    p.set_defaults(func=cmd_soak)


def main(argv: list[str] | None = None) -> int:
    """``python -m edge_runtime.tools.soak`` works too, without the sonomap CLI."""
    parser = argparse.ArgumentParser(prog="python -m edge_runtime.tools.soak")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["soak", *(argv if argv is not None else sys.argv[1:])])
    logging.basicConfig(level=logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
