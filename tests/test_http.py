"""The HTTP observer: a real server on 127.0.0.1 (ephemeral port) fed real frames."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge_runtime import privacy
from edge_runtime.errors import ConfigError
from edge_runtime.frames import Frame, Prediction
from edge_runtime.live_stats import EVENTS
from edge_runtime.memory import peak_rss_bytes
from edge_runtime.service.http_server import HEALTHY_MAX_FRAME_AGE_S, make_http_observer

TOKEN = "s3cret-token-0123456789"
MIB = 1024 * 1024
RSS_COUNTER_LAG = 256 * 1024  # bytes: 64 pages


def get(url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def rendered_image(i: int) -> np.ndarray:
    img = np.zeros((120, 160, 3), np.uint8)
    img[:, : 40 + i, 2] = 200  # a red bar that grows: frames differ
    return img


def push(obs, n: int, stats: dict | None = None, dt: float = 0.07) -> None:
    for i in range(n):
        f = Frame(i, rendered_image(i), time.monotonic() - 0.02)
        p = Prediction(np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.float32), latency_ms=12.0)
        obs.on_frame(f, p, rendered_image(i), stats or {"backend": "onnxruntime-cpu", "dropped": 3})
        time.sleep(dt)


@pytest.fixture()
def server():
    obs = make_http_observer("127.0.0.1", 0, None)
    yield obs
    obs.close()


def test_healthz_tracks_frame_flow(server):
    code, body, _ = get(server.url + "healthz")
    assert code == 503 and b"no frame" in body
    push(server, 3)
    assert get(server.url + "healthz")[0] == 200
    server.stats.clock = lambda: time.monotonic() + HEALTHY_MAX_FRAME_AGE_S + 1  # frames stopped
    code, body, _ = get(server.url + "healthz")
    assert code == 503 and b"no frame for" in body


def test_healthz_503_while_no_signal(server):
    push(server, 2)
    server.on_frame(
        Frame(9, rendered_image(0), time.monotonic(), meta={"no_signal": True}), None, rendered_image(0), {}
    )
    code, body, _ = get(server.url + "healthz")
    assert code == 503 and b"no signal" in body


def test_metrics_prometheus_text(server):
    push(server, 5)
    EVENTS.inc("corrupt_input", 2)
    code, body, headers = get(server.url + "metrics")
    text = body.decode()
    assert code == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert all(name.startswith("sonomap_") for name in families)
    assert {f.type for f in families.values()} <= {"gauge", "counter", "histogram"}

    def value(sample_name: str, **labels: str) -> float:
        found = [
            s.value
            for f in families.values()
            for s in f.samples
            if s.name == sample_name and s.labels == labels
        ]
        assert len(found) == 1, (sample_name, labels, found)
        return found[0]

    assert families["sonomap_fps"].type == "gauge" and value("sonomap_fps") > 5
    assert families["sonomap_latency_seconds"].type == "histogram"
    assert value("sonomap_latency_seconds_bucket", stage="backend", le="0.017") == 5
    assert value("sonomap_latency_seconds_bucket", stage="backend", le="0.01") == 0
    assert value("sonomap_latency_seconds_count", stage="end_to_end") == 5
    assert families["sonomap_frames_dropped"].type == "counter"
    assert value("sonomap_frames_dropped_total") == 3
    assert value("sonomap_errors_total", kind="corrupt_input") >= 1
    assert families["sonomap_backend_info"].type == "gauge"
    assert value("sonomap_backend_info", backend="onnxruntime-cpu") == 1
    # This process serves the page, so its own /proc figures bound the values, within the few
    # pages by which the kernel's per-thread RSS counters may lag (seen: one 4 KiB page).
    rss = value("sonomap_resident_memory_bytes")
    peak = value("sonomap_peak_resident_memory_bytes")
    assert 10 * MIB < rss <= peak + RSS_COUNTER_LAG and peak <= peak_rss_bytes() + RSS_COUNTER_LAG


def test_snapshot_and_mjpeg_stream_carry_the_rendered_frame(server):
    push(server, 2)
    code, jpeg, headers = get(server.url + "snapshot.jpg")
    assert code == 200 and headers["Content-Type"] == "image/jpeg"
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (120, 160, 3)
    assert np.abs(img.astype(int) - rendered_image(1)).mean() < 4  # JPEG q80 of the last frame

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        push(server, 3)
        data = b""
        while data.count(b"--sonomapframe") < 2:
            data += s.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"multipart/x-mixed-replace; boundary=sonomapframe" in head
    part = rest.split(b"--sonomapframe")[1]
    part_head, _, body = part.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", part_head).group(1))
    frame = cv2.imdecode(np.frombuffer(body[:length], np.uint8), cv2.IMREAD_COLOR)
    assert frame is not None and frame.shape == (120, 160, 3)


def test_viewer_page_and_stats_json(server):
    push(server, 3)
    code, page, headers = get(server.url)
    assert code == 200 and b"stream.mjpg" not in page and b"viewer.js" in page
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    code, js, _ = get(server.url + "viewer.js")
    assert code == 200 and b"stream.mjpg" in js
    stats = json.loads(get(server.url + "stats.json")[1])
    assert stats["frames"] == 3 and stats["healthy"] and stats["info"]["backend"] == "onnxruntime-cpu"
    assert get(server.url + "nope")[0] == 404


def test_stats_json_and_status_line_carry_no_patient_name_or_file(server):
    """A degraded run's banner quotes the exception, and the exception the path it failed on; the
    page, /stats.json and systemd's status line leave the machine: no name, no file, the reason kept."""
    privacy.REDACTOR.register(["Zqxwv^Roe", "Zqxwv"])
    degraded = {
        "backend": "onnxruntime-cpu",
        "state": "degraded",
        "last_error": "sink raw: [Errno 28] No space left on device: '/rec/Zqxwv_Roe/clip.mp4' for Zqxwv",
        "ai": {"state": "ERROR", "detail": "backend failed on Zqxwv's frame"},
    }
    push(server, 2, degraded, dt=0.0)
    body = get(server.url + "stats.json")[1]
    stats = json.loads(body)
    assert b"Zqxwv" not in body and b"clip.mp4" not in body and b"/rec/" not in body
    assert "No space left on device" in stats["banner"] and stats["ai"]["state"] == "ERROR"
    line = server.stats.status_line()
    assert "Zqxwv" not in line and "clip.mp4" not in line and "No space left on device" in line


