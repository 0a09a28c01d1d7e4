"""Loopback helpers the service tests share: a free TCP port, requests that return error pages too,
starting `sonomap live` in the background, and waiting for a started service to report healthy."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from runtime_model import dark_onnx

LOOPBACK = "127.0.0.1"
GET_TIMEOUT_S = 5.0  # a local service answers in milliseconds; longer means it is stuck
SONOMAP = [sys.executable, "-m", "edge_runtime.cli"]  # this tree's code, whatever is installed
LIVE_START_TIMEOUT_S = 90  # model load + first frame on 2 shared cores, with margin


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick; the caller binds it soon after)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def get_bytes(url: str, timeout: float = GET_TIMEOUT_S) -> tuple[int, bytes]:
    """(status, body) of a GET; an HTTP error status is returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get(url: str, timeout: float = GET_TIMEOUT_S) -> tuple[int, str]:
    """(status, body as text) of a GET; an HTTP error status is returned, not raised."""
    status, body = get_bytes(url, timeout)
    return status, body.decode()


def request(
    url: str, method: str = "GET", body: bytes | None = None, token: str | None = None
) -> tuple[int, str]:
    """(status, body as text) of a request (a POST sends ``body``, empty by default); an HTTP error
    status is returned, not raised. ``token``: sent as ``Authorization: Bearer``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = body if body is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(url, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=GET_TIMEOUT_S) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


CLOSE_WAIT_S = 3.0  # how long a test waits for a server to close a connection it should close
HEALTH_POLL_S = 0.3  # how often a starting service is asked for /healthz


def wait_healthy(base: str, proc, timeout_s: float) -> None:
    """Wait until ``base + "healthz"`` answers 200; fail at once (with its stderr) if ``proc`` ends."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            if request(base + "healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(HEALTH_POLL_S)
    raise AssertionError("live did not become healthy")


def start_live(*args, port: int | None = None, stdout=subprocess.PIPE, **popen) -> subprocess.Popen:
    """`sonomap live` on the synthetic scanner with the dark-region test model, headless, in the
    background: ``port`` serves HTTP on loopback, ``args`` are added. stderr is piped as text."""
    http = ["--http", f"{LOOPBACK}:{port}"] if port is not None else []
    argv = ["live", "--source", "synthetic", "--model", dark_onnx(), "--headless", *http, *args]
    return subprocess.Popen(
        [*SONOMAP, *map(str, argv)], stdout=stdout, stderr=subprocess.PIPE, text=True, **popen
    )


def answer_or_close(port: int, timeout: float = CLOSE_WAIT_S) -> bytes:
    """What a server on 127.0.0.1:``port`` sends to a GET /healthz before it closes the connection
    (b'' if nothing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def closed_by_server(sock: socket.socket, within: float = CLOSE_WAIT_S) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def serve_page(page: bytes) -> ThreadingHTTPServer:
    """A web site on 127.0.0.1 (a free port, in a daemon thread) answering every GET with the HTML
    ``page``: another site's page, as a browser on the cart might have open. Shut it down after."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
