"""Hidden names for a video written before it replaces an earlier file (:mod:`edge_runtime.sinks.mp4_file`).

A staged file is ``.NAME.<pid>.<random>.partial`` beside its path: hidden, so no listing or glob
for ``*.mp4`` takes it for a recording, and carrying the writer's process id, so a later run can
tell the leftover of a process that was killed outright (SIGKILL, power loss: nothing could rename
or delete it) from the file of a run still writing, and delete only the former.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from edge_runtime.processes import orphans

PARTIAL_SUFFIX = ".partial"  # a staged recording's hidden name ends so until it is complete
TOKEN_BYTES = 4

log = logging.getLogger("sonomap.sinks")


def partial_path(path: Path) -> Path:
    """A new hidden name beside ``path`` for this process."""
    token = f"{os.getpid()}.{secrets.token_hex(TOKEN_BYTES)}"
    return path.with_name(f".{path.name}.{token}{PARTIAL_SUFFIX}")


def named_for_output(exc: Exception, writing: Path | None, path: Path) -> Exception:
    """``exc``, or an OSError of its text with the staged file ``writing`` named as ``path``: a write
    error names the file FFmpeg was writing, which is deleted by the time anyone reads the error."""
    if writing is None or writing == path or str(writing) not in str(exc):
        return exc
    return OSError(str(exc).replace(str(writing), str(path)))


def remove_leftovers(path: Path) -> list[Path]:
    """Delete the staged files of ``path`` whose writer process is gone; return them. A file of a
    process still running (another replay writing the same path) is left alone."""
    removed = []
    for staged in orphans(path, PARTIAL_SUFFIX):
        try:
            staged.unlink()
        except OSError as exc:  # best effort: the run itself does not need it gone
            log.warning("sink: could not delete the leftover %s (%s)", staged, exc)
            continue
        removed.append(staged)
        log.info("sink: deleted %s, left by a run that was killed before it could finish", staged)
    return removed
