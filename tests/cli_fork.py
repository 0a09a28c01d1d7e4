"""Test helper: the client of the fork server (:mod:`cli_zygote`). :func:`run_forked` runs one
``sonomap`` command in a new process forked from a server this pytest process starts on first use,
and answers as ``subprocess.run(..., capture_output=True, text=True, timeout=...)`` would: the
command's exit status (negative for a signal), its stdout and stderr as text with universal
newlines, and :class:`subprocess.TimeoutExpired` after killing it when it runs past ``timeout``."""

from __future__ import annotations

import json
import locale
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HEADER = struct.Struct("!Q")
SERVER = Path(__file__).with_name("cli_zygote.py")
START_TIMEOUT_S = 120  # the server imports every library once: seconds on a loaded machine
CMD = [sys.executable, "-m", "edge_runtime.cli"]

_server: dict = {}
_server_lock = threading.Lock()


def _socket_path() -> str:
    """The running server's socket, started on first use (one per pytest process)."""
    with _server_lock:
        proc = _server.get("proc")
        if proc is not None and proc.poll() is None:
            return _server["path"]
        folder = tempfile.mkdtemp(prefix="sonomap-fork-")
        path = os.path.join(folder, "s")
        proc = subprocess.Popen(
            [sys.executable, str(SERVER), path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=folder,
        )
        line = _read_line(proc, START_TIMEOUT_S)
        if line != b"ready\n":
            proc.kill()
            raise RuntimeError(f"the sonomap fork server did not start (said {line!r})")
        _server.update(proc=proc, path=path)
        return path


def _read_line(proc: subprocess.Popen, timeout: float) -> bytes:
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return got[0] if got else b""


def _text(data: bytes) -> str:
    """As ``subprocess.run(text=True)`` decodes: the locale's encoding, universal newlines."""
    return data.decode(locale.getpreferredencoding(False)).replace("\r\n", "\n").replace("\r", "\n")


def _drain(fd: int, into: list[bytes]) -> None:
    with os.fdopen(fd, "rb") as f:
        into.append(f.read())


def run_forked(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    cmd = [*CMD, *argv]
    deadline = time.monotonic() + timeout
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    outs: list[bytes] = []
    errs: list[bytes] = []
    readers = [threading.Thread(target=_drain, args=a, daemon=True) for a in ((out_r, outs), (err_r, errs))]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(_socket_path())
        body = json.dumps({"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
        socket.send_fds(conn, [HEADER.pack(len(body)) + body], [null, out_w, err_w])
        for fd in (null, out_w, err_w):
            os.close(fd)
        for r in readers:
            r.start()
        answers = conn.makefile("rb")
        pid = json.loads(answers.readline())["pid"]
        conn.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            status = json.loads(answers.readline())["status"]
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            for r in readers:
                r.join(5)
            raise subprocess.TimeoutExpired(
                cmd, timeout, output=b"".join(outs) or None, stderr=b"".join(errs) or None
            ) from None
    for r in readers:  # the command's own children may still hold its stdout: wait as run() would
        r.join(max(deadline - time.monotonic(), 0.001))
    return subprocess.CompletedProcess(
        cmd, os.waitstatus_to_exitcode(status), _text(b"".join(outs)), _text(b"".join(errs))
    )
