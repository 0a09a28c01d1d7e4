"""A request body trickled in byte by byte is held to the same request deadline as its headers, and
such connections give way at the connection cap like half-sent headers do: a real server on
127.0.0.1, raw sockets. Without this, `POST /login` (which needs no token) announcing 4 KiB and
sending a byte every 2 s held a connection slot for over two hours; 64 of them locked everyone out."""

from __future__ import annotations

import http.client
import socket
import time

import pytest

from edge_runtime.biopsy.study_id import STUDY_ID
from edge_runtime.service.http_auth import MAX_LOGIN_BODY
from edge_runtime.service.http_guard import REQUEST_TIMEOUT_S
from edge_runtime.service.http_handler import MAX_STUDY_ID_BODY
from edge_runtime.service.http_server import make_http_observer

TOKEN = "slow-body-token-0123456789"
DEADLINE_S = 1.0  # the request deadline these servers get; the default is REQUEST_TIMEOUT_S
TRICKLE_EVERY_S = 0.1  # one body byte this often: far under the 5 s read timeout, so every read succeeds
GIVE_UP_S = 6.0  # a trickle not cut by then was not cut at the deadline
NEVER_S = 3600.0  # a deadline no test reaches: only evictions close connections then
CLIENT_TIMEOUT_S = 5.0
SPLIT_PAUSE_S = 0.3  # a body sent a little after its headers, well within the deadline
STUDY_ID_BEFORE = "BX-0001"


def post_head(path: str, length: int, auth: bool = False) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
    if auth:
        head += f"Authorization: Bearer {TOKEN}\r\n"
    return head.encode() + b"\r\n"


def trickle(port: int, head: bytes, body: bytes) -> tuple[float | None, bytes]:
    """Send ``head`` then ``body`` a byte per TRICKLE_EVERY_S. Returns (seconds from the connect to
    the server closing the connection, or None if it had not by GIVE_UP_S; what it answered)."""
    start = time.monotonic()
    reply = b""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head)
        sock.settimeout(TRICKLE_EVERY_S)
        rest = list(body)
        while time.monotonic() - start < GIVE_UP_S:
            try:
                if rest:
                    sock.sendall(bytes([rest.pop(0)]))
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - start, reply
            if not chunk:
                return time.monotonic() - start, reply
            reply += chunk
    return None, reply


def login(port: int) -> int:
    """A real login whose body comes SPLIT_PAUSE_S after its headers; its status."""
    body = f"token={TOKEN}".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_S) as sock:
        sock.sendall(post_head("/login", len(body)))
        time.sleep(SPLIT_PAUSE_S)
        sock.sendall(body)
        return int(sock.recv(64).split(b" ")[1])


def closed_unanswered(sock: socket.socket) -> bool:
    """True when the server closes ``sock`` (EOF or reset) without a byte of answer."""
    sock.settimeout(CLIENT_TIMEOUT_S)
    try:
        return sock.recv(64) == b""
    except ConnectionResetError:
        return True


@pytest.fixture()
def capturing():
    """The state a capture observer (--cases) gives the process: study IDs are taken."""
    STUDY_ID.enabled, STUDY_ID.value = True, STUDY_ID_BEFORE
    yield STUDY_ID
    STUDY_ID.enabled, STUDY_ID.value = False, None


def test_a_trickled_login_body_is_cut_at_the_request_deadline():
    obs = make_http_observer("127.0.0.1", 0, TOKEN, request_timeout_s=DEADLINE_S)
    try:
        elapsed, reply = trickle(obs.port, post_head("/login", MAX_LOGIN_BODY), b"t" * MAX_LOGIN_BODY)
        assert elapsed is not None, f"a body trickled for {GIVE_UP_S} s was never cut"
        assert reply == b""  # cut, not answered: nothing acted on part of a form
        assert DEADLINE_S <= elapsed < REQUEST_TIMEOUT_S, f"cut after {elapsed:.2f} s"
        assert obs.server.tracker.timed_out >= 1
        assert login(obs.port) == 303  # a body that comes within the deadline is still read
    finally:
        obs.close()


def test_a_study_id_cut_mid_body_is_not_applied(capturing):
    """A body that would be a valid ID once complete (spaces are stripped) is cut before it is:
    the part that came is never taken as the ID."""
    obs = make_http_observer("127.0.0.1", 0, TOKEN, request_timeout_s=DEADLINE_S)
    try:
        body = b"BX-0099".ljust(MAX_STUDY_ID_BODY)
        elapsed, reply = trickle(obs.port, post_head("/study-id", len(body), auth=True), body)
        assert elapsed is not None and reply == b"", reply
        assert elapsed < REQUEST_TIMEOUT_S
        assert capturing.value == STUDY_ID_BEFORE
    finally:
        obs.close()


def test_at_the_cap_connections_still_sending_their_body_make_room():
    obs = make_http_observer(
        "127.0.0.1",
        0,
        TOKEN,
        max_connections=4,
        max_per_peer=4,
        request_timeout_s=NEVER_S,  # so that only eviction can free a slot
        io_timeout_s=NEVER_S,
    )
    held = []
    try:
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", obs.port), timeout=CLIENT_TIMEOUT_S)
            sock.sendall(post_head("/login", MAX_LOGIN_BODY) + b"t")  # and the rest never
            held.append(sock)
            time.sleep(0.05)
        time.sleep(0.2)  # every one of them is in its handler, reading the body
        conn = http.client.HTTPConnection("127.0.0.1", obs.port, timeout=CLIENT_TIMEOUT_S)
        conn.request("GET", "/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
        assert conn.getresponse().status == 503  # served (no frame yet), not refused
        conn.close()
        assert obs.server.tracker.evicted >= 1
        assert closed_unanswered(held[0])  # the oldest gave way
    finally:
        for sock in held:
            sock.close()
        obs.close()
