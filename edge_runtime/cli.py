"""The `sonomap` console command.

Subcommands come from the ``sonomap.commands`` entry-point group: each stage package
exposes ``register(subparsers)``. Loading them through entry points keeps this module
free of imports from training, registration and export, and a stage whose optional
dependencies are missing simply contributes no commands.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.metadata import entry_points

from edge_runtime.errors import SonomapError
from edge_runtime.privacy import install_log_redaction, redact

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sonomap",
        description="Cancer-region overlay for ultrasound-guided breast biopsy "
        "(research use only). Run 'sonomap COMMAND --help' for a command's usage.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for user errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for ep in sorted(entry_points(group="sonomap.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:  # a stage whose optional extras are not installed
            logging.getLogger("sonomap").debug("commands of %s unavailable: %s", ep.name, exc)
            continue
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    # DICOM identifiers and stream credentials, registered where they are read; file names in libraries' lines
    install_log_redaction()
    try:
        code = int(args.func(args) or 0)
    except SonomapError as exc:
        if args.debug:
            raise
        print(f"sonomap {args.command}: error: {redact(exc)}", file=sys.stderr)
        code = getattr(exc, "exit_code", EXIT_USER_ERROR)
    except FileNotFoundError as exc:
        if args.debug:
            raise
        print(
            f"sonomap {args.command}: error: file not found: {redact(exc.filename or exc)}", file=sys.stderr
        )
        code = EXIT_USER_ERROR
    except OSError as exc:  # a file or folder the command could not write or read: one line, no traceback
        if args.debug:
            raise
        print(f"sonomap {args.command}: error: {redact(os_error_text(exc))}", file=sys.stderr)
        code = EXIT_USER_ERROR
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    _exit_past_stuck_calls(code)
    return code


def os_error_text(exc: OSError) -> str:
    """``PATH: REASON`` for an OSError (``Is a directory``, ``Permission denied``, ...); the bare
    message when it names no file (a socket, a pipe)."""
    if exc.filename is None:
        return str(exc)
    return f"{exc.filename}: {exc.strerror or exc}"


def _exit_past_stuck_calls(code: int) -> None:
    """End now when an inference call is stuck in native code: by here every recording is
    finalised, and the interpreter's normal exit would wait on, or crash in, the stuck library."""
    failsafe = sys.modules.get("edge_runtime.backends.failsafe")  # loaded only when something inferred
    if failsafe is None or not failsafe.calls_in_flight():
        return
    logging.getLogger("sonomap").warning("an inference call is still stuck; exiting without waiting for it")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
