"""Test helper: the client of the fork server (:mod:`cli_zygote`). :func:`run_forked` runs one
``sonomap`` command in a new process forked from a server this pytest process starts on first use,
and answers as ``subprocess.run(..., capture_output=True, text=True, timeout=...)`` would: the
command's exit status (negative for a signal), its stdout and stderr as text with universal
newlines, and :class:`subprocess.TimeoutExpired` after killing it when it runs past ``timeout``.

A shell script the tests run (configs/biopsy-loop.sh, configs/study-models.sh) reaches the same
servers through :func:`sonomap_shim`: a folder holding a ``sonomap`` that runs this file as a script,
which hands its own stdin, stdout and stderr to a forked command and exits with its status."""

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
SOCKETS_ENV = "SONOMAP_TEST_FORK_SOCKETS"  # for a script's `sonomap`: {kind: socket path} as JSON
SIGNAL_EXIT_BASE = 128  # a shell's exit status for a command ended by a signal: 128 + its number
SERVER = Path(__file__).with_name("cli_zygote.py")
START_TIMEOUT_S = 120  # the server imports every library once: seconds on a loaded machine
CMD = [sys.executable, "-m", "edge_runtime.cli"]

# the commands that load torch (a checkpoint's training, evaluation, calibration or export): forked
# from the server that imported it; `export tensorrt` and `selfcheck` never load torch
TORCH_COMMANDS = {
    "train",
    "pretrain",
    "evaluate",
    "calibrate",
    "crossval",
    "bench-train",
    "upgrade-checkpoint",
}
TORCH_EXPORTS = {"onnx", "torchscript"}

_servers: dict[str, dict] = {}
_server_lock = threading.Lock()


def server_kind(argv: list[str]) -> str:
    """ "torch" for a command that loads torch, else "plain" (the top-level options take no value)."""
    words = [a for a in argv if not a.startswith("-")]
    command, target = (words + ["", ""])[:2]
    return (
        "torch" if command in TORCH_COMMANDS or (command == "export" and target in TORCH_EXPORTS) else "plain"
    )


def _socket_path(kind: str) -> str:
    """The running ``kind`` server's socket, started on first use (one of each per pytest process)."""
    with _server_lock:
        server = _servers.setdefault(kind, {})
        proc = server.get("proc")
        if proc is not None and proc.poll() is None:
            return server["path"]
        folder = tempfile.mkdtemp(prefix="sonomap-fork-")
        path = os.path.join(folder, "s")
        proc = subprocess.Popen(
            [sys.executable, str(SERVER), path, kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=folder,
        )
        line = _read_line(proc, START_TIMEOUT_S)
        if line != b"ready\n":
            proc.kill()
            raise RuntimeError(f"the sonomap fork server did not start (said {line!r})")
        server.update(proc=proc, path=path)
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


def _send(conn: socket.socket, argv: list[str], fds: list[int], env: dict[str, str] | None = None) -> None:
    """The request: the command's arguments, this process's environment (``env`` added) and folder,
    its stdio fds."""
    body = json.dumps({"argv": argv, "env": {**os.environ, **(env or {})}, "cwd": os.getcwd()}).encode()
    socket.send_fds(conn, [HEADER.pack(len(body)) + body], fds)


def sonomap_shim(folder: Path, path: str | None = None) -> dict[str, str]:
    """A ``sonomap`` in ``folder`` that forks each command from this process's servers; returns the
    environment a script needs to run it: ``PATH`` (``path``, default this process's) with ``folder``
    first, and the servers' sockets."""
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "sonomap"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    shim.chmod(0o755)
    sockets = {kind: _socket_path(kind) for kind in ("plain", "torch")}
    search = os.environ["PATH"] if path is None else path
    return {"PATH": f"{folder}{os.pathsep}{search}", SOCKETS_ENV: json.dumps(sockets)}


def main(argv: list[str]) -> int:
    """``sonomap ARGV`` for a script: forked from the servers named in SONOMAP_TEST_FORK_SOCKETS,
    with this process's stdin, stdout and stderr; its exit status as a shell gives it."""
    sockets = json.loads(os.environ[SOCKETS_ENV])
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(sockets[server_kind(argv)])
        _send(conn, argv, [0, 1, 2])
        answers = conn.makefile("rb")
        json.loads(answers.readline())  # the pid: this client waits for it without a time limit
        code = os.waitstatus_to_exitcode(json.loads(answers.readline())["status"])
    return code if code >= 0 else SIGNAL_EXIT_BASE - code


def run_forked(
    argv: list[str], timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``sonomap ARGV`` forked from this process's server, with ``env`` added to its environment."""
    cmd = [*CMD, *argv]
    deadline = time.monotonic() + timeout
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    outs: list[bytes] = []
    errs: list[bytes] = []
    readers = [threading.Thread(target=_drain, args=a, daemon=True) for a in ((out_r, outs), (err_r, errs))]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(_socket_path(server_kind(argv)))
        _send(conn, argv, [null, out_w, err_w], env)
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
