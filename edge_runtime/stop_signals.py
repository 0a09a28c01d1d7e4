"""How the file-writing commands take SIGINT and SIGTERM, shared by registration, training and export
(peers that may not import each other, so it sits on the runtime's ground floor).

- :func:`sigterm_as_interrupt` (a block), :func:`sigterm_stops` (a command): SIGTERM as Ctrl-C.
  ``systemctl stop``, a timer's ``TimeoutStopSec``, Slurm, ``docker stop`` and torchrun send SIGTERM,
  whose default action kills the process mid-write and leaves a hidden temp file beside a checkpoint,
  a report or a registered case. As a KeyboardInterrupt (:class:`edge_runtime.errors.StopSignal`) it
  unwinds like Ctrl-C: the atomic writes delete their temp files, every finished file stays intact,
  and the CLI exits with status 143 (128 + SIGTERM, as a shell reports a command the signal ended;
  Ctrl-C: 130).
- :func:`signals_held`: a block of renames that must all happen or none (a checkpoint and its
  manifest, an export's model and manifest, a registered case's four outputs, a report's files), or
  a worker process's start (bench-train's: a stop inside would leave it half started and unknown),
  runs with SIGINT and SIGTERM held, and a stop that came meanwhile acts when the block ends, as it
  would have acted before (Ctrl-C's KeyboardInterrupt, SIGTERM-as-Ctrl-C, or the default action).
"""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable, Iterator
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


def sigterm_stops(command: Callable) -> Callable:
    """``command`` (a CLI handler taking the parsed arguments) run with SIGTERM taken as Ctrl-C, for
    the commands that write files and call no native code that may run for minutes (a SIGTERM taken
    in Python waits for the interpreter: an engine build would not stop until it ended)."""

    @functools.wraps(command)
    def run(args):
        with sigterm_as_interrupt():
            return command(args)

    return run


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
