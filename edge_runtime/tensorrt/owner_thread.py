"""A thread that owns a CUDA context: every call that touches the context runs on it.

pycuda contexts belong to the thread that made them. ``Context.detach()`` called on any other
thread, with the context not current there, does nothing at all (pycuda ``src/cpp/cuda.hpp``,
``context::detach``: the out-of-thread branch only carries the comment "this context's managing
thread has exited ... no need to harp on the fact that we still thought there was cleanup to
do"), so a context closed from the wrong thread keeps its device memory until the process
ends; a service that re-creates its backend (config reload, fault recovery) would leak one
each time. The TensorRT backend therefore creates, uses and destroys its context here,
whichever thread calls it.

Input: callables. Output: their results (or their exceptions), returned in the calling thread.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future


class OwnerThread:
    """One daemon thread running submitted calls in order (daemon: a CUDA call that never returns
    must not keep the process from exiting)."""

    def __init__(self, name: str):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._stopped = False
        self._thread.start()

    @property
    def ident(self) -> int | None:
        return self._thread.ident

    def call(self, fn, *args, timeout: float | None = None):
        """Run ``fn(*args)`` on the owner thread and return its result; raises what it raised, or
        ``TimeoutError`` when it has not finished after ``timeout`` seconds (it still runs)."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        if self._stopped:
            raise RuntimeError(f"thread {self._thread.name} is stopped")
        job: Future = Future()
        self._jobs.put((job, fn, args))
        return job.result(timeout)

    def stop(self, timeout: float | None = None) -> bool:
        """Let the queued calls finish, then end the thread. True when it has ended in ``timeout``."""
        if not self._stopped:
            self._stopped = True
            self._jobs.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _serve(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, fn, args = item
            if not job.set_running_or_notify_cancel():
                continue
            try:
                job.set_result(fn(*args))
            except BaseException as exc:
                job.set_exception(exc)
