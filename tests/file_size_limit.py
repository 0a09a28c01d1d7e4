"""Test helper: run a Python child under a real file size limit, the tests' full disk without root.

RLIMIT_FSIZE is set in the child only, with SIGXFSZ ignored, so a write past the limit fails with
EFBIG as a write to a full disk fails with ENOSPC, and the process goes on to report it.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys

CHILD_TIMEOUT_S = 300


def small_disk(limit: int):
    """A ``preexec_fn`` for :mod:`subprocess`: in the child, files are capped at ``limit`` bytes."""

    def cap():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return cap


def python_with_file_size_limit(
    limit: int, *args, timeout: float = CHILD_TIMEOUT_S
) -> subprocess.CompletedProcess:
    """``python ARGS`` (e.g. ``-c CODE``) with files capped at ``limit`` bytes; output captured."""
    return subprocess.run(
        [sys.executable, *map(str, args)],
        preexec_fn=small_disk(limit),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sonomap_with_file_size_limit(limit: int, *args) -> subprocess.CompletedProcess:
    """``sonomap ARGS`` with files capped at ``limit`` bytes."""
    return python_with_file_size_limit(limit, "-m", "edge_runtime.cli", *args)
