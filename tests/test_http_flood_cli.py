"""A connection flood against the real `sonomap live --http` process: 300 half-sent requests and
20 MJPEG streams that are never read, while the synthetic source keeps rendering. /healthz must
still answer 200 (within the client's timeout), frames must keep being rendered, and the stalled
stream viewers must be dropped so that a new viewer gets a stream again."""

from __future__ import annotations

import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from loopback import LIVE_START_TIMEOUT_S, free_port
from runtime_model import dark_onnx

from edge_runtime.service.http_guard import MAX_CONNECTIONS

REPO = Path(__file__).resolve().parents[1]
HALF_SENT = 300
UNREAD_STREAMS = 20
# A probe's whole budget: urlopen raises past it, failing the test. A server locked out by the flood
# never answers (the connection waits in the backlog or is refused), so this only needs to be finite;
# it is generous so that a slow answer on a loaded machine is no failure.
CLIENT_TIMEOUT_S = 10.0
PROBES = 10
SMALL_RCVBUF = 4096


def get(url: str) -> tuple[int, bytes, float]:
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=CLIENT_TIMEOUT_S) as r:
            return r.status, r.read(), time.monotonic() - start
    except urllib.error.HTTPError as e:
        return e.code, e.read(), time.monotonic() - start


def threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Threads:\s+(\d+)$", status, re.M).group(1))


def frames_rendered(base: str) -> int:
    text = get(base + "metrics")[1].decode()
    return int(float(re.search(r"^sonomap_frames_rendered_total (\S+)$", text, re.M).group(1)))


@pytest.fixture()
def live(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "source": {"input": "synthetic", "fps": 30, "width": 1280, "height": 720},
                "inference": {"model": str(dark_onnx())},
            }
        )
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_runtime.cli",
            "live",
            "--config",
            str(config),
            "--headless",
            "--http",
            f"127.0.0.1:{port}",
            "--duration",
            "120",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + LIVE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        try:
            if get(base + "healthz")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("sonomap live did not become healthy")
    yield port, base, proc.pid
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_healthz_answers_under_a_connection_flood(live):
    port, base, pid = live
    threads_before = threads(pid)
    held = []
    try:
        for _ in range(HALF_SENT):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never finished
            held.append(s)
        for _ in range(UNREAD_STREAMS):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            held.append(s)  # never read
        rendered_before = frames_rendered(base)
        latencies = []
        for _ in range(PROBES):
            code, body, seconds = get(base + "healthz")  # raises past CLIENT_TIMEOUT_S: no answer
            assert code == 200, body  # 200: frames are still being rendered (newest < 2 s old)
            latencies.append(seconds)
            time.sleep(0.2)
        assert frames_rendered(base) > rendered_before
        flood_threads = threads(pid)  # after the evicted connections' threads have ended
        print(
            f"\n/healthz under {HALF_SENT} half-sent requests + {UNREAD_STREAMS} unread streams: "
            f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
        )
        print(f"threads: {threads_before} before the flood, {flood_threads} during it")
        assert flood_threads - threads_before <= MAX_CONNECTIONS  # one per admitted connection, capped
        # The unread streams are dropped (write timeout), so a real viewer gets a stream again.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    break
            time.sleep(0.5)
        else:
            pytest.fail("unread streams still hold every viewer slot after 30 s")
        metrics = get(base + "metrics")[1].decode()
        assert re.search(r'^sonomap_errors_total\{kind="http_stream_stalled"\} [1-9]', metrics, re.M), metrics
    finally:
        for s in held:
            s.close()
