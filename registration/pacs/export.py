"""``sonomap cases export DIR --dicomweb URL``: send each captured case to a PACS by STOW-RS.

Input: DIR, a folder of captured cases (``sonomap live/replay --cases``). Per case, the pre-fire
image and the live prediction's segmentation (:mod:`registration.pacs.objects`) go to the DICOMweb
server in one STOW-RS request, filed under the case's ``capture.study_id``. A case captured without
a study ID is an error for that case, unless ``--study-id`` names the one to file it under (cases
that have their own keep it). That pseudonym stands for one patient, so it covers one case: when
more than one case to export has no study ID of its own, ``--study-id`` is refused before anything
is sent or written, naming how many and which case folders (they are exported one at a time).
``--dry-run OUT`` writes the .dcm files under ``OUT/<study ID>/<case id>/`` instead of sending (the
case id is case.yaml's ``id``, never the folder's name, which may have been renamed or copied;
:mod:`registration.pacs.dry_run`).
Two cases filed under one study ID with one capture number would share DICOM series numbers: the
export is refused before anything is sent or written, naming their case ids
(:mod:`registration.pacs.series_numbers`).

Every study ID, from ``--study-id`` or from a case's ``capture.study_id``, must pass the general
rule (edge_runtime/biopsy/study_id.py) and the site's ``privacy.study_id_pattern`` from the runtime
config: ``--config PATH``, else the cart's ``/etc/sonomap/config.yaml`` (the file sonomap.service
runs ``sonomap live --config`` with) when it exists, else none. A refused ``--study-id`` stops the
export before anything is sent or written; a refused ``capture.study_id`` fails its own case, before
any of its objects is made.

Output: one line per case (what was sent, or why not: the HTTP status of a refused upload), then a
total. A failed case does not stop the others (``--stop-on-error`` does), whatever its error: one
the code did not foresee is that case's FAILED line with the error's type and where it was raised,
as in register-batch; the exit status is 1 when any case failed. Objects and attributes:
docs/pacs-export.md.
"""

from __future__ import annotations

import argparse
import time
import traceback
from pathlib import Path

from edge_runtime import privacy
from edge_runtime.biopsy.study_id import check_study_id, without_case_folder
from edge_runtime.config import load_config
from edge_runtime.errors import ConfigError, SonomapError
from edge_runtime.yamlfile import read_yaml_mapping
from registration.cases.status import case_names, find_case_files
from registration.pacs.captured_case import CAPTURE_ID, CASE_FILE, case_folders, read_case

EXIT_SOME_FAILED = 1
DEFAULT_TIMEOUT_S = 30.0
FALLBACK_CASES = 1  # --study-id is one pseudonym: one patient, so one case without a study ID
FOLDERS_NAMED = 10  # the refusal's line names this many folders, then how many more
# the runtime config sonomap.service runs `sonomap live --config` with (systemd/sonomap.service):
# the site's privacy settings on the cart, read when --config is not given
CART_CONFIG = Path("/etc/sonomap/config.yaml")


def add_options(p: argparse.ArgumentParser) -> None:
    """Options of ``sonomap cases export DIR``."""
    g = p.add_argument_group("export (sonomap cases export DIR)")
    g.add_argument("--dicomweb", metavar="URL", help="DICOMweb root of the PACS, e.g. https://pacs/dicom-web")
    g.add_argument("--dry-run", metavar="OUT", help="write the .dcm files under OUT instead of sending them")
    g.add_argument(
        "--study-id",
        metavar="ID",
        help="file the one case captured without a study ID under ID (a pseudonym); refused when "
        "several cases lack one (they may be different patients): export those one at a time",
    )
    g.add_argument(
        "--config",
        metavar="PATH",
        help="runtime config whose privacy.study_id_pattern every study ID must match "
        f"(default: {CART_CONFIG}, the cart's, when it exists)",
    )
    g.add_argument(
        "--segmentation",
        choices=("binary", "fractional"),
        default="binary",
        help="the prediction as the cancer mask (default) or as the 8-bit probability",
    )
    g.add_argument(
        "--token-env", metavar="VAR", help="env var holding a bearer token (default SONOMAP_DICOMWEB_TOKEN)"
    )
    g.add_argument(
        "--basic-auth-env",
        metavar="VAR",
        help="env var holding user:password (default SONOMAP_DICOMWEB_BASIC)",
    )
    g.add_argument(
        "--ca-bundle",
        metavar="PEM",
        help="CA certificate(s) that sign the PACS's HTTPS certificate, e.g. the hospital's own CA "
        "(default: the public CAs requests trusts, or $REQUESTS_CA_BUNDLE)",
    )
    g.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per request (default 30)"
    )
    g.add_argument("--stop-on-error", action="store_true", help="stop at the first case that fails")


def _sent(objects) -> str:
    parts = ["pre-fire image"] + [f"{ds.SegmentationType.lower()} SEG" for ds in objects.datasets[1:]]
    note = "" if len(objects.datasets) > 1 else " (no prediction saved)"
    return f"{len(objects.datasets)} instance(s): {', '.join(parts)}{note}"


def failed_line_reason(exc: Exception) -> str:
    """The FAILED line's reason: a foreseen error's message, or an unforeseen one's type, message and
    the place it was raised, to be found in the code."""
    if isinstance(exc, (SonomapError, OSError)):
        return str(exc)
    where = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"


