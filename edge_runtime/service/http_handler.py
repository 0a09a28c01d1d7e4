"""The HTTP viewer's request handler: authorisation, the routes and the MJPEG stream.

Routes and rules are those of :mod:`edge_runtime.service.http_server`; the handler reads the server's
state through :class:`ViewerState` (the :class:`~edge_runtime.service.http_server.HttpObserver`).
Parsing the request target, a body-less request's framing and the answers themselves are in
:mod:`edge_runtime.service.http_reply`.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from edge_runtime.biopsy.marks import MARKS
from edge_runtime.biopsy.study_id import STUDY_ID
from edge_runtime.errors import ConfigError
from edge_runtime.jsonfile import json_text
from edge_runtime.live_stats import EVENTS, LiveStats
from edge_runtime.service import http_auth
from edge_runtime.service.http_connections import BUSY
from edge_runtime.service.http_frames import STREAM_WAIT_S, FrameStore, NoFrame
from edge_runtime.service.http_guard import host_allowed
from edge_runtime.service.http_reply import HTML, SECURITY_HEADERS, TEXT, ReplyHandler
from edge_runtime.service.http_request_checks import content_length, cross_site, cross_site_load

log = logging.getLogger("sonomap.http")

MAX_STUDY_ID_BODY = 64  # a study ID is at most 16 characters; room for a newline and stray spaces
MAX_STREAMS = 8  # concurrent MJPEG viewers: each holds a thread and JPEG bandwidth
BOUNDARY = "sonomapframe"
PUBLIC_PATHS = frozenset({"/viewer.js", "/login"})  # static code; the login form
LOGIN_MESSAGE_SLOT = b"<!--message-->"
NO_METRICS = "metrics unavailable: prometheus_client is not installed (pip install 'sonomap[metrics]')"
HOST_REFUSAL = b"forbidden: the Host header must name this machine's loopback (localhost, 127.0.0.1, [::1])\n"


class RequestEnded(Exception):
    """Reading the body ended the request: answered (a refused length) or not to be acted on (cut
    short, or the connection being cut). The route stops; ``do_POST`` catches it."""


class ViewerState(Protocol):
    """What the handler reads of the viewer it serves."""

    token: str | None
    scheme: str
    check_host: bool
    stats: LiveStats
    frames: FrameStore
    stream_slots: threading.BoundedSemaphore
    assets: dict[str, tuple[bytes, str]]
    login_page: bytes

    def healthy(self) -> tuple[bool, str]: ...


class RequestHandler(ReplyHandler):
    """One request; the class made per server sets ``observer``."""

    observer: ViewerState

    def _admitted(self, path: str, query: str) -> bool:
        """Answer (closing the connection) and return False for a request that must not go further."""
        obs = self.observer
        if http_auth.token_in_query(query):
            self._refuse(
                400, b"tokens in URLs are refused: log in at / or send Authorization: Bearer <token>\n", TEXT
            )
            return False
        if path not in PUBLIC_PATHS and not http_auth.authorised(self.headers, obs.token):
            challenge = {"WWW-Authenticate": 'Bearer realm="sonomap"'}
            if path == "/":
                self._refuse(401, obs.login_page, HTML, challenge)
            else:
                self._refuse(
                    401, b"unauthorised: log in at / or send Authorization: Bearer <token>\n", TEXT, challenge
                )
            return False
        hosts = (
            self.headers.get_all("Host") or []
        )  # two Host headers: which one a proxy obeys is anyone's guess
        if obs.check_host and not (len(hosts) == 1 and host_allowed(hosts[0])):
            self._refuse(403, HOST_REFUSAL, TEXT)
            return False
        return True

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        # Not marked BUSY yet: until the body it needs is in, the request stays under the request
        # deadline and evictable, so a body trickled byte by byte cannot hold a connection slot.
        url = self.target
        # Every POST is the connection's last: most answers (404, 401, 400, /mark) leave the body
        # unread, and an unread body would be parsed as a second request.
        self.close_connection = True
        route = POST_ROUTES.get(url.path)
        if route is None:
            self._send(404, b"not found\n", TEXT)
        elif self._admitted(url.path, url.query) and self._same_site(
            cross_site(self.headers, self.observer.scheme)
        ):
            try:
                getattr(self, route)()
            except RequestEnded as end:
                log.debug("HTTP POST %s from %s: %s", url.path, self.address_string(), end)

    def _same_site(self, why: str | None) -> bool:
        """Answer 403 and return False when ``why`` says a browser sent the request from another
        site's page (:func:`cross_site` for a state-changing one, :func:`cross_site_load` otherwise)."""
        if why is None:
            return True
        self._refuse(403, f"forbidden: a request from another site's page ({why})\n".encode(), TEXT)
        return False

    def _busy(self) -> bool:
        """The request is in: mark the connection BUSY. False (do nothing more) when it is being cut."""
        return self.server.mark(BUSY)

    def _length(self, limit: int, refusal: bytes) -> int:
        """The body's announced length. Answers 400 with ``refusal`` and raises RequestEnded when it
        is missing, not plain digits or over ``limit`` bytes."""
        length = content_length(self.headers)
        if length is None or length > limit:
            self._refuse(400, refusal, TEXT)
            raise RequestEnded("body length missing or over its limit: answered 400")
        return length

    def _body(self, length: int) -> bytes:
        """Read the ``length``-byte body, then mark the connection BUSY. Raises RequestEnded when it
        did not all come (cut at the request deadline, evicted, or the client gave up) or the
        connection is being cut: never act on part of a body."""
        body = self.rfile.read(length)
        if len(body) < length:
            raise RequestEnded(f"body cut short ({len(body)} of {length} bytes)")
        if not self._busy():
            raise RequestEnded("connection being cut")
        return body

    def _mark(self) -> None:
        """``POST /mark``: a biopsy mark (captured with --cases DIR); the body is ignored."""
        if self._busy():
            ok = MARKS.request("http")
            self._send(
                200 if ok else 409,
                b"mark queued for the next frame\n" if ok else b"not capturing: start with --cases DIR\n",
                TEXT,
            )

    def _login(self) -> None:
        """``POST /login``: the login form; a session cookie when its token is right."""
        obs = self.observer
        length = self._length(
            http_auth.MAX_LOGIN_BODY, b"login: send the form (at most 4 KiB, with Content-Length)\n"
        )
        body = self._body(length)
        code, extra = http_auth.login(body, obs.token, obs.scheme == "https")
        page = obs.login_page.replace(LOGIN_MESSAGE_SLOT, b"Wrong token.")
        self._send(code, page if code == 401 else b"logged in\n", HTML if code == 401 else TEXT, extra)

    def _set_study_id(self) -> None:
        """``POST /study-id``: the body (text) becomes the session's study ID, if it is a pseudonym."""
        length = self._length(
            MAX_STUDY_ID_BODY, b"study ID: send it as the body (at most 64 bytes, with Content-Length)\n"
        )
        if not STUDY_ID.enabled:
            self._send(409, b"not capturing: start with --cases DIR\n", TEXT)
            return
        body = self._body(length)
        text = body.decode("utf-8", "replace").strip()
        try:
            STUDY_ID.set(text, "study ID")
        except ConfigError as exc:  # the message names the rule, never the refused text
            self._refuse(400, f"{exc}\n".encode(), TEXT)
            return
        log.warning("study ID changed from the viewer; the next captured cases carry it")
        self._send(200, b"study ID set\n", TEXT)

    def _send_metrics(self, stats) -> None:
        """/metrics through prometheus_client, an optional package on the cart (the runtime runs
        on numpy, OpenCV, PyAV, PyYAML and ONNX Runtime/TensorRT alone): without it, a 503 that
        says what to install, and every other endpoint serves as before."""
        try:
            # deferred: optional, and only a scrape needs it
            from edge_runtime.service.prometheus_export import CONTENT_TYPE, render_prometheus
        except ImportError:
            self._send(503, (NO_METRICS + "\n").encode(), TEXT)
            return
        self._send(200, render_prometheus(stats).encode(), CONTENT_TYPE)

    def do_GET(self) -> None:
        url = self.target
        # GET and HEAD read no body: one announced ends the connection, a malformed length is refused
        if not self._no_body_framing_ok() or not self._admitted(url.path, url.query):
            return
        # Another site's page loading a path (<img src=/stream.mjpg> holds a stream slot): 403
        if not self._same_site(cross_site_load(self.headers)):
            return
        # BUSY (not evictable) only for a client with the token: a refused one, or one fetching a
        # public file, stays WAITING while its answer is written and can be evicted to make room.
        if http_auth.authorised(self.headers, self.observer.token) and not self._busy():
            return
        obs = self.observer
        if url.path == "/healthz":
            ok, why = obs.healthy()
            self._send(200 if ok else 503, (why + "\n").encode(), "text/plain; charset=utf-8")
        elif url.path == "/metrics":
            self._send_metrics(obs.stats)
        elif url.path in obs.assets:
            self._send(200, *obs.assets[url.path])
        elif url.path == "/study-id":
            body = {"study_id": STUDY_ID.value, "capturing": STUDY_ID.enabled}
            self._send(200, json_text(body, indent=None).encode(), "application/json")
        elif url.path == "/stats.json":
            snap = {**obs.stats.snapshot(), "healthy": obs.healthy()[0]}
            self._send(200, json_text(snap, indent=None).encode(), "application/json")
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


# The state-changing routes -> the handler method that serves each, after the token, Host and
# same-site checks.
POST_ROUTES = {"/mark": "_mark", "/study-id": "_set_study_id", "/login": "_login"}
