"""What a request says about itself, read strictly or leniently as each needs: a real server on
127.0.0.1, real sockets.

- A ``Content-Length`` that is not plain ASCII digits gets a one-line 400 (``'²'`` passed
  str.isdigit(), then int() raised in the handler thread: no answer and a traceback).
- Another application's cookie on the same host name does not hide the session cookie.
- A state-changing POST that a browser sends from another site's page is refused (403).
- A request target ``urlsplit()`` cannot read (``GET http://[x/``) gets 400, not a dropped
  connection and a traceback, even from a client without the token.
- A GET or HEAD with a body never has that body parsed as a second request: the connection closes
  after the answer, and a repeated or malformed ``Content-Length`` gets 400.
"""

from __future__ import annotations

import http.client
import socket
import threading

import pytest

from edge_runtime.service.http_server import make_http_observer

TOKEN = "checks-token-0123456789abcdef"
CLIENT_TIMEOUT_S = 5.0
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture()
def server():
    obs = make_http_observer("127.0.0.1", 0, TOKEN)
    yield obs
    obs.close()


@pytest.fixture()
def open_server():
    """Loopback without a token, as `sonomap live --http 127.0.0.1:PORT` is run by hand."""
    obs = make_http_observer("127.0.0.1", 0, None)
    yield obs
    obs.close()


def request(port: int, method: str, path: str, headers: dict, body: bytes | None = None):
    """(status, body) of one request over a real connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def raw(port: int, request_bytes: bytes) -> bytes:
    """Everything the server sends back on one connection until it closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_S) as sock:
        sock.sendall(request_bytes)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def session_cookie(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
    conn.request("POST", "/login", body=f"token={TOKEN}".encode(), headers=FORM)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 303
    return resp.getheader("Set-Cookie").split(";")[0]


# Content-Length headers that are not one length in ASCII digits.
BAD_LENGTHS = [
    [b"\xb2"],  # '2' superscript in latin-1: str.isdigit() says yes, int() says no
    [b"\xb9\xb3"],
    [b"+5"],
    [b"0x10"],
    [b"5", b"6"],  # two lengths: which one the body has is anyone's guess
]
# Cookies other applications on this host name set, which RFC 2109 parsers stop at or skip.
FOREIGN_COOKIES = ['ui={"a":1}', "a=b c", 'x="unterminated', "lang=en[us]", "theme=dark"]


@pytest.mark.parametrize("path", ["/login", "/study-id"])
def test_a_content_length_not_in_ascii_digits_gets_a_one_line_400(server, monkeypatch, path):
    crashed = []  # exceptions that escaped a request thread (they print a traceback)
    monkeypatch.setattr(threading, "excepthook", crashed.append)
    for lengths in BAD_LENGTHS:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n".encode()
        head += b"".join(b"Content-Length: " + value + b"\r\n" for value in lengths)
        reply = raw(server.port, head + b"\r\nabcdef")
        status, _, body = reply.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 400 "), (lengths, reply[:200])
        assert body.count(b"\n") == 1 and b"Content-Length" in body, (lengths, body)
    assert crashed == []


def test_another_applications_cookie_does_not_hide_the_session(server):
    """Cookies are shared by every port of a host name: the session is found whatever comes with it."""
    session = session_cookie(server.port)
    stale = session.split("=")[0] + "=" + "0" * 64  # an older session of another sonomap on this host
    for foreign in FOREIGN_COOKIES:
        for cookie in (f"{foreign}; {session}", f"{session}; {foreign}", f"{foreign}; {stale}; {session}"):
            status, _ = request(server.port, "GET", "/stats.json", {"Cookie": cookie})
            assert status == 200, cookie
        for cookie in (f"{foreign}; {stale}", f"{foreign}; x{session}"):  # no valid session: refused
            status, _ = request(server.port, "GET", "/stats.json", {"Cookie": cookie})
            assert status == 401, cookie


# (method and path, body, the status it gets when allowed: not capturing without --cases; login
# without a token redirects to the viewer)
POST_ROUTES = [("/mark", b"", 409), ("/study-id", b"BX-0042", 409), ("/login", b"token=x", 303)]


@pytest.mark.parametrize("path, body, allowed", POST_ROUTES, ids=[p for p, _, _ in POST_ROUTES])
def test_a_post_from_another_sites_page_is_refused(open_server, path, body, allowed):
    port = open_server.port
    own = f"http://127.0.0.1:{port}"
    refused = [
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},  # what a browser sends
        {"Origin": "https://evil.example"},  # a browser without Sec-Fetch-*
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # another port of this host: another application
        {"Origin": "http://127.0.0.1:1"},
        {"Origin": f"https://127.0.0.1:{port}"},  # another scheme
        {"Origin": "null"},  # a sandboxed frame or a data: page, with no Sec-Fetch-Site to vouch
    ]
    allowed_headers = [
        {},  # curl, scripts
        {"Origin": own},
        {"Origin": own, "Sec-Fetch-Site": "same-origin"},  # the viewer page's own fetch()
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},  # its login form under no-referrer
        {"Origin": f"http://localhost:{port}", "Host": f"localhost:{port}"},
        {"Sec-Fetch-Site": "none"},  # typed or bookmarked by the user
    ]
    for headers in refused:
        status, text = request(port, "POST", path, {"Host": f"127.0.0.1:{port}", **headers}, body)
        assert status == 403 and text.count(b"\n") == 1, (headers, status, text)
    for headers in allowed_headers:
        status, _ = request(port, "POST", path, {"Host": f"127.0.0.1:{port}", **headers}, body)
        assert status == allowed, (headers, status)


