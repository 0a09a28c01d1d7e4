"""Test helper: a real `sonomap` process stopped by a real SIGTERM once it has reached a given point,
and the check that it stopped as Ctrl-C stops it (the commands that turn SIGTERM into an interrupt:
train, pretrain, evaluate, calibrate...): exit 143, no traceback, and a last line saying so.

- :func:`sigterm_when`: signalled once ``ready()`` holds, a state the test sees from outside (a file
  the command wrote);
- :func:`sigterm_at_write`: signalled while it is about to write an atomic output's hidden temp file,
  a moment too short to catch from outside: an audit hook in the child (Python's own log of every
  ``open()``, not a wrapper) stops it there until the signal comes;
- :func:`sigterm_at_event`: the same at another of Python's audit events on a file (``os.chmod``...).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

EXIT_SIGTERM = 143  # 128 + SIGTERM, as a shell reports a command the signal ended
WAIT_S = 120
POLL_S = 0.005
# the child: `sonomap ARGS`, which, on the audit event EVENT for a file whose name matches PATTERN (for
# "open", opened for writing), creates READY and sleeps (WAIT_S at most) until a signal ends the sleep; the
# signal's handler runs there
PAUSE_AT_EVENT = f"""
import fnmatch, os, sys, time
wanted, pattern, ready = sys.argv[1:4]
def hook(event, args):
    if event != wanted or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    if event == "open" and not (isinstance(args[1], str) and "w" in args[1]):
        return
    if fnmatch.fnmatch(os.path.basename(os.fsdecode(args[0])), pattern):
        open(ready, "x").close()
        time.sleep({WAIT_S})
sys.addaudithook(hook)
from edge_runtime.cli import main
sys.exit(main(sys.argv[4:]))
"""


def sigterm_when(args: list, ready: Callable[[], bool], cwd=None) -> str:
    """Run ``sonomap ARGS`` in a new interpreter, send it SIGTERM once ``ready()`` holds (at most
    WAIT_S), and return its stderr; the process must still be running when signalled."""
    return _stopped([sys.executable, "-m", "edge_runtime.cli", *map(str, args)], args[0], ready, cwd)


def sigterm_at_write(args: list, pattern: str, ready: Path, cwd=None) -> str:
    """Run ``sonomap ARGS`` in a new interpreter, send it SIGTERM when it opens for writing a file whose
    name matches the glob ``pattern`` (e.g. ``.NAME.*.tmp``, the atomic writer's temp file of NAME),
    and return its stderr. ``ready``: a new file the child creates at that moment."""
    return sigterm_at_event(args, "open", pattern, ready, cwd)


def sigterm_at_event(args: list, event: str, pattern: str, ready: Path, cwd=None) -> str:
    """Run ``sonomap ARGS`` in a new interpreter, send it SIGTERM at Python's audit event ``event`` (e.g.
    ``os.chmod``; ``open`` counts only an open for writing) for a file whose name matches the glob
    ``pattern``, and return its stderr. ``ready``: a new file the child creates at that moment."""
    child = [sys.executable, "-c", PAUSE_AT_EVENT, event, pattern, str(ready), *map(str, args)]
    return _stopped(child, args[0], Path(ready).exists, cwd)


def _stopped(command: list[str], name: str, ready: Callable[[], bool], cwd) -> str:
    """Run ``command`` (``sonomap NAME ...``), SIGTERM it once ``ready()`` holds, check that it stopped
    as Ctrl-C stops it; its stderr."""
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + WAIT_S
    while not ready() and time.monotonic() < deadline:
        assert proc.poll() is None, (
            f"sonomap {name} ended before it was signalled: {proc.communicate()[1][-2000:]}"
        )
        time.sleep(POLL_S)
    proc.send_signal(signal.SIGTERM)
    _stdout, stderr = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == EXIT_SIGTERM, (proc.returncode, stderr[-2000:])
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"sonomap {name}: stopped by SIGTERM; what it had already written"), last
    return stderr
