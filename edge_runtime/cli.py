"""The `sonomap` console command.

Subcommands come from the ``sonomap.commands`` entry-point group: each stage package exposes
``register(subparsers)``. Loading them through entry points keeps this module free of imports from
training, registration and export. A stage's commands module defers its optional dependencies to the
function that runs the command, so every command is listed; one whose extra is not installed ends in
one line naming the module and the extra (:mod:`edge_runtime.extras`). The runtime's own commands are
not optional: a runtime that cannot import them (a dependency of its own missing) is a one-line error
naming the missing module. Only the stages up to the one that owns the command given are loaded, the
runtime's first, so a runtime command (live, replay, bench) holds no module of another stage;
``--help`` loads them all.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback
import warnings
from importlib.metadata import entry_points

import cv2

from edge_runtime import cli_args
from edge_runtime.errors import (
    EXIT_USER_ERROR,
    SIGNAL_EXIT_BASE,
    ConfigError,
    SonomapError,
    StopSignal,
    os_error_text,
)
from edge_runtime.extras import missing_module_advice
from edge_runtime.privacy import install_log_redaction, redact

EXIT_INTERRUPTED = SIGNAL_EXIT_BASE + signal.SIGINT  # Ctrl-C: 130; another stop signal: 128 + its number
KEPT = "what it had already written is kept (every output is written whole or not at all)"
RUNTIME_PACKAGE = "edge_runtime"  # the stage whose commands are looked for first
# OpenCV's native logger writes to stderr (the journal) past Python's log filters, and its messages
# name the files it reads, at every level (`imread_('DOE_JANE.png'): can't open/read file` is a
# warning, `can't read header` an error); OpenCV's failures reach sonomap as return values and
# exceptions, which name files only in the one-line error. The variable covers child processes.
OPENCV_LOG_ENV = "OPENCV_LOG_LEVEL"
OPENCV_SILENT = "SILENT"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with the stages' subcommands. Given the ``command`` to run, only the entry points
    up to the one that adds it are loaded, the runtime's first: `sonomap live` imports no module
    of training, registration or export (a live run must not hold them). Without one (``--help``)
    or for a name no stage has, every stage's commands are added, so the usage lists them all."""
    parser = cli_args.Parser(
        prog="sonomap",
        description="Cancer-region overlay for ultrasound-guided breast biopsy "
        "(research use only). Run 'sonomap COMMAND --help' for a command's usage.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for user errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    stages = sorted(entry_points(group="sonomap.commands"), key=lambda e: e.name)
    if command is not None:  # the runtime's commands first: the cart runs them, and they are cheap
        stages.sort(key=lambda e: e.module.partition(".")[0] != RUNTIME_PACKAGE)
    for ep in stages:
        try:
            register = ep.load()
        except ImportError as exc:
            if ep.module.partition(".")[0] == RUNTIME_PACKAGE:  # the base install: never optional
                missing = isinstance(exc, ModuleNotFoundError) and exc.name
                what = f"module {exc.name!r} is not installed" if missing else "an import failed"
                raise ConfigError(
                    f"the runtime's commands cannot be loaded: {what} ({exc}); "
                    "reinstall sonomap with its dependencies (pip install sonomap)"
                ) from exc
            # another stage, whose optional extras are not installed
            logging.getLogger("sonomap").debug("commands of %s unavailable: %s", ep.name, exc)
            continue
        register(sub)
        if command is not None and command in sub.choices:
            break
    return parser


def chosen_command(argv: list[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is not an option (the top-level options
    take no value); None when there is none (``sonomap --help``)."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def silence_opencv() -> None:
    """Switch OpenCV's native logger off in this process and in the processes it starts."""
    os.environ[OPENCV_LOG_ENV] = OPENCV_SILENT
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def print_redacted_traceback(kind, value, tb) -> None:
    """``sys.excepthook``: a traceback (``--debug``, or a crash) quotes messages and file names, as a
    one-line error does, so it goes through the same redaction before it reaches stderr (the journal)."""
    sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))


def print_redacted_thread_traceback(args: threading.ExceptHookArgs) -> None:
    """``threading.excepthook``: an uncaught error in a thread (capture, inference, a sink), redacted;
    a thread ended by SystemExit is silent, as with Python's own hook."""
    if args.exc_type is SystemExit:
        return
    where = f"Exception in thread {args.thread.name if args.thread else 'unknown'}:\n"
    sys.stderr.write(
        where + redact("".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)))
    )


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A Python warning as one log line: Python's own format adds the source line that raised it
    (``  warn_and_log(msg)``), a second line in the journal that says nothing to the reader."""
    return f"{filename}:{lineno}: {category.__name__}: {message}"


def _traceback_if(debug: bool) -> None:
    """With ``--debug``, the traceback of the error being handled (redacted), printed before its
    one-line error: the exit status stays the command's (2 for a user error), not Python's 1."""
    if debug:
        print_redacted_traceback(*sys.exc_info())


def main(argv: list[str] | None = None) -> int:
    silence_opencv()
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot show "µm" gets "\xb5m", not a traceback
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, OSError):  # not a text stream, or one whose file moved under it: as it is
            pass
    # Logging and its filters before anything else runs, the commands' imports included: DICOM
    # identifiers and stream credentials (registered where they are read), file names in libraries'
    # lines. Python warnings (pydicom's "... found in file DOE_JANE.dcm") go through the same
    # handlers, and so through the filters, instead of straight to stderr.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    install_log_redaction()
    sys.excepthook, threading.excepthook = print_redacted_traceback, print_redacted_thread_traceback
    logging.captureWarnings(True)
    warnings.formatwarning = one_line_warning
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(chosen_command(argv))
    except ConfigError as exc:
        _traceback_if("--debug" in argv)
        print(f"sonomap: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    args = parser.parse_args(argv)
    if args.verbose:
        logging.getLogger().setLevel(logging.INFO)
    try:
        code = int(args.func(args) or 0)
    except SonomapError as exc:
        _traceback_if(args.debug)
        print(f"sonomap {args.command}: error: {redact(exc)}", file=sys.stderr)
        code = getattr(exc, "exit_code", EXIT_USER_ERROR)
    except FileNotFoundError as exc:
        _traceback_if(args.debug)
        print(
            f"sonomap {args.command}: error: file not found: {redact(exc.filename or exc)}", file=sys.stderr
        )
        code = EXIT_USER_ERROR
    except OSError as exc:  # a file or folder the command could not write or read: one line, no traceback
        _traceback_if(args.debug)
        print(f"sonomap {args.command}: error: {redact(os_error_text(exc))}", file=sys.stderr)
        code = EXIT_USER_ERROR
    except ModuleNotFoundError as exc:  # an optional extra the command needs is not installed
        _traceback_if(args.debug)
        print(f"sonomap {args.command}: error: {missing_module_advice(exc)}", file=sys.stderr)
        code = EXIT_USER_ERROR
    except StopSignal as exc:  # SIGTERM where the command turns it into Ctrl-C, a second stop signal
        print(f"sonomap {args.command}: {exc}; {KEPT}", file=sys.stderr)
        code = SIGNAL_EXIT_BASE + exc.signum
    except KeyboardInterrupt:  # Ctrl-C: said, not silent
        print(f"sonomap {args.command}: interrupted; {KEPT}", file=sys.stderr)
        code = EXIT_INTERRUPTED
    _exit_past_stuck_calls(code)
    return code


def _exit_past_stuck_calls(code: int) -> None:
    """End now when an inference call is stuck in native code, or TensorRT left an object that
    failed to start (its destructor crashes): by here every recording is finalised, and the
    interpreter's normal exit would wait on, or crash in, the library."""
    failsafe = sys.modules.get("edge_runtime.backends.failsafe")  # loaded only when something inferred
    trt = sys.modules.get("edge_runtime.tensorrt.modules")  # loaded only when TensorRT was tried
    stuck = failsafe is not None and failsafe.calls_in_flight()
    if not stuck and not (trt is not None and trt.UNUSABLE):
        return
    if stuck:
        logging.getLogger("sonomap").warning(
            "an inference call is still stuck; exiting without waiting for it"
        )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
