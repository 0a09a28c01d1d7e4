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
``Host`` header must name loopback (DNS rebinding). A ``POST`` a browser sends from another
site's page gets 403, and so does a ``GET`` such a page makes it send (an ``<img>`` of the stream),
other than the user's own navigation (http_request_checks.py). ``tls_cert``/``tls_key`` serve HTTPS.
Timeouts, the connection cap and dropping stalled stream viewers are in http_guard.py.
The render thread only stores a reference to the newest frame (throttled); JPEG encoding
happens lazily in the request threads, once per frame however many viewers watch
(:mod:`edge_runtime.service.http_frames`). The routes: :mod:`edge_runtime.service.http_handler`.
"""

from __future__ import annotations

import logging
import threading
from importlib.resources import files
from typing import Any

import numpy as np

from edge_runtime.aistate import UNHEALTHY
from edge_runtime.errors import ConfigError
from edge_runtime.frames import Frame, Observer, Prediction
from edge_runtime.live_stats import LiveStats
from edge_runtime.service.http_auth import CREDENTIAL_NAME, MIN_TOKEN_CHARS, TOKEN_ENV, resolve_token
from edge_runtime.service.http_frames import FrameStore
from edge_runtime.service.http_guard import GuardedHTTPServer, is_loopback, tls_context
from edge_runtime.service.http_handler import MAX_STREAMS, RequestHandler
from edge_runtime.units import MS_PER_S

log = logging.getLogger("sonomap.http")

DEFAULT_HOST = "127.0.0.1"
HEALTHY_MAX_FRAME_AGE_S = 2.0  # older newest frame: /healthz fails (the live loop shows NO SIGNAL then)
SERVER_JOIN_S = 5.0  # at close: shutdown() has stopped serve_forever; a thread that still hangs is left


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
        host = host.strip("[]")  # --http [::1]:8080
        # a token guards a non-loopback address only when it cannot be guessed
        self.token = resolve_token(
            token, f"--http {host}:{port}", 0 if is_loopback(host) else MIN_TOKEN_CHARS
        )
        if not is_loopback(host) and not self.token:
            raise ConfigError(
                f"--http {host}:{port}: binding a non-loopback address needs a token "
                f"(${TOKEN_ENV}, or the systemd credential '{CREDENTIAL_NAME}')"
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
        handler = type("Handler", (RequestHandler,), {"observer": self})
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
        if self._thread.is_alive():  # shutdown() waits for serve_forever: for ever if its thread has died
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
