"""The HTTP server's guards against the network, with real sockets on 127.0.0.1: the request
deadline, the connection cap, dropping viewers that stop reading, the Host check, the login
cookie, and TLS with a certificate made here by `openssl req`. The flood test runs the real
`sonomap live` command (see test_http_flood_cli.py)."""

from __future__ import annotations

import http.client
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time

import numpy as np
import pytest

from edge_runtime.errors import ConfigError
from edge_runtime.frames import Frame, Prediction
from edge_runtime.live_stats import EVENTS
from edge_runtime.service.http_guard import REQUEST_TIMEOUT_S
from edge_runtime.service.http_server import MAX_STREAMS, make_http_observer

TOKEN = "guard-token-0123456789abcdef"
SMALL_RCVBUF = 4096
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl not installed (apt-get install openssl)")
CLIENT_TIMEOUT_S = 5.0  # request(): a connect, send or read that waits longer raises (fails the test)
TRICKLE_DEADLINE_S = 1.0  # the request deadline the trickle test gives; the default is REQUEST_TIMEOUT_S
# Waits for what must happen (a close, a first frame): generous, since a loaded machine is slow,
# and they end as soon as it has happened.
CLOSE_DEADLINE_S = 10.0
FIRST_FRAME_DEADLINE_S = 10.0
POLL_S = 0.02
NEVER_S = 3600.0  # a request or I/O deadline no test reaches: only evictions close connections then


def feed(obs, stop: threading.Event, size=(720, 1280)) -> None:
    """A render loop of noisy frames (large JPEGs, so an unread stream fills its buffers fast)."""
    rng = np.random.default_rng(0)
    i = 0
    while not stop.is_set():
        img = rng.integers(0, 255, (*size, 3), np.uint8)
        obs.on_frame(
            Frame(i, img, time.monotonic()),
            Prediction(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.float32), 5.0),
            img,
            {"backend": "onnxruntime-cpu"},
        )
        i += 1
        time.sleep(1 / 30)


@pytest.fixture()
def rendering():
    started = []

    def start(obs):
        stop = threading.Event()
        thread = threading.Thread(target=feed, args=(obs, stop), daemon=True)
        thread.start()
        started.append((stop, thread))

    yield start
    for stop, thread in started:
        stop.set()
        thread.join()


