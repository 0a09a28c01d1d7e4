"""The OpenIGTLink client against broken or hostile servers, with real sockets on loopback.

A connection that goes silent without closing (a pulled cable leaves it half-open) is
detected and re-made, and `sonomap live` shows NO SIGNAL meanwhile, then recovers; message
bodies are read as they arrive (a header claiming 48 MiB costs what was really sent) and a
body over the configured maximum drops the connection. The server side: test_igtl_serve.py.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from runtime_model import dark_onnx
from test_igtl_standin import DEVICE, image_matrix, pyigtl

from edge_runtime.errors import ConfigError

igtl = pytest.importorskip("edge_runtime.igtl")
from edge_runtime.igtl.net import USER_TIMEOUT_MS, tune_socket  # noqa: E402 (after the importorskip)

REPO = Path(__file__).resolve().parents[1]
FPS = 30.0
BODY_SIZE_OFFSET = 2 + 12 + 20 + 8  # header: version, type, device name, timestamp, then body size
CLAIMED_BODY = 48 * 1024 * 1024
MIB = 1024 * 1024
pytestmark = pytest.mark.timeout(90)


def image_message(rows: int = 96, cols: int = 128, value: int = 80) -> pyigtl.ImageMessage:
    img = np.full((1, rows, cols), value, np.uint8)
    return pyigtl.ImageMessage(
        img, ijk_to_world_matrix=image_matrix(), timestamp=time.time(), device_name=DEVICE
    )


class ScriptedServer:
    """A bare TCP server: connection number ``n`` (from 1) is handled by ``script(n, sock, stop)``."""

    def __init__(self, script, host: str = "127.0.0.1"):
        self.host = host
        self.listener = socket.create_server((host, 0))
        self.port = self.listener.getsockname()[1]
        self.script, self.connections, self.stop = script, 0, threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by close()
            self.connections += 1
            threading.Thread(target=self._run, args=(self.connections, sock), daemon=True).start()

    def _run(self, n, sock):
        try:
            self.script(n, sock, self.stop)
        except OSError:
            pass  # the client went away
        finally:
            self.stop.wait(30)  # a silent script keeps its socket open (half-open as seen by the client)
            sock.close()

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.listener.close()


def stream(sock, stop, seconds=60.0):
    end = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < end:
        sock.sendall(image_message().pack())
        time.sleep(1 / FPS)


def streams_then_goes_silent(n, sock, stop, silent_after_s=2.0):
    """The first connection streams, then goes quiet without closing; later ones stream."""
    stream(sock, stop, silent_after_s if n == 1 else 60.0)


def test_a_silent_connection_is_taken_for_dead_and_remade():
    server = ScriptedServer(lambda n, s, stop: stream(s, stop, 0.5 if n == 1 else 60.0))
    try:
        spec = f"igtl://127.0.0.1:{server.port}?device={DEVICE}&idle_timeout=0.5&timeout=10&backoff_max=0.2"
        with igtl.open_igtl_source(spec) as source:
            it = iter(source)
            next(it)
            start = time.monotonic()
            deadline = start + 10
            while source.counters.get("connects", 0) < 2:
                assert time.monotonic() < deadline, source.counters
                next(it)
            counters = source.counters
    finally:
        server.close()
    assert counters["idle_timeouts"] >= 1 and counters["disconnects"] >= 1 and server.connections >= 2


def healthz(base: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(base + "healthz", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def test_live_shows_no_signal_on_a_pulled_cable_then_recovers():
    """Through the real command: healthy, then NO SIGNAL (not a frozen image, not an exit), then healthy."""
    server = ScriptedServer(streams_then_goes_silent)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        http_port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_runtime.cli",
            "live",
            "--source",
            f"igtl://127.0.0.1:{server.port}?device={DEVICE}",
            "--model",
            str(dark_onnx()),
            "--headless",
            "--http",
            f"127.0.0.1:{http_port}",
            "--duration",
            "40",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{http_port}/"
    seen = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            code, body = healthz(base)
            state = "ok" if code == 200 else ("no signal" if "no signal" in body else None)
            if state and (not seen or seen[-1] != state):
                seen.append(state)
            if seen[-3:] == ["ok", "no signal", "ok"]:
                break
            time.sleep(0.2)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        server.close()
    assert seen[-3:] == ["ok", "no signal", "ok"], (seen, err[-3000:])
    assert "NO SIGNAL" in err and "Traceback" not in err
    assert server.connections >= 2


def test_a_body_is_read_as_it_arrives_never_preallocated_from_the_header():
    header = bytearray(image_message().pack()[:58])
    header[BODY_SIZE_OFFSET : BODY_SIZE_OFFSET + 8] = CLAIMED_BODY.to_bytes(
        8, "big"
    )  # under the 64 MiB limit
    arrived = threading.Event()

    def liar(n, sock, stop):
        sock.sendall(bytes(header) + b"\0" * 1000)  # ... and then nothing more
        arrived.set()

    server = ScriptedServer(liar)
    tracemalloc.start()
    try:
        spec = f"igtl://127.0.0.1:{server.port}?device={DEVICE}&idle_timeout=1&timeout=10&backoff_max=5"
        with igtl.open_igtl_source(spec) as source:
            assert arrived.wait(5)
            deadline = time.monotonic() + 10
            while source.counters.get("idle_timeouts", 0) < 1:
                assert time.monotonic() < deadline, source.counters
                time.sleep(0.05)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        server.close()
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB traced for a 48 MiB claim with 1 kB sent"


def test_a_body_over_the_configured_maximum_drops_the_connection(caplog):
    big = image_message(rows=1024, cols=1536)  # 1.5 MiB of pixels

    def sender(n, sock, stop):
        sock.sendall(big.pack() if n == 1 else image_message().pack())

    server = ScriptedServer(sender)
    try:
        spec = f"igtl://127.0.0.1:{server.port}?device={DEVICE}&max_body_mb=1&timeout=10&backoff_max=0.2"
        with igtl.open_igtl_source(spec) as source:
            frame = next(iter(source))
            counters = source.counters
    finally:
        server.close()
    assert frame.image.shape[:2] == (96, 128)  # the small image of the second connection
    assert counters["disconnects"] >= 1
    assert any("over the 1048576 byte limit" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("bad", ["max_body_mb=0", "idle_timeout=-1", "idle_timeout=x"])
def test_bad_network_options_are_config_errors(bad):
    with pytest.raises(ConfigError):
        igtl.parse_igtl_spec(f"igtl://h:1?{bad}")


def test_sockets_get_keepalive_and_a_user_timeout():
    with socket.socket() as s:
        tune_socket(s)
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == USER_TIMEOUT_MS