def _without_study_id(folders: list[Path]) -> list[Path]:
    """The case folders whose case.yaml has no ``capture.study_id`` (absent or empty, as read_case
    reads it). A case.yaml that does not load is left out: that case fails on its own turn, with
    read_case's error, whatever the study ID."""
    out = []
    for folder in folders:
        try:
            capture = read_yaml_mapping(folder / "case.yaml", "captured case").get("capture")
        except (ConfigError, OSError):
            continue
        if not isinstance(capture, dict):
            continue  # not a captured case: read_case refuses it
        study = capture.get("study_id")
        if study is None or not str(study):
            out.append(folder)
    return out


def _refuse_shared_fallback(folders: list[Path]) -> None:
    """ConfigError when more than one of ``folders`` has no study ID of its own: --study-id would
    file them all under one pseudonym, though they may be different patients. Only the folders are
    named (the user's own paths), nothing read from the cases."""
    lacking = _without_study_id(folders)
    if len(lacking) <= FALLBACK_CASES:
        return
    named = ", ".join(str(f) for f in lacking[:FOLDERS_NAMED])
    more = f" and {len(lacking) - FOLDERS_NAMED} more" if len(lacking) > FOLDERS_NAMED else ""
    raise ConfigError(
        f"--study-id names one pseudonym, but {len(lacking)} cases were captured without a study ID and "
        f"may be different patients: {named}{more}; nothing was exported: export those cases one at a "
        "time (sonomap cases export CASE_FOLDER --study-id ID), each under its own study ID"
    )


def site_pattern(config: str | None, cart_config: Path = CART_CONFIG) -> str | None:
    """The site's ``privacy.study_id_pattern`` (None: none set) from the runtime config ``config``
    (--config), else from ``cart_config`` when that file exists; no config at all gives None, as
    ``sonomap live`` without --config runs on the defaults. Read by the runtime's own loader, so a
    config the cart refuses (a bad key, a pattern that is no regular expression) is refused here
    too, in one line naming the file."""
    path = Path(config) if config is not None else cart_config if _there(cart_config) else None
    return load_config(path).privacy.study_id_pattern


def _there(path: Path) -> bool:
    """Whether ``path`` is a file, or something there the caller cannot even look at (a folder it may
    not search): the loader then names the file and why in one line, instead of the export going on
    as if the site had no privacy settings."""
    try:
        return path.is_file()
    except OSError:
        return True


def run_export(args: argparse.Namespace) -> int:
    try:  # highdicom and dicomweb-client are the optional `pacs` extra: loaded only when exporting
        from registration.pacs import dry_run
        from registration.pacs.objects import case_objects
        from registration.pacs.series_numbers import refuse_repeated_numbers
        from registration.pacs.stow import make_client, shown_url, store
    except ImportError as exc:
        raise SonomapError(
            f"sonomap cases export needs the pacs extra: pip install 'sonomap[pacs]' ({exc})"
        ) from exc

    if bool(args.dicomweb) == bool(args.dry_run):
        raise ConfigError(
            "sonomap cases export: give --dicomweb URL (send) or --dry-run OUT (write files), one"
        )
    pattern = site_pattern(args.config)
    fallback = None if args.study_id is None else check_study_id(args.study_id, pattern=pattern)
    folders = case_folders(args.cases_dir)
    if fallback is not None:  # before any client or file: a refused export sends and writes nothing
        _refuse_shared_fallback(folders)
    refuse_repeated_numbers(folders, fallback)  # before any client or file, as above
    if args.dry_run:  # OUT refused once, up front (exit 2), not once per case
        client, target = None, dry_run.prepare(args.dry_run)
    else:
        client = make_client(args.dicomweb, args.token_env, args.basic_auth_env, args.timeout, args.ca_bundle)
        target = shown_url(args.dicomweb)
    print(f"{len(folders)} case(s) in {args.cases_dir} -> {target}")
    failed = exported = 0
    # a case is labelled by its capture id once read, else by its folder's name when that is a
    # capture's, else by its place as `sonomap cases` lists it: never by a folder renamed after the
    # patient
    places = case_names(find_case_files(Path(args.cases_dir)))
    for folder in folders:
        start = time.perf_counter()
        label = folder.name if CAPTURE_ID.fullmatch(folder.name) else places[str(folder / CASE_FILE)]
        try:
            case = read_case(folder)
            label = case.case_id
            study_id = case.study_id or fallback
            if study_id is None:
                raise SonomapError("no study ID (captured without --study-id); give --study-id ID to file it")
            try:
                objects = case_objects(case, study_id, args.segmentation, pattern)
            except ValueError as exc:  # highdicom's refusal of one case's values: that case fails
                raise SonomapError(f"{folder / 'case.yaml'}: cannot make its DICOM objects ({exc})") from exc
            built = time.perf_counter()
            if client is None:
                line = dry_run.write_case(objects, target)
            else:
                result = store(client, objects.datasets)
                if not result.ok:
                    raise SonomapError(f"upload failed: {result.detail}")
                line = f"sent {_sent(objects)}"
            done = time.perf_counter()
            exported += 1
            print(
                f"{case.case_id}  {objects.study_id}  {line} (built {built - start:.2f} s, "
                f"{'written' if client is None else 'sent'} {done - built:.2f} s)",
                flush=True,
            )
        except Exception as exc:  # one bad case never stops the others (Ctrl-C still does)
            failed += 1
            print(
                f"{label}  FAILED: {privacy.redact(without_case_folder(failed_line_reason(exc), folder))}",
                flush=True,
            )
            if args.stop_on_error:
                print("stopped at the first failure (--stop-on-error)")
                break
    untried = len(folders) - exported - failed
    print(
        f"{exported} of {len(folders)} case(s) exported, {failed} failed"
        + (f", {untried} not tried" if untried else "")
    )
    return EXIT_SOME_FAILED if failed else 0