# Absolute-form request targets urlsplit() refuses (an unbalanced '[' or ']' in the host part).
BAD_TARGETS = ["http://[x/", "http://[x/healthz", "http://a]b/"]


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_a_request_target_that_cannot_be_parsed_gets_400(server, monkeypatch, method):
    """Answered before the token check, so a client without the token gets an answer, not a dropped
    connection and a traceback in the log."""
    crashed = []  # exceptions that escaped a request thread (they print a traceback)
    monkeypatch.setattr(threading, "excepthook", crashed.append)
    for target in BAD_TARGETS:
        reply = raw(server.port, f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 "), (target, reply[:200])
        assert b"\r\nConnection: close" in head, head
        assert body == (
            b"" if method == "HEAD" else b"bad request: the request target is not a path or URL\n"
        )
    assert crashed == []


def get_with_body(token: str, method: str, length_headers: list[bytes], body: bytes) -> bytes:
    head = f"{method} /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n".encode()
    return head + b"".join(length_headers) + b"\r\n" + body


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_get_body_is_never_parsed_as_a_second_request(server, method):
    """A GET or HEAD reads no body: an announced one ends the connection after the answer, and a
    Content-Length that is repeated (the first saying 0) or not plain digits gets 400."""
    inner = f"GET /study-id HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
    n = str(len(inner)).encode()
    refused = [[b"0", n], [n, b"0"], [n, n], *BAD_LENGTHS]
    for lengths in refused:
        reply = raw(
            server.port,
            get_with_body(TOKEN, method, [b"Content-Length: " + v + b"\r\n" for v in lengths], inner),
        )
        assert reply.startswith(b"HTTP/1.1 400 ") and reply.count(b"HTTP/1.1 ") == 1, (lengths, reply)
        assert b"\r\nConnection: close" in reply.partition(b"\r\n\r\n")[0], reply
    announced = [
        [b"Content-Length: " + n + b"\r\n"],
        [b"Content-Length: 0\r\n"],
        [b"Transfer-Encoding: chunked\r\n"],
    ]
    for headers in announced:
        reply = raw(server.port, get_with_body(TOKEN, method, headers, inner))
        head = reply.partition(b"\r\n\r\n")[0]
        assert head.startswith(b"HTTP/1.1 503 ") and reply.count(b"HTTP/1.1 ") == 1, (headers, reply)
        assert b"\r\nConnection: close" in head, head


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"BREW /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b"501"),  # a method no route has
        (
            b"GET /healthz HTTP/1.1\r\n" + b"X-Pad: 1\r\n" * 101 + b"\r\n",
            b"431",
        ),  # over the stdlib's 100 headers
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"414"),
    ],
)
def test_the_stdlibs_own_refusals_carry_the_security_headers_and_close(server, request_bytes, status):
    """Answered by http.server before any route: still plain text, nosniff, no framing, and the
    connection's last answer."""
    reply = raw(server.port, request_bytes)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and head[len(b"HTTP/1.1 ") :].startswith(status), reply[:300]
    for header in (
        b"X-Content-Type-Options: nosniff",
        b"Content-Security-Policy: ",
        b"X-Frame-Options: DENY",
    ):
        assert header in head, head
    assert b"Content-Type: text/plain" in head and b"<html" not in body.lower(), reply[:300]
    assert b"\r\nConnection: close" in head and reply.count(b"HTTP/1.") == 1, head
