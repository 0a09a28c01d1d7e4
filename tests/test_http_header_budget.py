"""Request headers are read within a budget (http_reply.MAX_HEADER_BYTES in all), from anyone, before
the token is checked: a real server on 127.0.0.1, real sockets.

The stdlib alone reads 100 header lines of 64 KiB each, 6.4 MiB a connection: 64 connections that
send that much and hold back the blank line that ends the headers kept 400 MiB in a `sonomap live`
process until the request deadline cut them. Now the server answers 431 and closes the connection as
soon as the budget is spent, whether or not the client ever ends its headers; a browser's headers,
the cookies of other applications on the host included, stay well within it.
"""

from __future__ import annotations

import http.client
import socket

import pytest

from edge_runtime.service.http_reply import MAX_HEADER_BYTES
from edge_runtime.service.http_server import make_http_observer

TOKEN = "budget-token-0123456789abcdef"
# The request deadline is set far beyond the client's wait: an answer can then only come from the
# budget, never from the deadline cutting the connection.
REQUEST_TIMEOUT_S = 120.0
CLIENT_TIMEOUT_S = 30.0
STDLIB_MAX_LINE = 65536  # http.client's own limit per header line: each line below stays under it
LINE_BYTES = 60 * 1024
BROWSER_COOKIES = 16 * 1024  # a generous browser Cookie header: many applications on localhost


@pytest.fixture()
def server():
    obs = make_http_observer("127.0.0.1", 0, TOKEN, request_timeout_s=REQUEST_TIMEOUT_S)
    yield obs
    obs.close()


def until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_headers_over_the_budget_get_431_without_waiting_for_their_end(server):
    lines = MAX_HEADER_BYTES // LINE_BYTES + 1
    header = b"X-Filler: " + b"a" * (LINE_BYTES - len(b"X-Filler: \r\n")) + b"\r\n"
    assert len(header) < STDLIB_MAX_LINE and lines * len(header) > MAX_HEADER_BYTES
    with socket.create_connection(("127.0.0.1", server.port), timeout=CLIENT_TIMEOUT_S) as sock:
        # No blank line: the headers never end. Without the budget the server waits for more.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header * lines)
        answer = until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"Connection: close" in answer


def test_a_browsers_headers_and_other_applications_cookies_fit_the_budget(server):
    cookies = "; ".join(f"app{n}=" + "v" * 100 for n in range(BROWSER_COOKIES // 108))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=CLIENT_TIMEOUT_S)
    try:
        conn.request("GET", "/study-id", headers={"Authorization": f"Bearer {TOKEN}", "Cookie": cookies})
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        resp.read()
    finally:
        conn.close()
