"""Test helper: a real `sonomap` process stopped by a real SIGTERM once it has reached a given point,
and the check that it stopped as Ctrl-C stops it (the commands that turn SIGTERM into an interrupt:
train, evaluate): exit 143, no traceback, and a last line saying so."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable

EXIT_SIGTERM = 143  # 128 + SIGTERM, as a shell reports a command the signal ended
WAIT_S = 120
POLL_S = 0.005


def sigterm_when(args: list, ready: Callable[[], bool], cwd=None) -> str:
    """Run ``sonomap ARGS`` in a new interpreter, send it SIGTERM once ``ready()`` holds (at most
    WAIT_S), and return its stderr; the process must still be running when signalled."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_runtime.cli", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + WAIT_S
    while not ready() and time.monotonic() < deadline:
        assert proc.poll() is None, f"sonomap {args[0]} ended before it was signalled"
        time.sleep(POLL_S)
    proc.send_signal(signal.SIGTERM)
    _stdout, stderr = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == EXIT_SIGTERM, stderr[-2000:]
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"sonomap {args[0]}: stopped by SIGTERM; what it had already written"), last
    return stderr
