"""The engine lock between real processes: real files, real flock, child interpreters (TensorRT is
not needed: the lock is plain files). Which process waits for which lock is read from the kernel's
own table, /proc/locks, so no step depends on timing.

A process waiting for an engine's lock while pruning deletes that lock file takes the lock again on
the file there now, so it never holds a deleted file's lock while another process holds the new one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_runtime.tensorrt.lock import lock_path

REPO = Path(__file__).resolve().parents[1]
PROC_LOCKS = Path("/proc/locks")
WAIT_S = 60  # generous: a loaded machine starts child interpreters slowly
POLL_S = 0.02

pytestmark = pytest.mark.skipif(not PROC_LOCKS.is_file(), reason="no /proc/locks: not Linux")

# Takes the engine's lock, says "entered" and touches MARKER, then holds it until told to go.
WAITER = """
import sys
from pathlib import Path
from edge_runtime.tensorrt.lock import engine_lock
with engine_lock(sys.argv[1]):
    Path(sys.argv[2]).touch()
    sys.stdin.readline()
"""

# Holds the engine's lock; when told, deletes the lock file holding it (as pruning does), takes the
# lock on a new file as the next process would, lets go of the deleted one, and holds the new one.
PRUNER = """
import os, sys
from edge_runtime.tensorrt.lock import engine_lock, lock_path
engine = sys.argv[1]
first = engine_lock(engine)
first.__enter__()
print("held", flush=True)
sys.stdin.readline()
os.unlink(lock_path(engine))
with engine_lock(engine):
    first.__exit__(None, None, None)
    print("holds the new file", flush=True)
    sys.stdin.readline()
"""


class Child:
    """A child interpreter running ``script`` with ``args``; told to go on by a line on its stdin."""

    def __init__(self, script: str, *args: object):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )

    def says(self) -> str:
        return self.proc.stdout.readline().strip()

    def go_on(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self) -> None:
        self.go_on()
        assert self.proc.wait(WAIT_S) == 0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT_S)


def flocks(pid: int, waiting: bool) -> set[str]:
    """The files (``dev:inode`` as /proc/locks writes them) on which process ``pid`` holds a flock,
    or (``waiting``) waits for one."""
    found = set()
    for line in PROC_LOCKS.read_text().splitlines():
        fields = line.split()
        is_waiter = fields[1] == "->"
        kind, _, _, owner, file = fields[2:7] if is_waiter else fields[1:6]
        if kind == "FLOCK" and int(owner) == pid and is_waiter == waiting:
            found.add(file)
    return found


def until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(POLL_S)


@pytest.fixture
def children():
    started = []
    yield lambda script, *args: started.append(Child(script, *args)) or started[-1]
    for child in started:
        child.kill()


def test_a_lock_file_deleted_while_waiting_is_taken_again_on_the_new_file(tmp_path, children):
    engine, entered = tmp_path / "model-fp16-0123456789abcdef.engine", tmp_path / "entered"
    pruner = children(PRUNER, engine)
    assert pruner.says() == "held"
    waiter = children(WAITER, engine, entered)
    until(lambda: flocks(waiter.proc.pid, waiting=True), "the waiter waits for the lock")
    pruner.go_on()  # deletes the lock file the waiter waits on, and holds a new one
    assert pruner.says() == "holds the new file"
    (new_file,) = flocks(pruner.proc.pid, waiting=False)
    until(
        lambda: entered.exists() or flocks(waiter.proc.pid, waiting=True) == {new_file},
        "the waiter enters or waits for the new lock file",
    )
    assert not entered.exists(), "two processes held the engine's lock at once"
    pruner.finish()
    until(entered.exists, "the waiter takes the lock")
    waiter.finish()
    assert lock_path(engine).is_file()
