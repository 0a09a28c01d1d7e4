"""Test helper: a fork server that runs ``sonomap`` commands in fresh processes without paying the
interpreter's start and the libraries' imports each time.

Why: the suite starts ``sonomap`` as a child process several hundred times, and each child spent most
of a second importing numpy, OpenCV, PyAV, SciPy and pydicom before the command ran:
minutes of CI's 20. This server imports them once, then forks one child per command. The child is a
new process, as before: its own exit status, stdout and stderr (pipes handed over the socket), working
folder, environment and arguments (``sys.argv`` as ``python -m edge_runtime.cli`` sets it), and it
runs ``edge_runtime.cli`` as ``__main__`` and ends through the interpreter's normal exit (threads
joined, atexit run). Runtime and registration commands come from a server without torch, so they keep
the memory and imports they had; the training and export commands from one that imported torch too.

Protocol, one connection per command on a Unix socket: the client sends an 8-byte length and a JSON
request ``{"argv", "env", "cwd"}`` with three file descriptors (stdin, stdout, stderr); the server
forks a watcher that forks the command, answers ``{"pid"}`` and then ``{"status"}`` (the raw wait
status), one JSON line each. The server ends when its stdin closes (the pytest process ended).

Run as ``python cli_zygote.py SOCKET_PATH KIND``; :mod:`cli_fork` starts one of each kind per pytest
process: "plain", and "torch" for the commands that load a checkpoint (:data:`cli_fork.TORCH_COMMANDS`).
"""

from __future__ import annotations

import gc
import json
import os
import runpy
import selectors
import signal
import socket
import struct
import sys

HEADER = struct.Struct("!Q")
MAX_FDS = 3
# Never onnxruntime: a child forked after importing it hangs at exit (and it imports in ~25 ms).
PRELOAD = ("numpy", "cv2", "yaml", "av", "scipy.ndimage", "scipy.stats", "pydicom", "tifffile", "PIL.Image")
# the commands' own heaviest modules (SciPy's statistics and graphs), none of which loads torch
PRELOAD_OWN = (
    "edge_runtime.pipeline.graph",
    "edge_runtime.sources.opener",
    "edge_runtime.biopsy.observer",
    "registration.pipeline",
    "registration.batch",
    "registration.sim.biopsy_core",
    "registration.sim.lab",
    "registration.sim.procedure",
    "registration.pacs.export",
    "registration.pacs.objects",  # highdicom: `cases export` loads it per command otherwise
    "registration.pacs.stow",  # dicomweb-client and requests
    "training.concordance.run",
)
# The torch server (commands that train, evaluate, calibrate or export a checkpoint) adds torch,
# which a new interpreter took 3 to 5 s to import for each of them.
PRELOAD_TORCH = (
    "torch",
    "torchvision",
    "training.train",
    "training.evaluate",
    "training.calibration",
    "training.crossval",
    "training.bench",
    "training.pretrain",
    "training.checkpoint_upgrade",
    "export.onnx_command",
)
NEVER_PRELOADED = {"plain": ("torch", "onnxruntime"), "torch": ("onnxruntime",)}


def preload(kind: str) -> None:
    """Import the libraries every command pays for, and every stage's command modules (``kind``
    "torch": torch and the training modules too)."""
    import importlib

    for name in PRELOAD + PRELOAD_OWN + (PRELOAD_TORCH if kind == "torch" else ()):
        importlib.import_module(name)
    from edge_runtime.cli import build_parser

    build_parser()
    loaded = [name for name in NEVER_PRELOADED[kind] if name in sys.modules]
    if loaded:  # a command would then find it loaded, which `python -m` never gives it
        raise RuntimeError(
            f"the fork server's preload imported {loaded}: take that module out of PRELOAD_OWN"
        )


def receive(conn: socket.socket) -> tuple[dict, list[int]]:
    first, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, MAX_FDS)
    (size,) = HEADER.unpack(first[: HEADER.size])
    body = first[HEADER.size :]
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ConnectionError("request cut short")
        body += chunk
    return json.loads(body), fds


def become_command(request: dict, fds: list[int]) -> None:
    """In the forked child: take the request's stdio, folder, environment and arguments, then run the
    CLI as ``python -m edge_runtime.cli`` would. Returns only through SystemExit."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # as under `python -m`: the module runs as __main__ only (runpy warns of a copy already imported)
    cli = sys.modules.pop("edge_runtime.cli").__file__
    sys.argv = [cli, *request["argv"]]
    sys.path[0] = request["cwd"]  # `python -m` puts the working folder first, not this file's folder
    runpy.run_module("edge_runtime.cli", run_name="__main__", alter_sys=True)
    sys.exit(0)


def answer(conn: socket.socket, **fields) -> None:
    conn.sendall(json.dumps(fields).encode() + b"\n")


def serve(path: str, kind: str) -> None:
    preload(kind)
    # Every object imported so far goes to the collector's permanent generation (Python's advice for a
    # process that forks without exec): a child's collections, at its exit above all, then skip them,
    # instead of writing to every page of the server's heap it shares. Measured on the build machine: a
    # refused command's child ends in 0.13 s instead of 0.47 s, a torch command's in 0.5 s instead of 1.6 s.
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # watchers are reaped by the kernel
    watch = selectors.DefaultSelector()
    watch.register(listener, selectors.EVENT_READ)
    watch.register(sys.stdin, selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in watch.select():
            if key.fileobj is sys.stdin:
                if not os.read(sys.stdin.fileno(), 1):
                    return  # the pytest process is gone
                continue
            conn, _addr = listener.accept()
            request, fds = receive(conn)
            if os.fork() == 0:  # the watcher: forks the command, reports its pid and wait status
                listener.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                pid = os.fork()
                if pid == 0:  # no try block above this call: the command's SystemExit ends the process
                    conn.close()
                    become_command(request, fds)
                report(conn, pid, fds)
            conn.close()
            for fd in fds:
                os.close(fd)


def report(conn: socket.socket, pid: int, fds: list[int]) -> None:
    """In the watcher: answer the command's pid, wait for it, answer its wait status, and end (a
    client gone meanwhile has nothing to hear)."""
    try:
        for fd in fds:
            os.close(fd)
        answer(conn, pid=pid)
        _, status = os.waitpid(pid, 0)
        answer(conn, status=status)
    except OSError:
        pass
    finally:
        os._exit(0)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
    # only the server gets here (a command's child ends by SystemExit): its socket and folder go
    os.unlink(sys.argv[1])
    os.rmdir(os.path.dirname(sys.argv[1]))
