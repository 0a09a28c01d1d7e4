"""Test helper: outputs made once per test run and read by every pytest-xdist worker.

Several fixtures make files that many tests only read (the synthetic procedure clip, the cases the
real capture writes from it, a fitted checkpoint). Cached per process, each was made once per
worker that needed it: seconds of CPU each, repeated on a 2-core machine. :func:`made_once` makes
one under a file lock in a folder common to the run's workers (the first worker to need it makes
it, the others wait and read it). The folder is created by the controlling process before the
workers start (:func:`start_run`, from conftest's ``pytest_configure``) and removed by that process
when the run ends (:func:`end_run`). Outputs must not be changed by the tests that read them; a test that changes one
works on its own copy.
"""

from __future__ import annotations

import functools
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

ENV = "SONOMAP_TEST_SHARED"  # the run's shared folder, set by the controller, inherited by the workers
OWNER = "SONOMAP_TEST_SHARED_OWNER"  # the process id that made it, the only one that removes it
RESULT = "result.pickle"  # what make() returned: test data of this run, read by this run only


def start_run() -> None:
    """Create the run's shared folder (controller or single process; a worker inherits it)."""
    if not os.environ.get(ENV):
        os.environ[ENV] = tempfile.mkdtemp(prefix="sonomap-tests-shared-")
        os.environ[OWNER] = str(os.getpid())


def end_run() -> None:
    """Remove the run's shared folder, in the process that made it once every worker has ended: never
    in a worker, nor in a pytest a test starts (it inherits the folder and must leave it)."""
    folder = os.environ.get(ENV)
    if folder and os.environ.get(OWNER) == str(os.getpid()):
        shutil.rmtree(folder, ignore_errors=True)


@functools.cache
def made_once(name: str, make: Callable[[Path], Any]) -> Any:
    """``make(folder)``'s result, made in ``folder`` (shared, named ``name``) once per test run. A
    maker that failed in another worker left no result: the folder is cleared and made again here,
    so the failure shows in this worker's test too."""
    root = os.environ.get(ENV)
    if not root:
        raise RuntimeError(
            f"{ENV} is not set: tests/conftest.py's pytest_configure calls run_shared.start_run"
        )
    folder, result = Path(root) / name, Path(root) / f"{name}.{RESULT}"
    with FileLock(str(Path(root) / f"{name}.lock")):
        if not result.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            value = make(folder)
            result.write_bytes(pickle.dumps(value))
    return pickle.loads(result.read_bytes())
