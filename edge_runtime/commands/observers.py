"""The observers replay and live attach on request: biopsy capture (``--cases``), Slicer sequences
(``--record-sequence``), the HTTP viewer (``--http``) and OpenIGTLink (``--igtl-out``/``--igtl-serve``).

Input: the parsed arguments and the runtime config. Output: the observers, and what they wrote
printed at the end. Each is imported only when asked for (optional extras), so an install without
one says which flag needs what.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from edge_runtime import config as cfg
from edge_runtime import source_kinds
from edge_runtime.config_schema import RuntimeConfig
from edge_runtime.errors import ConfigError, SonomapError
from edge_runtime.manifest import load_manifest
from edge_runtime.privacy import redact

MIN_PORT, MAX_PORT = 0, 65535  # TCP ports; 0 lets the system choose one
DEFAULT_HTTP_HOST = "127.0.0.1"  # --http :PORT listens on loopback only
LISTED_FAILURES = 5  # biopsies a failure line names by number, then how many more
NO_SITE_FORMAT = (
    "privacy.study_id_pattern is not set: study IDs get the general rule only, which lets a name with "
    "a digit in it through; set the site's pseudonym format in the runtime config (docs/pacs-export.md)"
)

log = logging.getLogger("sonomap.capture")


def sequence_observers(args, config: RuntimeConfig, live: bool) -> list:
    """[SequenceRecorder] for --record-sequence FILE.seq.nrrd, else []."""
    if not getattr(args, "record_sequence", None):
        return []
    from edge_runtime.sinks.sequence import SequenceRecorder

    return [SequenceRecorder(args.record_sequence, live=live, min_free_gb=config.sinks.min_free_gb)]


def print_sequences(sequence: list) -> None:
    for recorder in sequence:
        for path in recorder.files:
            print(
                redact(
                    f"wrote {path} ({recorder.frames} frames, {recorder.dropped} dropped; Slicer sequence)"
                )
            )


def capture_observers(args, config: RuntimeConfig) -> list:
    """[CaptureObserver] for --cases DIR, else []."""
    study_id = getattr(args, "study_id", None)
    if study_id is not None:
        from edge_runtime.biopsy.study_id import check_study_id

        # before anything starts: a one-line error, also when it is the DICOM input's own PatientID
        register_input_identifiers(config)
        study_id = check_study_id(study_id, pattern=config.privacy.study_id_pattern)
        if not getattr(args, "cases", None):
            raise ConfigError("--study-id names the subject of captured cases: give --cases DIR too")
    if not getattr(args, "cases", None):
        return []
    from edge_runtime.biopsy.observer import CaptureObserver  # deferred for --help (module doc)

    if config.privacy.study_id_pattern is None:  # cases carry study IDs: say how weak the default check is
        log.warning(NO_SITE_FORMAT)

    model = cfg.resolve_model(config)
    # the sha256 each case records; the pipeline, made next, checks the file against it before any frame
    manifest = load_manifest(model, verify_hash=False)
    return [
        CaptureObserver(
            args.cases,
            {"name": manifest.name, "file": model.name, "sha256": manifest.sha256},
            None if config.source.input is None else str(config.source.input),  # a device may be 0
            gauge=args.gauge,
            cancer_class=manifest.cancer_index,
            study_id=study_id,
            study_id_pattern=config.privacy.study_id_pattern,
        )
    ]


def register_input_identifiers(config: RuntimeConfig) -> None:
    """The patient identifiers in the header of a DICOM file input, registered for redaction now
    (:func:`edge_runtime.privacy.register_dicom`; the source reads the file only when the run starts),
    so a --study-id that is one of them is refused before anything starts. Any other input, or a file
    pydicom cannot read (the source says why when it opens it), registers nothing."""
    spec = config.source.input
    if spec is None or isinstance(spec, int):
        return
    path = Path(str(spec))
    if source_kinds.path_kind(path) != source_kinds.DICOM_CINE or not path.is_file():
        return
    from edge_runtime.dicom_pixels import read_header  # deferred: only for a DICOM input

    try:
        read_header(path, str(path))
    except (ImportError, SonomapError):  # no pydicom, or not DICOM: the source says why when it opens it
        return


def print_captures(capture: list) -> None:
    """One line per --cases folder: the cases written into it, and how many captures were not."""
    for observer in capture:
        book = observer.book
        written = len(book.writer.written)
        noun = "biopsy" if written == 1 else "biopsies"
        lost = book.writer.errors + book.refused
        print(
            redact(
                f"captured {written} {noun} into {observer.directory}"
                + (f" ({lost} could not be written)" if lost else "")
            )
        )


def capture_failures(capture: list) -> list[str]:
    """One line per --cases folder some biopsy was not saved into: how many of the captures and
    marks, which biopsies, and why (the first reason); [] when every one was written."""
    lines = []
    for observer in capture:
        book = observer.book
        failed = book.writer.failed
        if not failed and not book.refused:
            continue
        parts = []
        if failed:
            numbers = ", ".join(str(miss.number) for miss in failed[:LISTED_FAILURES])
            more = f" and {len(failed) - LISTED_FAILURES} more" if len(failed) > LISTED_FAILURES else ""
            parts.append(
                f"{len(failed)} of {book.captures} biopsy capture(s) not saved "
                f"(biopsy {numbers}{more}: {failed[0].reason})"
            )
        if book.refused:
            reasons = dict.fromkeys(book.refusal_reasons)  # each reason once, in the order met
            # marks taken on one frame are one capture, refused or not: the marks are told apart
            marks = f" ({book.refused_marks} marks)" if book.refused_marks != book.refused else ""
            parts.append(f"{book.refused} capture(s) refused{marks}: {'; '.join(reasons)}")
        lines.append(f"--cases {observer.directory}: " + "; ".join(parts))
    return lines


def http_address(text: str) -> tuple[str, int]:
    """``--http HOST:PORT`` (or ``:PORT``, on loopback) -> (host, port); ConfigError naming --http
    for anything else, before a socket is made (a port past 65535 would end in a traceback there)."""
    host, _, port = text.rpartition(":")
    if not (port.isascii() and port.isdigit()):
        raise ConfigError(f"--http: expected HOST:PORT, got {text!r}")
    number = int(port)
    if not MIN_PORT <= number <= MAX_PORT:
        raise ConfigError(f"--http {text!r}: port {number} is outside {MIN_PORT}-{MAX_PORT}")
    return host or DEFAULT_HTTP_HOST, number


def observer_hooks(args) -> list:
    """Observers for --http / --igtl-out / --igtl-serve, imported only when asked for (optional extras)."""
    observers = []

    def need(module: str, flag: str):
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            raise SonomapError(f"{flag}: {module} is not available in this install ({exc})") from exc

    if getattr(args, "http", None):  # replay has no --http
        host, port = http_address(args.http)
        observers.append(
            need("edge_runtime.service.http_server", "--http").make_http_observer(
                host, port, args.token, args.tls_cert, args.tls_key
            )
        )
    elif getattr(args, "tls_cert", None) or getattr(args, "tls_key", None):
        raise ConfigError("--tls-cert/--tls-key secure the --http server: give --http too")
    if args.igtl_out:
        observers.append(need("edge_runtime.igtl", "--igtl-out").make_igtl_observer(out=args.igtl_out))
    if args.igtl_serve:
        observers.append(
            need("edge_runtime.igtl", "--igtl-serve").make_igtl_observer(
                serve=args.igtl_serve, allow=args.igtl_allow
            )
        )
    elif args.igtl_allow:
        raise ConfigError("--igtl-allow limits who may connect to --igtl-serve: give --igtl-serve too")
    return observers
