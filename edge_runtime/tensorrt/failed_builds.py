"""Engine builds that failed in this process, by what they were built from.

The fail-safe guard retries a faulty backend and re-creates it every few faults; a model TensorRT
cannot build must not be rebuilt (up to 20 minutes of a busy GPU, AI LOADING on screen) on every
retry. A changed model file or setting is a new build; a restart forgets every failure.
Input: a build id (any hashable value naming the model file and settings) and the error. Output:
the error recorded for an id, or None when that build has not failed.
"""

from __future__ import annotations

import threading

from edge_runtime.errors import SonomapError

NOT_RETRIED = " [engine build not retried: it failed before with this model and these settings]"


class FailedBuilds:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: dict[object, tuple[type[SonomapError], str]] = {}

    def remember(self, build_id: object, exc: SonomapError) -> None:
        with self._lock:
            self._errors[build_id] = (type(exc), str(exc))

    def error_for(self, build_id: object) -> SonomapError | None:
        """The remembered error, worded as not retried, or None when this build has not failed."""
        with self._lock:
            failed = self._errors.get(build_id)
        if failed is None:
            return None
        kind, message = failed
        return kind(message + NOT_RETRIED)

    def forget_all(self) -> None:
        with self._lock:
            self._errors.clear()


FAILED_BUILDS = FailedBuilds()  # one per process: the guard re-creates backends, the memory stays