def test_non_loopback_without_token_refuses_to_start(monkeypatch):
    monkeypatch.delenv("SONOMAP_HTTP_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match="needs a token"):
        make_http_observer("0.0.0.0", 0, None)
    with pytest.raises(ConfigError, match="too short"):
        make_http_observer("0.0.0.0", 0, "short")


def test_token_from_systemd_credential(tmp_path, monkeypatch):
    monkeypatch.delenv("SONOMAP_HTTP_TOKEN", raising=False)
    (tmp_path / "http-token").write_text(TOKEN + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    obs = make_http_observer("127.0.0.1", 0, None)
    try:
        assert obs.token == TOKEN
        assert get(obs.url + "healthz")[0] == 401
    finally:
        obs.close()


def test_token_enforced_on_every_endpoint():
    obs = make_http_observer("127.0.0.1", 0, TOKEN)
    try:
        push(obs, 2)
        assert get(obs.url + "viewer.js")[0] == 200  # static code, no data: public
        for path in ("", "healthz", "metrics", "stats.json", "snapshot.jpg", "stream.mjpg"):
            code, _, headers = get(obs.url + path)
            assert code == 401 and headers["WWW-Authenticate"].startswith("Bearer"), path
            assert get(obs.url + path + "?token=wrong" + TOKEN)[0] == 400  # tokens in URLs: refused
        assert get(obs.url + "healthz", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert (
            get(obs.url + "healthz", {"Authorization": f"bearer {TOKEN}"})[0] == 200
        )  # scheme is case-insensitive
        assert get(obs.url + "metrics?token=" + TOKEN)[0] == 400  # even the right one: never in a URL
    finally:
        obs.close()


def test_port_in_use_is_a_clean_error(server):
    with pytest.raises(ConfigError, match="cannot listen"):
        make_http_observer("127.0.0.1", server.port, None)


def test_viewer_count_is_capped(server):
    from edge_runtime.service.http_server import MAX_STREAMS

    push(server, 1)
    socks = []
    try:
        for _ in range(MAX_STREAMS):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert b"200 OK" in s.recv(256)
            socks.append(s)
        code, body, _ = get(server.url + "stream.mjpg")
        assert code == 503 and b"too many viewers" in body
        assert get(server.url + "healthz")[0] == 200  # other endpoints still answer
    finally:
        for s in socks:
            s.close()
