"""HTTP viewer, health check and Prometheus metrics for the live runtime (stdlib only).

``make_http_observer(host, port, token)`` returns an :class:`HttpObserver`: plug it into
the pipeline's observers and it serves, from its own threads,

- ``/healthz``      200 while frames with a real signal flow (newest < 2 s old) and the AI is not
                    STALLED or in ERROR, else 503 with the reason (the video goes on regardless); a
                    paused or failed recorder keeps 200 and adds ``degraded: REC ...`` to the body;
- ``/metrics``      Prometheus text, ``sonomap_*`` series (see service_metrics);
- ``/``             the live viewer page (edge_runtime/web/index.html);
- ``/stream.mjpg``  MJPEG of the rendered overlay; ``/snapshot.jpg`` one JPEG;
- ``/stats.json``   the numbers the viewer page shows;
- ``POST /mark``    mark a biopsy (with ``--cases DIR``; 409 without).
- ``POST /study-id`` set the session's pseudonymous study ID (body: the ID as text; 400 with the
                    rule when it is not a pseudonym, 409 without ``--cases DIR``);
                    ``GET /study-id`` gives it as JSON ``{"study_id", "capturing"}``.

It binds 127.0.0.1 by default. On any other address a token is required (refusing to
start without one); requests then need ``Authorization: Bearer <token>`` or the session
cookie the login page sets (http_auth.py; never a token in the URL). On loopback the
``Host`` header must name loopback (DNS rebinding). ``tls_cert``/``tls_key`` serve HTTPS.
Timeouts, the connection cap and dropping stalled stream viewers are in http_guard.py.
The render thread only stores a reference to the newest frame (throttled); JPEG encoding
happens lazily in the request threads, once per frame however many viewers watch.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from edge_runtime.aistate import UNHEALTHY
from edge_runtime.biopsy.marks import MARKS
from edge_runtime.biopsy.study_id import STUDY_ID
from edge_runtime.errors import ConfigError
from edge_runtime.frames import Frame, Observer, Prediction
from edge_runtime.live_stats import EVENTS, LiveStats
from edge_runtime.service import http_auth
from edge_runtime.service.http_auth import CREDENTIAL_NAME, MIN_TOKEN_CHARS, TOKEN_ENV, resolve_token
from edge_runtime.service.http_guard import (
    BUSY,
    WAITING,
    GuardedHTTPServer,
    host_allowed,
    is_loopback,
    tls_context,
)
from edge_runtime.service.prometheus_export import CONTENT_TYPE as METRICS_CONTENT_TYPE
from edge_runtime.service.prometheus_export import render_prometheus
from edge_runtime.units import MS_PER_S

log = logging.getLogger("sonomap.http")

DEFAULT_HOST = "127.0.0.1"
HEALTHY_MAX_FRAME_AGE_S = 2.0  # older newest frame: /healthz fails (the live loop shows NO SIGNAL then)
SERVER_JOIN_S = 5.0  # at close: shutdown() has stopped serve_forever; a thread that still hangs is left
MAX_STUDY_ID_BODY = 64  # a study ID is at most 16 characters; room for a newline and stray spaces
MJPEG_MAX_FPS = 15.0  # viewers do not need capture rate; this caps CPU spent on JPEG
JPEG_QUALITY = 80
STREAM_WAIT_S = 1.0  # a streaming thread re-checks for shutdown this often
MAX_STREAMS = 8  # concurrent MJPEG viewers: each holds a thread and JPEG bandwidth
BOUNDARY = "sonomapframe"
PUBLIC_PATHS = frozenset({"/viewer.js", "/login"})  # static code; the login form
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self' 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
LOGIN_MESSAGE_SLOT = b"<!--message-->"


class NoFrame(Exception):
    """No JPEG to serve: none newer than asked for arrived in time, or it could not be encoded."""


class FrameStore:
    """Newest rendered frame + its JPEG, shared by all request threads."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.image: np.ndarray | None = None
        self.seq = 0
        self._jpeg: bytes | None = None
        self._jpeg_seq = -1
        self.closed = False
        self._last_put = 0.0

    def put(self, rendered: np.ndarray) -> None:
        now = time.monotonic()
        if now - self._last_put < 1.0 / MJPEG_MAX_FPS:
            return
        self._last_put = now
        copy = rendered.copy()  # the pipeline may reuse its render buffer
        with self.cond:
            self.image, self.seq = copy, self.seq + 1
            self.cond.notify_all()

    def jpeg(self, after_seq: int = -1, timeout: float = STREAM_WAIT_S) -> tuple[int, bytes]:
        """Wait until a frame newer than ``after_seq`` exists; return (seq, JPEG bytes).

        Raises :class:`NoFrame` (with the reason) when none came within ``timeout``."""
        with self.cond:
            self.cond.wait_for(
                lambda: self.closed or (self.image is not None and self.seq > after_seq), timeout
            )
            if self.image is None:
                raise NoFrame("no frame rendered yet")
            if self.seq <= after_seq:
                raise NoFrame(f"no new frame within {timeout:.1f} s")
            if self._jpeg_seq != self.seq:
                ok, buf = cv2.imencode(".jpg", self.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise NoFrame(f"frame {self.seq} could not be encoded as JPEG")
                self._jpeg, self._jpeg_seq = buf.tobytes(), self.seq
            return self.seq, self._jpeg

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class HttpObserver(Observer):
    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = 0,
        token: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        **guard: float,
    ):
        self.token = resolve_token(token)
        host = host.strip("[]")  # --http [::1]:8080
        if not is_loopback(host):
            if not self.token:
                raise ConfigError(
                    f"--http {host}:{port}: binding a non-loopback address needs a token "
                    f"(${TOKEN_ENV}, or the systemd credential '{CREDENTIAL_NAME}')"
                )
            if len(self.token) < MIN_TOKEN_CHARS:
                raise ConfigError(
                    f"--http {host}:{port}: token too short (need >= {MIN_TOKEN_CHARS} characters)"
                )
        tls = tls_context(tls_cert, tls_key)
        self.scheme = "https" if tls else "http"
        self.check_host = is_loopback(host)  # DNS rebinding only reaches loopback services
        self.stats = LiveStats()
        self.frames = FrameStore()
        self.stream_slots = threading.BoundedSemaphore(MAX_STREAMS)
        web = files("edge_runtime").joinpath("web")
        self.assets = {
            "/": (web.joinpath("index.html").read_bytes(), "text/html; charset=utf-8"),
            "/viewer.js": (web.joinpath("viewer.js").read_bytes(), "text/javascript; charset=utf-8"),
        }
        self.login_page = web.joinpath("login.html").read_bytes()
        handler = type("Handler", (_Handler,), {"observer": self})
        try:
            self.server = GuardedHTTPServer((host, port), handler, tls, **guard)
        except OSError as exc:
            raise ConfigError(f"--http {host}:{port}: cannot listen: {exc.strerror or exc}") from exc
        self.host, self.port = host, self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="sonomap-http", daemon=True)
        self._thread.start()
        log.warning("HTTP viewer on %s (token %s)", self.url, "required" if self.token else "not required")
        if not tls and not self.check_host:
            log.warning(
                "HTTP viewer on %s without TLS: the token and the video cross the network in clear "
                "(give --tls-cert and --tls-key)",
                self.url,
            )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/"

    def healthy(self) -> tuple[bool, str]:
        age = self.stats.frame_age_s(signal_only=True)
        if self.stats.no_signal:
            return False, "no signal from capture device"
        if age is None:
            return False, "no frame rendered yet"
        if age > HEALTHY_MAX_FRAME_AGE_S:
            return False, f"no frame for {age:.1f} s"
        ai = self.stats.snapshot()["ai"]
        ai_text = (
            f"AI {ai['state']}" + (f" {ai['detail']}" if ai.get("detail") else "")
            if ai
            else "AI state unknown"
        )
        if ai.get("state") in UNHEALTHY:
            return False, f"{ai_text}: video continues without the AI"
        problem = self.stats.recorder_problem()  # degraded, not down: the display goes on
        return True, f"ok, newest frame {age * MS_PER_S:.0f} ms old, {ai_text}" + (
            f"; degraded: {problem}" if problem else ""
        )

    def on_frame(
        self, frame: Frame, prediction: Prediction | None, rendered: np.ndarray, stats: dict[str, Any]
    ) -> None:
        self.stats.update(frame, prediction, stats)
        self.frames.put(rendered)

    def close(self) -> None:
        self.frames.close()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=SERVER_JOIN_S)


