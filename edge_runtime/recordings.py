"""Where a recording goes: one file (or mask folder) per session, never over an earlier one.

A cart records procedures through its service, and systemd restarts the service after a crash.
With a fixed ``sinks.video`` path the restarted process would truncate the file the crash-safe
(fragmented) writer had just kept. So:

- ``sinks.video``, ``sinks.raw`` and ``sinks.masks`` may hold :func:`time.strftime` fields, expanded
  in local time when the sinks open (``recordings/%Y%m%d-%H%M%S-overlay.mp4``: a file per session;
  ``%%`` is a literal ``%``);
- in live mode an existing recording (a file, or a mask folder with anything in it) is kept and the
  new one gets the first free ``-1``, ``-2``, ... suffix, with a warning. A replay's outputs are
  results re-made on demand, so replay overwrites them as before.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from edge_runtime.errors import InputError

log = logging.getLogger("sonomap.recordings")
MAX_SUFFIX = 9999


def expand(template: str | Path, now: float | None = None) -> Path:
    """The path with its strftime fields filled in (local time ``now``, default: the current time)."""
    text = str(template)
    if "%" not in text:
        return Path(text)
    return Path(time.strftime(text, time.localtime(now)))


def _taken(path: Path) -> bool:
    if path.is_dir():
        return any(path.iterdir())
    return path.exists()


def session_path(template: str | Path, keep_existing: bool, now: float | None = None) -> Path:
    """The path this session records to: ``template`` expanded; with ``keep_existing``, a free variant
    when that path already holds a recording."""
    path = expand(template, now)
    if not keep_existing or not _taken(path):
        return path
    for n in range(1, MAX_SUFFIX + 1):
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not _taken(candidate):
            log.warning("%s already holds a recording; keeping it and recording to %s", path, candidate)
            return candidate
    raise InputError(f"{path}: {MAX_SUFFIX} earlier recordings of this name; move them, or name recordings by time (%Y%m%d-%H%M%S)")
