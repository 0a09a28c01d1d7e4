"""Whether a process id still names a running process: how a run tells a file that a killed run
left behind (its name carries the writer's pid) from one another process is still writing."""

from __future__ import annotations

import os


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