def make_http_observer(
    host: str = DEFAULT_HOST,
    port: int = 0,
    token: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    **guard: float,
) -> HttpObserver:
    """Start the HTTP server now (raises ConfigError when it cannot) and return its Observer.
    ``guard``: http_guard.GuardedHTTPServer limits (max_connections, request_timeout_s, io_timeout_s)."""
    return HttpObserver(host, int(port), token, tls_cert, tls_key, **guard)


class _Handler(BaseHTTPRequestHandler):
    observer: HttpObserver
    server_version = "sonomap"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # query strings never reach the logs
        log.debug("%s %s", self.address_string(), (fmt % args).split("?")[0])

    def handle_one_request(self) -> None:
        self.server.mark(WAITING)  # until its headers are in: under the request deadline, evictable
        super().handle_one_request()

    def _send(self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _admitted(self, path: str, query: str) -> bool:
        """Answer and return False for a request that must not go further."""
        obs = self.observer
        if http_auth.token_in_query(query):
            self._send(
                400, b"tokens in URLs are refused: log in at / or send Authorization: Bearer <token>\n", TEXT
            )
            return False
        if path not in PUBLIC_PATHS and not http_auth.authorised(self.headers, obs.token):
            challenge = {"WWW-Authenticate": 'Bearer realm="sonomap"'}
            if path == "/":
                self._send(401, obs.login_page, HTML, challenge)
            else:
                self._send(
                    401, b"unauthorised: log in at / or send Authorization: Bearer <token>\n", TEXT, challenge
                )
            return False
        if obs.check_host and not host_allowed(self.headers.get("Host")):
            self._send(
                403,
                b"forbidden: the Host header must name this machine's loopback "
                b"(localhost, 127.0.0.1, [::1])\n",
                TEXT,
            )
            return False
        return True

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        self.server.mark(BUSY)
        url, obs = urlsplit(self.path), self.observer
        if url.path == "/mark":  # a biopsy mark (captured with --cases DIR); the body is ignored
            self.close_connection = True
            if self._admitted(url.path, url.query):
                ok = MARKS.request("http")
                self._send(
                    200 if ok else 409,
                    b"marked\n" if ok else b"not capturing: start with --cases DIR\n",
                    TEXT,
                )
        elif url.path == "/study-id":
            self.close_connection = True
            if self._admitted(url.path, url.query):
                self._set_study_id()
        elif url.path != "/login":
            self._send(404, b"not found\n", TEXT)
        elif self._admitted(url.path, url.query):
            length = self.headers.get("Content-Length", "")
            if not length.isdigit() or int(length) > http_auth.MAX_LOGIN_BODY:
                self.close_connection = True
                self._send(400, b"login: send the form (at most 4 KiB, with Content-Length)\n", TEXT)
                return
            code, extra = http_auth.login(self.rfile.read(int(length)), obs.token, obs.scheme == "https")
            page = obs.login_page.replace(LOGIN_MESSAGE_SLOT, b"Wrong token.")
            self._send(code, page if code == 401 else b"logged in\n", HTML if code == 401 else TEXT, extra)

    def _set_study_id(self) -> None:
        """``POST /study-id``: the body (text) becomes the session's study ID, if it is a pseudonym."""
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_STUDY_ID_BODY:
            self._send(400, b"study ID: send it as the body (at most 64 bytes, with Content-Length)\n", TEXT)
            return
        if not STUDY_ID.enabled:
            self._send(409, b"not capturing: start with --cases DIR\n", TEXT)
            return
        text = self.rfile.read(int(length)).decode("utf-8", "replace").strip()
        try:
            STUDY_ID.set(text, "study ID")
        except ConfigError as exc:  # the message names the rule, never the refused text
            self._send(400, f"{exc}\n".encode(), TEXT)
            return
        log.warning("study ID changed from the viewer; the next captured cases carry it")
        self._send(200, b"study ID set\n", TEXT)

    def do_GET(self) -> None:
        self.server.mark(BUSY)
        url = urlsplit(self.path)
        if not self._admitted(url.path, url.query):
            return
        obs = self.observer
        if url.path == "/healthz":
            ok, why = obs.healthy()
            self._send(200 if ok else 503, (why + "\n").encode(), "text/plain; charset=utf-8")
        elif url.path == "/metrics":
            self._send(200, render_prometheus(obs.stats).encode(), METRICS_CONTENT_TYPE)
        elif url.path in obs.assets:
            self._send(200, *obs.assets[url.path])
        elif url.path == "/study-id":
            body = {"study_id": STUDY_ID.value, "capturing": STUDY_ID.enabled}
            self._send(200, json.dumps(body).encode(), "application/json")
        elif url.path == "/stats.json":
            snap = {**obs.stats.snapshot(), "healthy": obs.healthy()[0]}
            self._send(200, json.dumps(snap).encode(), "application/json")
        elif url.path == "/snapshot.jpg":
            try:
                _, jpeg = obs.frames.jpeg(timeout=STREAM_WAIT_S)
            except NoFrame as exc:
                self._send(503, f"{exc}\n".encode(), "text/plain; charset=utf-8")
            else:
                self._send(200, jpeg, "image/jpeg")
        elif url.path == "/stream.mjpg":
            self._stream()
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _stream(self) -> None:
        if not self.observer.stream_slots.acquire(blocking=False):
            self._send(503, f"too many viewers (max {MAX_STREAMS})\n".encode(), "text/plain; charset=utf-8")
            return
        try:
            self._stream_frames()
        finally:
            self.observer.stream_slots.release()

    def _stream_frames(self) -> None:
        self.close_connection = True
        self.send_response(200)
        for key, value in SECURITY_HEADERS.items():
            self.send_header(key, value)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        seq, frames = -1, self.observer.frames
        try:
            while not frames.closed:
                try:
                    seq, jpeg = frames.jpeg(seq)
                except NoFrame:
                    continue  # re-check for shutdown, then wait again
                self.wfile.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                    + jpeg
                    + b"\r\n"
                )
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return  # the viewer closed its tab
        except TimeoutError:  # it stopped reading: drop it so it does not hold a stream slot for ever
            EVENTS.inc("http_stream_stalled")
            log.warning("HTTP viewer %s stopped reading its stream; dropped", self.address_string())
