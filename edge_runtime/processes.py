"""Whether a process id still names a running process: how a run tells a file that a killed run
left behind (its name carries the writer's pid) from one another process is still writing."""

from __future__ import annotations

import os

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
