"""``sonomap cases [export] DIR``: one subcommand over a folder of captured biopsy cases.

``sonomap cases DIR`` lists the cases and what each still lacks (:mod:`registration.cases.listing`);
``sonomap cases export DIR --dicomweb URL`` sends them to a PACS (:mod:`registration.pacs.export`).
One parser serves both, so ``cases DIR`` needs no action word. The export takes SIGTERM as Ctrl-C
(:func:`edge_runtime.stop_signals.sigterm_stops`).
"""

from __future__ import annotations

import argparse

from edge_runtime.errors import SonomapError
from edge_runtime.stop_signals import sigterm_stops
from registration.cases import listing
from registration.pacs import export

EXPORT = "export"
# the export writes files (--dry-run OUT): SIGTERM stops it as Ctrl-C, with no temp file left; the
# listing only reads and prints, so it keeps SIGTERM's default action
_export = sigterm_stops(export.run_export)


def _run(args: argparse.Namespace) -> int:
    words = args.words
    if words[0] == EXPORT:
        if len(words) != 2:
            raise SonomapError("usage: sonomap cases export DIR --dicomweb URL")
        args.cases_dir = words[1]
        return _export(args)
    if len(words) != 1:
        raise SonomapError(
            f"usage: sonomap cases DIR  or  sonomap cases export DIR (got {' '.join(words)!r})"
        )
    args.cases_dir = words[0]
    return listing.run_list(args)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "cases",
        help="list captured biopsy cases and what each lacks; `cases export DIR` sends them to a PACS",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "words", nargs="+", metavar="[export] DIR", help="the cases folder, after `export` to upload"
    )
    listing.add_options(p)
    export.add_options(p)
    p.set_defaults(func=_run)
