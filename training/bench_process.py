"""bench-train's worker processes (:mod:`training.bench`): each variant's round runs in a spawned
process of its own, so its peak memory is its own.

:func:`run_worker` starts one, collects its result and ends it. A stop (Ctrl-C, SIGTERM taken as it) or
a failure ends the worker too: it writes no file, and the interpreter's exit would otherwise wait for it
to finish its round, minutes later. Files: none.
"""

from __future__ import annotations

import queue as queues
from collections.abc import Callable

from edge_runtime.errors import SonomapError
from edge_runtime.stop_signals import signals_held

WORKER_POLL_S = 1.0  # how often the parent checks that a silent worker is still alive


def run_worker(ctx, target: Callable, variant: str, args: tuple) -> dict:
    """``target(variant, *args, queue)`` in a new process of the multiprocessing context ``ctx``; the
    dict it puts on ``queue``, or a SonomapError when it exits without one."""
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(variant, *args, queue))
    try:
        with signals_held():  # a stop inside start() would leave a half-started worker, unknown here
            proc.start()
        result = _result(proc, queue, variant)
    except BaseException:
        if proc.pid is not None:  # started
            proc.terminate()
            proc.join()
        raise
    proc.join()
    return result


def _result(proc, queue, variant: str) -> dict:
    """The worker's result; never waits forever on a worker that died without one."""
    while True:
        alive = proc.is_alive()  # read before waiting: a result sent just before exit is still collected
        try:
            return queue.get(timeout=WORKER_POLL_S)
        except queues.Empty:
            if not alive:
                raise SonomapError(
                    f"bench-train: the {variant} worker exited (code {proc.exitcode}) "
                    "without a result; see its error above"
                ) from None
