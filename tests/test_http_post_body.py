"""A request body the viewer does not read is never parsed as a second request: a real server on
127.0.0.1, raw sockets. Without this, `POST /nope` carrying `GET /stats.json ...` as its body got a
404 and then an answer to the smuggled request, past whatever looked at the first one."""

from __future__ import annotations

import socket

import pytest

from edge_runtime.service.http_server import make_http_observer

TOKEN = "s3cret-token-0123456789"
SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
READ_TIMEOUT_S = 5
KEEP_ALIVE_WAIT_S = 1  # a kept connection sends nothing more: stop reading after this
STATUS_LINE = b"HTTP/1.1 "


@pytest.fixture()
def server():
    obs = make_http_observer("127.0.0.1", 0, TOKEN)
    yield obs
    obs.close()


def exchange(port: int, request: bytes, timeout: float = READ_TIMEOUT_S) -> bytes:
    """Send ``request`` on one connection and read until the server closes it (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:  # the server kept the connection open for a next request
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def with_body(head: str, body: bytes, auth: bool = False) -> bytes:
    headers = f"{head} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
    if auth:
        headers += f"Authorization: Bearer {TOKEN}\r\n"
    return headers.encode() + b"\r\n" + body


@pytest.mark.parametrize(
    "request_line, auth, status",
    [
        ("POST /nope", True, b"404"),  # unknown path
        ("POST /nope", False, b"404"),
        ("POST /mark", False, b"401"),  # not authorised: the body is not read
        ("POST /mark", True, b"409"),  # a mark ignores its body
        ("POST /study-id", False, b"401"),
        ("POST /login?token=x", False, b"400"),  # refused before the form is read
        ("GET /healthz", True, b"503"),  # GET and HEAD ignore a body too
        ("GET /nope", True, b"404"),
    ],
)
def test_an_unread_body_is_not_a_second_request(server, request_line, auth, status):
    reply = exchange(server.port, with_body(request_line, SMUGGLED, auth))
    assert reply.count(STATUS_LINE) == 1, reply
    assert reply.startswith(STATUS_LINE + status), reply
    assert b"\r\nConnection: close\r\n" in reply


def test_a_bodiless_get_keeps_the_connection_for_the_next_request(server):
    two = b"GET /viewer.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 2
    reply = exchange(server.port, two, KEEP_ALIVE_WAIT_S)
    assert reply.count(STATUS_LINE + b"200") == 2, reply[:300]