def request(
    port: int,
    path: str = "/healthz",
    headers: dict | None = None,
    method: str = "GET",
    body: bytes | None = None,
    context: ssl.SSLContext | None = None,
) -> http.client.HTTPResponse:
    cls = http.client.HTTPSConnection if context else http.client.HTTPConnection
    kwargs = {"context": context} if context else {}
    conn = cls("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S, **kwargs)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    resp.body = resp.read()
    conn.close()
    return resp


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes ``sock`` (EOF or reset) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def closed_count(socks: list[socket.socket], want: int, within: float) -> int:
    """How many of ``socks`` the server closes (EOF or reset), waiting until ``want`` of them are
    or ``within`` seconds have passed. For connections the server sends nothing else to."""
    still_open, closed = list(socks), 0
    deadline = time.monotonic() + within
    while still_open and closed < want and (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select(still_open, [], [], left)
        for sock in readable:
            try:
                gone = sock.recv(65536) == b""
            except ConnectionResetError:
                gone = True
            if gone:
                closed += 1
                still_open.remove(sock)
    return closed


def wait_for_a_frame(obs) -> None:
    """Until the render loop has delivered a frame (/healthz is 503 before it)."""
    deadline = time.monotonic() + FIRST_FRAME_DEADLINE_S
    while obs.stats.frame_age_s() is None:
        assert time.monotonic() < deadline, "the render loop delivered no frame"
        time.sleep(POLL_S)


def test_a_trickled_request_is_cut_at_the_deadline():
    """Bytes keep coming (each read succeeds), yet the request line + headers never complete."""
    obs = make_http_observer("127.0.0.1", 0, None, request_timeout_s=TRICKLE_DEADLINE_S)
    try:
        start = time.monotonic()  # before the connection: the server's deadline starts after it
        with socket.create_connection(("127.0.0.1", obs.port)) as s:
            s.settimeout(0.3)
            cut = False
            for ch in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 40:
                try:
                    s.sendall(bytes([ch]))
                    if s.recv(1) == b"":
                        cut = True
                        break
                except TimeoutError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    cut = True
                    break
            elapsed = time.monotonic() - start
        assert cut, "the trickled request was never cut"  # the trickle itself lasts ~20 s
        assert elapsed >= TRICKLE_DEADLINE_S, f"cut after {elapsed:.2f} s: before the deadline"
        # Loose, for a loaded machine (a cut comes within a housekeeping tick of the deadline), yet a
        # cut at the default deadline, the one given ignored, is past it.
        assert elapsed < REQUEST_TIMEOUT_S, (
            f"cut after {elapsed:.2f} s: not at the {TRICKLE_DEADLINE_S} s deadline"
        )
        assert obs.server.tracker.timed_out >= 1
    finally:
        obs.close()


def test_at_the_cap_the_oldest_waiting_connection_makes_room():
    obs = make_http_observer("127.0.0.1", 0, None, max_connections=4, max_per_peer=4)
    held = []
    try:
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", obs.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # half-sent
            held.append(s)
            time.sleep(0.05)
        assert request(obs.port).status == 503  # served (no frame yet), not refused
        assert closed_by_server(held[0], within=3)  # the oldest one gave way
        assert not closed_by_server(held[-1], within=0.3)
        assert obs.server.tracker.evicted >= 1
    finally:
        for s in held:
            s.close()
        obs.close()


def half_sent_from(source_ip: str, port: int) -> socket.socket:
    s = socket.socket()
    s.bind((source_ip, 0))  # any 127.x.y.z is this machine: distinct client addresses on loopback
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    return s


def test_one_address_cannot_take_the_slots_of_another():
    """A flood from 127.0.0.2 only ever cuts its own connections, never 127.0.0.3's."""
    share, floods = 3, 30
    obs = make_http_observer(
        "127.0.0.1",
        0,
        None,
        max_connections=8,
        max_per_peer=share,
        request_timeout_s=NEVER_S,  # so that the deadlines close none of them however slow the test
        io_timeout_s=NEVER_S,
    )
    other = half_sent_from("127.0.0.3", obs.port)
    flood = []
    try:
        time.sleep(0.1)
        flood = [half_sent_from("127.0.0.2", obs.port) for _ in range(floods)]
        # Each one past the address's share evicted that address's oldest: all but `share` closed.
        assert closed_count(flood, floods - share, within=CLOSE_DEADLINE_S) == floods - share
        assert not closed_by_server(other, within=0.5)  # after every eviction above: none was this one
        other.sendall(b"\r\n")  # finish its request: it is answered
        other.settimeout(5)
        assert other.recv(64).startswith(b"HTTP/1.1 503")
    finally:
        other.close()
        for s in flood:
            s.close()
        obs.close()


def test_a_viewer_that_stops_reading_is_dropped_and_its_slot_freed(rendering):
    obs = make_http_observer("127.0.0.1", 0, None, io_timeout_s=1.0)
    rendering(obs)
    stalled = []
    before = EVENTS.snapshot().get("http_stream_stalled", 0)
    try:
        for _ in range(MAX_STREAMS):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
            s.connect(("127.0.0.1", obs.port))
            s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            stalled.append(s)  # and never read again
        time.sleep(0.5)
        assert request(obs.port, "/stream.mjpg").status == 503  # all slots held
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.create_connection(("127.0.0.1", obs.port), timeout=5) as s:
                s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    break
            time.sleep(0.5)
        else:
            pytest.fail("stalled viewers still hold every stream slot after 20 s")
        assert EVENTS.snapshot().get("http_stream_stalled", 0) - before >= 1
    finally:
        for s in stalled:
            s.close()
        obs.close()


@pytest.mark.parametrize(
    "host,code",
    [
        ("127.0.0.1:8080", 503),
        ("localhost:8080", 503),
        ("[::1]:8080", 503),
        ("127.0.0.2", 503),
        ("evil.example:8080", 403),
        ("10.0.0.5", 403),
        ("localhost.evil.example", 403),
        ("[::1]", 503),
        ("::1", 503),
        ("[::1].evil.example", 403),
        ("[::1]:8080.evil.example", 403),
        ("localhost:evil", 403),
        ("127.0.0.1:80:80", 403),
    ],
)
def test_loopback_server_answers_only_loopback_host_names(host, code):
    """DNS rebinding: a hostile page whose name resolves to 127.0.0.1 still sends its own name."""
    obs = make_http_observer("127.0.0.1", 0, None)
    try:
        resp = request(obs.port, headers={"Host": host})
        assert resp.status == code, resp.body
    finally:
        obs.close()


def test_a_request_without_host_is_refused_on_loopback():
    obs = make_http_observer("127.0.0.1", 0, None)
    try:
        with socket.create_connection(("127.0.0.1", obs.port), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            assert s.recv(64).startswith(b"HTTP/1.1 403")
    finally:
        obs.close()


@pytest.mark.parametrize("second", ["evil.example", "localhost"])
def test_a_request_with_two_host_headers_is_refused_on_loopback(second):
    """RFC 9112: a request with more than one Host is invalid; the loopback check must not read the
    first and let a second, hostile one through to whatever reads it next."""
    obs = make_http_observer("127.0.0.1", 0, None)
    try:
        with socket.create_connection(("127.0.0.1", obs.port), timeout=5) as s:
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: localhost\r\nHost: {second}\r\n\r\n".encode())
            assert s.recv(64).startswith(b"HTTP/1.1 403")
    finally:
        obs.close()


def test_login_sets_an_httponly_session_cookie_that_opens_every_endpoint():
    obs = make_http_observer("127.0.0.1", 0, TOKEN)
    try:
        page = request(obs.port, "/")
        assert page.status == 401 and b'name="token"' in page.body and b'type="password"' in page.body
        wrong = request(
            obs.port,
            "/login",
            {"Content-Type": "application/x-www-form-urlencoded"},
            "POST",
            b"token=not-the-token-0123456789",
        )
        assert wrong.status == 401 and b"Wrong token" in wrong.body and wrong.getheader("Set-Cookie") is None
        ok = request(
            obs.port,
            "/login",
            {"Content-Type": "application/x-www-form-urlencoded"},
            "POST",
            f"token={TOKEN}".encode(),
        )
        cookie = ok.getheader("Set-Cookie")
        assert ok.status == 303 and ok.getheader("Location") == "/"
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie  # plain HTTP
        assert TOKEN not in cookie  # an HMAC of the token, not the token
        session = cookie.split(";")[0]
        for path in ("/", "/stats.json", "/metrics"):
            assert request(obs.port, path, {"Cookie": session}).status == 200, path
        forged = session[:-4] + "0000"
        assert request(obs.port, "/stats.json", {"Cookie": forged}).status == 401
        assert request(obs.port, "/stats.json", {"Authorization": f"Bearer {TOKEN}"}).status == 200
        too_big = request(obs.port, "/login", {}, "POST", b"token=" + b"x" * 10_000)
        assert too_big.status == 400
    finally:
        obs.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if OPENSSL is None:
        pytest.skip("openssl not installed (apt-get install openssl)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            OPENSSL,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def client_context(cert) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = True
    return context


@needs_openssl
def test_tls_serves_https_and_marks_the_cookie_secure(certificate, rendering):
    cert, key = certificate
    obs = make_http_observer("127.0.0.1", 0, TOKEN, str(cert), str(key))
    rendering(obs)
    wait_for_a_frame(obs)
    stalled = []
    try:
        assert obs.url.startswith("https://127.0.0.1:")
        # Connections that never start their TLS handshake hold nothing that others need: the
        # request is answered within CLIENT_TIMEOUT_S, where a handshake done in the accept loop
        # would first wait out each stalled one (IO_TIMEOUT_S, 5 s, 20 times).
        stalled = [socket.create_connection(("127.0.0.1", obs.port), timeout=5) for _ in range(20)]
        resp = request(
            obs.port, "/healthz", {"Authorization": f"Bearer {TOKEN}"}, context=client_context(cert)
        )
        assert resp.status == 200
        login = request(
            obs.port, "/login", {}, "POST", f"token={TOKEN}".encode(), context=client_context(cert)
        )
        assert login.status == 303 and "; Secure" in login.getheader("Set-Cookie")
        with socket.create_connection(("127.0.0.1", obs.port), timeout=5) as plain:  # no TLS: nothing served
            plain.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                + TOKEN.encode()
                + b"\r\n\r\n"
            )
            assert b"200 OK" not in plain.recv(4096)
    finally:
        for s in stalled:
            s.close()
        obs.close()


@needs_openssl
def test_tls_configuration_errors_name_the_file(certificate, tmp_path):
    cert, key = certificate
    with pytest.raises(ConfigError, match="together"):
        make_http_observer("127.0.0.1", 0, None, str(cert), None)
    with pytest.raises(ConfigError, match="missing.pem"):
        make_http_observer("127.0.0.1", 0, None, str(tmp_path / "missing.pem"), str(key))
    with pytest.raises(ConfigError, match="not a matching PEM"):
        make_http_observer("127.0.0.1", 0, None, str(key), str(cert))
