"""Clients without the token cannot hold the HTTP server's connection slots: real sockets on
loopback addresses 127.0.0.2-5 pipeline requests and never read the answers (401 login pages, or
the public viewer.js), while an authenticated health checker on 127.0.0.1 must still get /healthz
answered."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest

from edge_runtime.service.http_server import make_http_observer

TOKEN = "flood-token-0123456789abcdef"
ATTACKER_ADDRESSES = [f"127.0.0.{i}" for i in range(2, 6)]  # 4 addresses: more than the slots allow
PER_ADDRESS = 2  # each address's share of the server below: together they fill every slot
MAX_CONNECTIONS = len(ATTACKER_ADDRESSES) * PER_ADDRESS
SMALL_RCVBUF = 4096  # the answers pile up in the server's send buffer instead of ours
# Enough unread answers (1.5 KB or more each) to fill any loopback socket buffer several times.
PIPELINED_REQUESTS = 2000
NEVER_S = 3600.0  # a blocked write is never timed out: only evictions and closes free a slot
SETTLE_S = 0.5  # time for the attackers' connections to be accepted and their answers to pile up
HEALTH_POLLS = 5
POLL_GAP_S = 0.1
CLIENT_TIMEOUT_S = 5.0
RECONNECT_PAUSE_S = 0.02


def pipeline(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode() * PIPELINED_REQUESTS


def attacker(address: str, port: int, payload: bytes) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
    sock.bind((address, 0))
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    try:
        sock.send(payload)  # as much as fits; the rest never matters
    except OSError:
        pass  # already closed by the server: the flood loop reconnects
    return sock


def flood(port: int, path: str, stop: threading.Event, held: list[socket.socket]) -> None:
    """Keep PER_ADDRESS pipelining connections open from every attacker address, reconnecting
    each one the server closes, and never read an answer."""
    payload = pipeline(path)
    for address in ATTACKER_ADDRESSES:
        for _ in range(PER_ADDRESS):
            held.append(attacker(address, port, payload))
    while not stop.is_set():
        for i, sock in enumerate(held):
            try:
                closed = sock.recv(1, socket.MSG_PEEK) == b""
            except BlockingIOError:
                closed = False
            except OSError:
                closed = True
            if closed:
                sock.close()
                held[i] = attacker(ATTACKER_ADDRESSES[i // PER_ADDRESS], port, payload)
        time.sleep(RECONNECT_PAUSE_S)


def healthz(port: int) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
    try:
        conn.request("GET", "/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/", "/viewer.js"])  # refused with 401; public, served to anyone
def test_unauthenticated_pipelining_clients_cannot_keep_healthz_from_answering(path):
    obs = make_http_observer(
        "127.0.0.1",
        0,
        TOKEN,
        max_connections=MAX_CONNECTIONS,
        max_per_peer=PER_ADDRESS,
        io_timeout_s=NEVER_S,
    )
    stop, held = threading.Event(), []
    thread = threading.Thread(target=flood, args=(obs.port, path, stop, held), daemon=True)
    thread.start()
    try:
        time.sleep(SETTLE_S)
        for _ in range(HEALTH_POLLS):
            # No frame was ever rendered: the truthful answer is 503 with that reason, not a refusal.
            assert healthz(obs.port) == (503, b"no frame rendered yet\n")
            time.sleep(POLL_GAP_S)
    finally:
        stop.set()
        thread.join()
        for sock in held:
            sock.close()
        obs.close()


def test_a_refused_request_closes_its_connection():
    """A 401 says Connection: close and is the connection's last answer: what was pipelined
    behind it is never read."""
    obs = make_http_observer("127.0.0.1", 0, TOKEN)
    try:
        with socket.create_connection(("127.0.0.1", obs.port), timeout=CLIENT_TIMEOUT_S) as sock:
            sock.sendall(b"GET /stats.json HTTP/1.1\r\nHost: localhost\r\n\r\n" * 3)
            answers = b""
            while chunk := sock.recv(65536):
                answers += chunk
        assert answers.startswith(b"HTTP/1.1 401")
        assert b"\r\nConnection: close\r\n" in answers
        assert answers.count(b"HTTP/1.1 ") == 1
    finally:
        obs.close()
