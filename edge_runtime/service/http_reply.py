"""How the HTTP viewer reads every request and answers it, before any route runs.

:class:`ReplyHandler` is the base of the viewer's request handler
(:mod:`edge_runtime.service.http_handler`). It

- parses the request target once (``self.target``). A target ``urlsplit()`` refuses, such as the
  absolute form ``http://[x/`` with an unbalanced bracket, gets ``400`` and ends the connection
  before any route or token check: a request from anyone is answered, never an exception;
- checks the framing of a request that reads no body (``GET``, ``HEAD``): any ``Content-Length``
  or ``Transfer-Encoding`` makes it the connection's last, since a body left unread would be parsed
  as the next request (smuggled past this one's checks); a ``Content-Length`` not given exactly once
  in ASCII digits gets ``400``;
- answers with the security headers on every response, and ``Connection: close`` when the
  connection ends with it; a refusal (400/401/403) always ends it.
"""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import SplitResult, urlsplit

from edge_runtime.service.http_connections import WAITING
from edge_runtime.service.http_request_checks import content_length

log = logging.getLogger("sonomap.http")

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
BAD_TARGET = b"bad request: the request target is not a path or URL\n"
BAD_LENGTH = b"bad request: Content-Length must be given once, in ASCII digits\n"


class ReplyHandler(BaseHTTPRequestHandler):
    """Request parsing and answering shared by every route; ``self.target`` is the parsed target."""

    server_version = "sonomap"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    target: SplitResult

    def log_message(self, fmt: str, *args: Any) -> None:  # query strings never reach the logs
        log.debug("%s %s", self.address_string(), (fmt % args).split("?")[0])

    def handle_one_request(self) -> None:
        self.server.mark(WAITING)  # until its headers are in: under the request deadline, evictable
        super().handle_one_request()

    def parse_request(self) -> bool:
        """The stdlib's request-line and header checks, then the target. Returns False (answered,
        connection ending) when either is refused; the route then never runs."""
        if not super().parse_request():
            return False
        try:
            self.target = urlsplit(self.path)
        except ValueError:  # an unbalanced '[' or ']' in an absolute-form target, a bad netloc
            self._refuse(400, BAD_TARGET, TEXT)
            return False
        return True

    def _send(self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:  # the client learns it cannot send another request on this one
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _refuse(self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        """Answer 400/401/403 and end the connection: nothing pipelined behind a refusal is served."""
        self.close_connection = True
        self._send(code, body, ctype, extra)

    def _no_body_framing_ok(self) -> bool:
        """For a request that reads no body (GET, HEAD). Any ``Content-Length`` or
        ``Transfer-Encoding`` makes it the connection's last; a ``Content-Length`` that is repeated
        or not plain digits is answered 400. Returns False when the request was refused."""
        lengths = self.headers.get_all("Content-Length") or []
        if lengths or "Transfer-Encoding" in self.headers:
            self.close_connection = True
        if lengths and content_length(self.headers) is None:
            self._refuse(400, BAD_LENGTH, TEXT)
            return False
        return True
