"""Test helper: a child process a test starts is never left running, whatever the test's outcome."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def reaped(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Run the block with ``proc``; if it is still running after the block (a failed check, a
    ``communicate`` timeout), kill it and wait for it. What the block raised is raised on."""
    try:
        yield proc
    finally:
        # a child left running would hold its port, files and a core into the next tests
        if proc.poll() is None:
            proc.kill()
            proc.wait()
