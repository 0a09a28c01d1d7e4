"""SIGTERM as Ctrl-C for the training commands: `systemctl stop`, Slurm, `docker stop` and torchrun
send SIGTERM, whose default action kills the process mid-write and leaves a hidden temp file beside
a checkpoint. As KeyboardInterrupt it unwinds like Ctrl-C: the atomic writes delete their temp
files, every finished file stays intact, and the CLI exits with status 130.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt in the main thread; the previous handler
    is restored after (the block may run inside a longer-lived process, e.g. the tests')."""
    if threading.current_thread() is not threading.main_thread():  # handlers are the main thread's only
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
