"""The lock on one cached engine: one process at a time checks, builds and writes it.

Input: an engine's path in the cache. Files: ``<engine>.lock`` beside it, an empty file that
:func:`engine_lock` holds (``flock``); it stays while its engine does, and :func:`remove_idle_lock`
deletes it with a pruned engine only when no process holds it.

The plan (hundreds of MB) and its manifest are each written to a hidden temp file beside them and
renamed (:func:`edge_runtime.atomic.atomic_path`). The commands that build keep SIGTERM's default
action (a Python handler would wait for the native build), so a writer stopped that way, killed or
cut off by a power loss leaves its temp file behind, which nothing else would ever remove. While a
process holds an engine's lock no other process writes that engine or its manifest, so on taking
the lock it removes their hidden temp files (``.<engine>.<random>.tmp``,
``.<engine>.yaml.<random>.tmp``), logging each by file name; so does pruning, which takes a superseded
engine's lock when no process holds it. Another engine's, the timing cache's
(shared by every engine, not covered by one engine's lock) and any other name are left.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge_runtime.atomic import hidden_file_pattern
from edge_runtime.manifest import manifest_path

log = logging.getLogger("sonomap.tensorrt")

LOCK_SUFFIX = ".lock"
LOCK_MODE = 0o644  # like the cache files: the service user and an operator's CLI share the cache


def lock_path(engine: str | Path) -> Path:
    return Path(engine).with_name(Path(engine).name + LOCK_SUFFIX)


def remove_idle_lock(engine: Path) -> None:
    """Delete the lock file of a pruned engine, and the temp files a killed writer of it left
    (:func:`remove_leftovers`), unless a process holds it (one building that engine now keeps both).
    A process that opened it just before and then locks the deleted file takes the lock again on the
    file there now (:func:`engine_lock`). A lock this user may not open or delete
    (another user's, in a shared cache) counts as held: it stays, and pruning goes on."""
    lock = lock_path(engine)
    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        return
    except PermissionError:
        return  # another user's lock this user cannot read: left to its owner
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        remove_leftovers(engine)  # held: no writer of it runs, and a superseded engine is never built again
        lock.unlink(missing_ok=True)
    except (BlockingIOError, PermissionError):
        pass  # held, or another user's in a sticky folder: that lock stays
    finally:
        os.close(fd)


@contextmanager
def engine_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<engine>.lock`` (blocking): two processes starting at once
    (the service and 'sonomap export tensorrt') must not both build one engine for minutes and
    overwrite each other's files; the second waits, then finds the engine and loads it. flock
    is released by the kernel when the holder dies, so a killed build never blocks the next.
    The lock file is opened read-only: the service user and an operator share one cache, and
    whoever created the file, the other can still take the lock. A lock file deleted while this
    process waited for it (its engine pruned) is no lock: it is taken again on the file at that path
    now, which the next process opens too. Once held, the temp files a killed writer of this engine
    left are removed (:func:`remove_leftovers`)."""
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = _lock_file(lock)
    try:
        remove_leftovers(path)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def _lock_file(lock: Path) -> int:
    """A descriptor of the file at ``lock`` (created if missing), holding its flock."""
    while True:
        # read-only: flock needs no write access, so a lock file another user created (0644) is taken too
        fd = os.open(lock, os.O_RDONLY | os.O_CREAT, LOCK_MODE)
        held = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # deleted while this process waited: another may hold the file at that path now
            held = _is_at(fd, lock)
        finally:
            if not held:
                os.close(fd)
        if held:
            return fd


def _is_at(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is the file at ``path`` now (not deleted or replaced)."""
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino)


def remove_leftovers(engine: str | Path) -> list[Path]:
    """Remove the hidden temp files of ``engine``'s plan and manifest; the caller holds the engine's
    lock, so no writer is running and each is a killed writer's. Returns those removed. One this user
    may not delete (another user's, in a sticky folder; a read-only cache) stays, with a warning: no
    build fails for it."""
    removed = []
    for leftover in _leftovers(Path(engine)):
        try:
            leftover.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove %s, left by a build that was stopped: %s", leftover.name, exc.strerror)
            continue
        log.warning("removed %s, left by a build that was stopped", leftover.name)
        removed.append(leftover)
    return removed


def _leftovers(engine: Path) -> list[Path]:
    """The hidden temp files of ``engine``'s plan and manifest beside it (plain files only)."""
    patterns = (hidden_file_pattern(engine), hidden_file_pattern(manifest_path(engine)))
    with os.scandir(engine.parent) as entries:
        return [
            Path(entry.path)
            for entry in entries
            if entry.is_file(follow_symlinks=False) and any(p.fullmatch(entry.name) for p in patterns)
        ]
