"""Whether a process id still names a running process: how a run tells a file that a killed run
left behind (its name carries the writer's pid) from one another process is still writing.
:func:`orphans` finds such files beside a target (``.NAME.<pid>.<random>SUFFIX``), for the writers that
stage their output under a hidden name (edge_runtime/sinks/staging.py, export/staging.py)."""

from __future__ import annotations

import glob
import os
from pathlib import Path

# Linux never gives a process an id above this (PID_MAX_LIMIT, include/linux/threads.h): larger
# digits in a name are no writer's id, and os.kill would raise OverflowError on them
PID_MAX_LIMIT = 1 << 22


def writer_pid(tag: str) -> int | None:
    """The process id of a ``<pid>.<random>`` tag that a writer puts in its hidden file's name; None
    when the tag is not one (a name not ours: its writer cannot be told, so it is left alone)."""
    pid, _, token = tag.partition(".")
    if not (pid.isdigit() and token):
        return None
    return int(pid) if 0 < int(pid) <= PID_MAX_LIMIT else None


def orphans(target: Path, suffix: str) -> list[Path]:
    """The hidden ``.NAME.<pid>.<random>SUFFIX`` siblings of ``target`` whose writer process is gone
    (killed outright: nothing could rename or delete them). A name without a writer's pid, this
    process's own and a running process's are left out."""
    prefix = f".{target.name}."
    found = []
    for staged in target.parent.glob(f".{glob.escape(target.name)}.*{suffix}"):
        pid = writer_pid(staged.name[len(prefix) : -len(suffix)])
        if pid is not None and pid != os.getpid() and not alive(pid):
            found.append(staged)
    return found


def alive(pid: int) -> bool:
    """True when a process with this id exists (signal 0 asks without sending anything); a process
    of another user counts too."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, run by another user
        return True
    return True
