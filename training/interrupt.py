"""SIGTERM as Ctrl-C for the training commands: `systemctl stop`, Slurm, `docker stop` and torchrun
send SIGTERM, whose default action kills the process mid-write and leaves a hidden temp file beside
a checkpoint. As a KeyboardInterrupt (:class:`edge_runtime.errors.StopSignal`) it unwinds like
Ctrl-C: the atomic writes delete their temp files, every finished file stays intact, and the CLI
exits with status 143 (128 + SIGTERM, as a shell reports a command the signal ended; Ctrl-C: 130).

The other half, SIGINT and SIGTERM held while a set of files is renamed into place, is
:func:`edge_runtime.held_signals.signals_held`, which registration shares.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from edge_runtime.errors import StopSignal


def _interrupt(signum, frame) -> None:
    raise StopSignal(signum, f"stopped by {signal.Signals(signum).name}")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises StopSignal (a KeyboardInterrupt) in the main thread; the previous handler
    is restored after (the block may run inside a longer-lived process, e.g. the tests')."""
    if threading.current_thread() is not threading.main_thread():  # handlers are the main thread's only
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
