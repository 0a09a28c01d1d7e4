"""SIGTERM as Ctrl-C for the training commands: `systemctl stop`, Slurm, `docker stop` and torchrun
send SIGTERM, whose default action kills the process mid-write and leaves a hidden temp file beside
a checkpoint. As a KeyboardInterrupt (:class:`edge_runtime.errors.StopSignal`) it unwinds like
Ctrl-C: the atomic writes delete their temp files, every finished file stays intact, and the CLI
exits with status 143 (128 + SIGTERM, as a shell reports a command the signal ended; Ctrl-C: 130).

:func:`signals_held` is the other half: a block of renames that must all happen or none (a
checkpoint and its manifest, an export's model and manifest) runs with SIGINT and SIGTERM held, and
a stop that came meanwhile acts when the block ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from edge_runtime.errors import StopSignal

HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # stops held by signals_held


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


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT/SIGTERM arriving within the block act when it ends: their handlers are swapped for a
    recorder, then restored and the first signal raised again. Handlers are swapped, not the signals
    blocked: a Python handler runs in the main thread whichever thread receives the signal, so
    outside the main thread (where handlers cannot be set) none runs inside the block anyway."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum)) for sig in HELD_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if caught:
            signal.raise_signal(caught[0])
