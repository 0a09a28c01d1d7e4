"""Claims on the capture-number lock file, shared by every capture session of one process.

A POSIX record lock (``lockf``) belongs to a process, not to a thread or a file descriptor: a process
that locks a byte it already holds succeeds again, and closing any descriptor of the file drops every
lock the process holds on it. Two capture sessions in one process writing into one ``--cases``
folder (two observers, a replay beside a capture in one tool) would therefore both claim the same
number, and the first to close would give up the other's claims as well.

So a process keeps one :class:`LockFile` per lock file, keyed by its resolved path (:data:`LOCK_FILES`):
one descriptor, opened at the first claim and closed only when the last session on it leaves, and a
record of which session holds each byte. A claim checks that record and takes the ``lockf`` under one
thread lock, so a byte another session of this process holds is refused like one another process
holds, and a session leaving unlocks only its own bytes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from pathlib import Path

HELD = (errno.EACCES, errno.EAGAIN)  # lockf: another process holds the byte
LOCK_MODE = 0o600
LEAVE_TIMEOUT_S = 1.0  # a claim on a stalled disk must not keep a session from ending


class LockFile:
    """One lock file as this process holds it: its descriptor and which session holds which byte."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()  # the record below and the lockf calls, together
        self._fd: int | None = None
        self._held: dict[int, object] = {}  # byte offset -> the session holding it
        self._sessions: set[object] = set()  # the sessions that joined and have not left

    def add(self, session: object) -> None:
        with self._lock:
            self._sessions.add(session)

    def claim(self, session: object, offset: int) -> bool:
        """Lock byte ``offset`` for ``session``: True, or False when another session holds it (of
        this process or of another). OSError when the file cannot be made or locked; made here, at
        the first claim (a session that captures nothing leaves none)."""
        with self._lock:
            if session not in self._sessions:
                raise OSError(errno.EBADF, "the session has given up its capture-number claims")
            if offset in self._held:
                return False
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, LOCK_MODE)
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
            except OSError as exc:
                if exc.errno not in HELD:
                    raise
                return False
            self._held[offset] = session
            return True

    def release(self, session: object, offset: int) -> None:
        """Unlock byte ``offset`` if ``session`` holds it."""
        with self._lock:
            if self._held.get(offset) is session:
                del self._held[offset]
                fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, offset)

    def remove(self, session: object) -> bool:
        """Unlock the bytes ``session`` holds and forget it; True when no session is left (the
        descriptor is then closed). OSError when a claim has waited on the disk for LEAVE_TIMEOUT_S
        (the bytes stay locked until the process ends) or an unlock failed."""
        if not self._lock.acquire(timeout=LEAVE_TIMEOUT_S):
            raise OSError(errno.ETIMEDOUT, "a capture-number claim still waits on the disk", self.path)
        try:
            self._sessions.discard(session)
            for offset in [o for o, holder in self._held.items() if holder is session]:
                del self._held[offset]
                fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, offset)
            if self._sessions:
                return False
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)  # no session is left: no lock of this process on the file is dropped unsaid
            return True
        finally:
            self._lock.release()


class LockFiles:
    """The lock files of this process, one :class:`LockFile` per resolved path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, LockFile] = {}

    def join(self, path: Path, session: object) -> LockFile:
        """The process's :class:`LockFile` for ``path``, with ``session`` added to it."""
        key = os.path.realpath(path)
        with self._lock:
            file = self._files.get(key)
            if file is None:
                file = self._files[key] = LockFile(key)
            file.add(session)
        return file

    def leave(self, file: LockFile, session: object) -> None:
        """``session`` gives up its claims on ``file``; the last one closes it (OSError: :meth:`LockFile.remove`)."""
        with self._lock:  # no new descriptor of the file opens before the old one is closed
            if file.remove(session) and self._files.get(file.path) is file:
                del self._files[file.path]

    def forget(self) -> None:
        """In a forked child: it holds none of its parent's locks."""
        self._lock = threading.Lock()
        self._files = {}


LOCK_FILES = LockFiles()
os.register_at_fork(after_in_child=LOCK_FILES.forget)
