"""Test helper: run the real ``sonomap`` command (``python -m edge_runtime.cli``) in a subprocess."""

from __future__ import annotations

import subprocess
import sys

DEFAULT_TIMEOUT_S = 300
STDERR_TAIL = 3000


def sonomap(*args, check: bool = True, timeout: float = DEFAULT_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run ``sonomap ARGS``; with ``check`` the exit status must be 0 (the failure shows stderr's tail)."""
    out = subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert out.returncode == 0, out.stderr[-STDERR_TAIL:]
    return out
