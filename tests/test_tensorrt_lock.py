"""The engine lock between real processes: real files, real flock, child interpreters (TensorRT is
not needed: the lock is plain files). Which process waits for which lock is read from the kernel's
own table, /proc/locks, so no step depends on timing.

A process waiting for an engine's lock while pruning deletes that lock file takes the lock again on
the file there now, so it never holds a deleted file's lock while another process holds the new one.

A writer stopped by SIGTERM's default action (as 'export tensorrt' and the runtime's build are) leaves
the atomic writer's hidden temp file; whoever takes that engine's lock next removes the temp files of
its plan and manifest, and nothing else: not another engine's, not the timing cache's, not a name
that only looks like one, and never while another process (a live writer) holds the lock. Engines are
stand-in plan bytes beside a copy of the shipped model; the build is a stand-in.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from export_fixtures import copy_model

from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.manifest import manifest_path
from edge_runtime.tensorrt.cache import model_location, timing_cache_path, write_engine
from edge_runtime.tensorrt.engines import ensure_engine, plan_engine
from edge_runtime.tensorrt.key import GpuInfo
from edge_runtime.tensorrt.lock import engine_lock, lock_path

REPO = Path(__file__).resolve().parents[1]
PROC_LOCKS = Path("/proc/locks")
WAIT_S = 60  # generous: a loaded machine starts child interpreters slowly
POLL_S = 0.02
ORIN = GpuInfo("Orin", "8.7", 16)
TRT, TRT_OTHER = "10.3.0.30", "10.4.0.1"
PLAN = b"not-a-real-plan:" + bytes(range(256))
STAND_IN_TRT = types.SimpleNamespace(__version__=TRT, BuilderFlag=types.SimpleNamespace(FP16=object()))

pytestmark = pytest.mark.skipif(not PROC_LOCKS.is_file(), reason="no /proc/locks: not Linux")

# Takes the engine's lock (argv[1]), then touches the marker file (argv[2]) and holds the lock until told to go on.
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


# Writes each target through the atomic writer and stops before the renames, printing the hidden temp
# files' names; with "locked", while holding the lock of the first target, as a build does.
WRITER = """
import sys
from contextlib import ExitStack
from edge_runtime.atomic import atomic_path
from edge_runtime.tensorrt.lock import engine_lock
locked, targets = sys.argv[1] == "locked", sys.argv[2:]
with ExitStack() as stack:
    if locked:
        stack.enter_context(engine_lock(targets[0]))
    temps = [stack.enter_context(atomic_path(target, durable=True)) for target in targets]
    for tmp in temps:
        tmp.write_bytes(b"part of a plan")
    print(" ".join(tmp.name for tmp in temps), flush=True)
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

    def stop(self) -> None:
        """SIGTERM, whose default action ends the process at once (no handler, no cleanup)."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(WAIT_S) == -signal.SIGTERM

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


def stopped_writer(children, *targets: Path, locked: bool = False) -> list[Path]:
    """The hidden temp files that a writer of ``targets`` leaves when SIGTERM stops it (with
    ``locked``, it holds the first target's lock, as a build does)."""
    writer = children(WRITER, "locked" if locked else "free", *targets)
    names = writer.says().split()
    writer.stop()
    return [targets[0].parent / name for name in names]


@pytest.fixture
def cached(tmp_path):
    """A model and the plan of its engine (not built yet) in a cache folder."""
    model = copy_model(DEFAULT_MODEL, tmp_path / "model")
    return model, plan_engine(model, tmp_path / "engines", "fp32", TRT, ORIN)


def kept_files(children, model: Path, engine: Path) -> list[Path]:
    """Files the lock of ``engine`` must keep: another engine's leftover and the timing cache's (left
    by a stopped writer), names that only resemble a leftover of ``engine``, a folder named as one."""
    cache = engine.parent
    cache.mkdir(parents=True, exist_ok=True)
    lookalikes = [
        cache / f".{engine.name}.abc.tmp",  # the random part has 8 characters
        cache / f"{engine.name}.abcdefgh.tmp",  # not hidden
        cache / f".{engine.name}.lock.abcdefgh.tmp",  # neither the plan's nor the manifest's
        cache / f".{engine.name}.abcdefgh.tmp.old",
    ]
    for path in lookalikes:
        path.write_bytes(b"x")
    folder = cache / f".{engine.name}.abcdefgh.tmp"
    folder.mkdir()
    other = plan_engine(model, cache, "fp32", TRT_OTHER, ORIN)  # the same model for another TensorRT
    return [*lookalikes, folder, *stopped_writer(children, other.path, timing_cache_path(cache, other.key))]


def test_taking_the_lock_removes_that_engines_leftovers_and_nothing_else(cached, children, caplog):
    model, plan = cached
    engine = plan.path
    write_engine(engine, PLAN, plan.key, plan.manifest, model.name, model_location(model))
    manifest = manifest_path(engine).read_bytes()
    leftovers = stopped_writer(children, engine, manifest_path(engine))
    kept = kept_files(children, model, engine)
    assert all(path.exists() for path in leftovers + kept)
    with caplog.at_level(logging.WARNING, logger="sonomap.tensorrt"), engine_lock(engine):
        assert not any(path.exists() for path in leftovers)
    assert all(path.exists() for path in kept)
    assert engine.read_bytes() == PLAN and manifest_path(engine).read_bytes() == manifest
    lines = [record.getMessage() for record in caplog.records]
    assert sorted(lines) == sorted(
        f"removed {path.name}, left by a build that was stopped" for path in leftovers
    )
    assert not any(str(engine.parent) in line for line in lines)  # the file's name, never its folder


def test_a_build_removes_the_leftovers_of_the_build_that_was_stopped(cached, children):
    model, plan = cached
    leftovers = stopped_writer(children, plan.path, locked=True)  # killed in its first build
    kept = kept_files(children, model, plan.path)
    record = ensure_engine(
        model, plan.path.parent, precision="fp32", trt=STAND_IN_TRT, gpu=ORIN, build=lambda *a: PLAN
    )
    assert record.built and record.path == plan.path and plan.path.read_bytes() == PLAN
    assert not any(path.exists() for path in leftovers) and all(path.exists() for path in kept)


def test_a_leftover_stays_while_another_process_holds_the_lock(cached, children, tmp_path):
    """A live writer holds the lock: its temp file is no leftover, and a process waiting for the lock
    leaves it. Once the writer is stopped (SIGTERM, as a build is), the waiter takes the lock and
    removes what it left."""
    engine, entered = cached[1].path, tmp_path / "entered"
    writer = children(WRITER, "locked", engine)
    (temp,) = (engine.parent / name for name in writer.says().split())
    waiter = children(WAITER, engine, entered)
    until(lambda: flocks(waiter.proc.pid, waiting=True), "the waiter waits for the lock")
    assert temp.is_file() and not entered.exists()
    writer.stop()
    until(entered.exists, "the waiter takes the lock")
    assert not temp.exists()
    waiter.finish()
