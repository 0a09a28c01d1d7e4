"""Another site's page cannot make the operator's browser load the viewer's paths: real sockets on
127.0.0.1, with the headers Chromium sends for an ``<img>`` of another site (seen in the Chromium test
below: ``Sec-Fetch-Site: cross-site``, ``Sec-Fetch-Mode: no-cors``, ``Sec-Fetch-Dest: image``).

Without the check, twelve ``<img src=http://127.0.0.1:PORT/stream.mjpg>`` on any page open in the
cart's browser held all 8 MJPEG stream slots for as long as the page stayed open, and the operator's
own viewer got ``503 too many viewers``. The user's own navigation from another site (a link, a
bookmark) still opens the viewer; curl and Prometheus send no ``Sec-Fetch-*`` and are unaffected.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from test_http_guard import feed, wait_for_a_frame

from edge_runtime.service.http_server import MAX_STREAMS, make_http_observer

CLIENT_TIMEOUT_S = 5.0
IMAGE_LOAD = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
NAVIGATION = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-User": "?1"}


@pytest.fixture()
def open_viewer():
    """Loopback without a token (as `sonomap live --http 127.0.0.1:PORT` is run by hand), rendering."""
    obs = make_http_observer("127.0.0.1", 0, None)
    stop = threading.Event()
    thread = threading.Thread(target=feed, args=(obs, stop, (120, 160)), daemon=True)
    thread.start()
    wait_for_a_frame(obs)
    yield obs
    stop.set()
    thread.join()
    obs.close()


def send(port: int, path: str, headers: dict) -> socket.socket:
    """A connection with one GET sent; the caller reads the answer and closes it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_S)
    lines = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"127.0.0.1:{port}", **headers}.items())
    sock.sendall(f"GET {path} HTTP/1.1\r\n{lines}\r\n".encode())
    return sock


def status_of(sock: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, f"closed without an answer: {head!r}"
        head += chunk
    return int(head.split(b" ", 2)[1])


def test_image_loads_from_another_sites_page_cannot_take_the_stream_slots(open_viewer):
    port = open_viewer.port
    foreign = []
    try:
        for site in ("cross-site", "same-site") * MAX_STREAMS:  # same-site: another port of this host
            foreign.append(send(port, "/stream.mjpg", {**IMAGE_LOAD, "Sec-Fetch-Site": site}))
        assert [status_of(s) for s in foreign] == [403] * len(foreign)
        own = send(port, "/stream.mjpg", {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "image"})
        try:
            assert status_of(own) == 200  # the operator's viewer still gets its stream
        finally:
            own.close()
    finally:
        for sock in foreign:
            sock.close()


@pytest.mark.parametrize("path", ["/snapshot.jpg", "/stats.json", "/study-id", "/healthz", "/metrics"])
def test_other_paths_refuse_another_sites_page_and_serve_the_users_own_requests(open_viewer, path):
    cases = [
        (IMAGE_LOAD, 403),
        ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}, 403),
        ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, 403),
        ({**NAVIGATION, "Sec-Fetch-Site": "cross-site"}, 200),  # a link from another site, clicked
        ({**NAVIGATION, "Sec-Fetch-Site": "none"}, 200),  # typed or bookmarked
        ({"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}, 200),
        ({}, 200),  # curl, Prometheus
    ]
    for headers, want in cases:
        sock = send(open_viewer.port, path, {**headers, "Connection": "close"})
        try:
            assert status_of(sock) == want, (path, headers)
        finally:
            sock.close()


def test_a_refused_load_closes_its_connection(open_viewer):
    sock = send(open_viewer.port, "/stats.json", IMAGE_LOAD)
    try:
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
            assert time.monotonic() < deadline
        assert data.startswith(b"HTTP/1.1 403") and b"Connection: close" in data
        assert b"another site's page" in data
    finally:
        sock.close()
