"""SIGINT and SIGTERM held while a set of files is renamed into place, for every stage that writes
files that must all be replaced or none (a checkpoint and its manifest, an export's model and
manifest, a registered case's four outputs, a report's files).

:func:`signals_held` runs a block with both signals held, and a stop that came meanwhile acts when
the block ends, as it would have acted before (the handler in place then: Ctrl-C's
KeyboardInterrupt, the training commands' SIGTERM-as-Ctrl-C, or the default action that ends the
process). It sits on the runtime's ground floor because registration, training and export all
need it, and registration and training are peers that may not import each other.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # stops held by signals_held


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
