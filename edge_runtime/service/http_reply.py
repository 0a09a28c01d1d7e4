"""How the HTTP viewer reads every request and answers it, before any route runs.

:class:`ReplyHandler` is the base of the viewer's request handler
(:mod:`edge_runtime.service.http_handler`). It

- answers the stdlib's own refusals (400 bad request line, 414, 431, 501) in plain text with the
  security headers, ending the connection (:meth:`ReplyHandler.send_error`);
- reads the request's header lines within ``MAX_HEADER_BYTES`` in all (:class:`HeaderBudget`):
  more gets ``431`` and ends the connection, before any token check, as soon as the budget is spent;
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

import http.client
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
# All of a request's header lines together, at most. The stdlib alone allows 100 lines of 64 KiB
# (6.4 MiB a connection, 400 MiB over the 64 connections the server holds), read from anyone before
# the token is checked. Browsers send a few KiB, cookies of every application on the host included;
# nginx refuses more than 32 KiB by default.
MAX_HEADER_BYTES = 64 * 1024


class HeaderBudget:
    """A request's ``rfile`` as ``http.client.parse_headers`` reads it (``readline`` only), allowing
    ``budget`` bytes in all. Input: the connection's buffered reader. Output: its lines, or
    ``http.client.LineTooLong`` (which the stdlib answers 431, closing the connection) once they
    would pass the budget: never more than the budget is read or held."""

    def __init__(self, rfile, budget: int = MAX_HEADER_BYTES):
        self.rfile, self.left = rfile, budget

    def readline(self, limit: int = -1) -> bytes:
        allowed = self.left + 1  # one byte past the budget tells a line that passes it
        line = self.rfile.readline(allowed if limit < 0 else min(limit, allowed))
        self.left -= len(line)
        if self.left < 0:
            raise http.client.LineTooLong(f"request headers over {MAX_HEADER_BYTES} bytes in all")
        return line


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
        connection ending) when either is refused; the route then never runs. The headers are read
        through a :class:`HeaderBudget`; the body, if a route reads one, from the connection itself."""
        rfile, self.rfile = self.rfile, HeaderBudget(self.rfile)
        try:
            parsed = super().parse_request()
        finally:
            self.rfile = rfile
        if not parsed:
            return False
        try:
            self.target = urlsplit(self.path)
        except ValueError:  # an unbalanced '[' or ']' in an absolute-form target, a bad netloc
            self._refuse(400, BAD_TARGET, TEXT)
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (a bad request line 400, 414, 431, an unknown method 501) as
        this server answers: plain text with the security headers, ending the connection, instead of
        the stdlib's HTML page without them."""
        self.close_connection = True
        short = self.responses.get(code, ("error", ""))[0]
        text = f"{code} {message or short}\n"
        self._send(code, text.encode("latin-1", "replace"), TEXT)

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
