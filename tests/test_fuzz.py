"""Hypothesis fuzzing of what an operator or a file can feed sonomap: the runtime config
YAML, pathologist GeoJSON, video/image/DICOM inputs, HTTP requests and systemd's
environment. Contract: a result, or a clean SonomapError naming the culprit; never another
exception, a hang or a crash."""

from __future__ import annotations

import json
import math
import socket
import urllib.request

import numpy as np
import pytest
import yaml
from clips import write_bar_clip
from fuzz_values import values
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from runtime_model import dark_onnx

from edge_runtime import config as cfg
from edge_runtime.errors import SonomapError
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.service.http_server import make_http_observer
from edge_runtime.service.sdnotify import Notifier
from edge_runtime.sources.opener import open_source
from edge_runtime.typed_config import section_keys

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MAX_FRAMES_READ = 50
FUZZ_TOKEN = "fuzz-token-0123456789"


def known_key_configs():
    """Sections with mostly real keys (so values reach the stages) and the odd bad name."""
    section_dicts = {
        section: st.dictionaries(st.sampled_from(sorted(keys) + ["bogus"]), values, max_size=4)
        for section, keys in section_keys(cfg.RuntimeConfig).items()
    }
    return st.fixed_dictionaries({}, optional=section_dicts)


# --------------------------------------------------------------------- config YAML


@FUZZ
@given(data=known_key_configs())
def test_fuzz_config_values(tmp_path, data):
    path = tmp_path / "config.yaml"
    data.setdefault("inference", {})
    if isinstance(data["inference"], dict):
        data["inference"]["model"] = str(dark_onnx())
    path.write_text(yaml.safe_dump(data))
    try:
        config = cfg.load_config(path)
        Pipeline(config, config_path=path).close()  # overlay, failsafe and backend take the values
    except SonomapError as exc:
        assert str(exc)


@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.sampled_from(
            [
                "source: [",
                "a: b: c",
                "- 1\n- 2",
                "live: {mode: fast}",
                "\t\x00",
                "source:\n  input: synthetic\n  fps: .nan",
                "*x",
                "&a [*a]",
            ]
        ),
    )
)
def test_fuzz_config_text(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    try:
        assert isinstance(cfg.load_config(path), cfg.RuntimeConfig)
    except SonomapError as exc:
        assert str(path) in str(exc)


# --------------------------------------------------------------------- GeoJSON

annotations = pytest.importorskip("registration.annotations")
annotation_raster = pytest.importorskip("registration.annotation_raster")
coords = st.lists(
    st.lists(
        st.one_of(st.floats(-1e12, 1e12), st.floats(allow_nan=True), st.integers(-5, 5000)),
        min_size=0,
        max_size=3,
    ),
    max_size=6,
)
geometry = st.one_of(
    values,
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Polygon", "MultiPolygon", "Point", "LineString", "Bogus"]),
            "coordinates": st.one_of(
                st.lists(coords, max_size=2), st.lists(st.lists(coords, max_size=2), max_size=2), values
            ),
        }
    ),
)
feature = st.one_of(
    values,
    st.fixed_dictionaries(
        {
            "type": st.just("Feature"),
            "geometry": geometry,
            "properties": st.one_of(
                values,
                st.fixed_dictionaries(
                    {
                        "objectType": st.sampled_from(["annotation", "detection", None]),
                        "classification": st.one_of(
                            values,
                            st.fixed_dictionaries(
                                {"name": st.sampled_from(["Tumor", "Stroma", "Other", "Necrosis"])}
                            ),
                        ),
                    }
                ),
            ),
        }
    ),
)
geojson = st.one_of(
    values,
    st.lists(feature, max_size=3),
    st.fixed_dictionaries(
        {"type": st.just("FeatureCollection"), "features": st.one_of(st.lists(feature, max_size=4), values)}
    ),
)


@FUZZ
@given(doc=geojson)
def test_fuzz_geojson(tmp_path, doc):
    path = tmp_path / "core.geojson"
    path.write_text(json.dumps(doc, allow_nan=True))
    try:
        ann = annotations.load_annotations(path, ["Tumor"], ["Stroma"], ["Necrosis"])
        mask = annotation_raster.rasterise(ann.cancer, (64, 64), 0.01)
        assert mask.shape == (64, 64)
    except SonomapError as exc:
        assert str(path) in str(exc)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_fuzz_geojson_bytes(tmp_path, raw):
    path = tmp_path / "core.geojson"
    path.write_bytes(raw)
    try:
        annotations.load_annotations(path, ["Tumor"], [], [])
    except SonomapError as exc:
        assert str(path) in str(exc)


# --------------------------------------------------------------------- video inputs


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory) -> bytes:
    return write_bar_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=12, step=4).read_bytes()


def read_all(spec: str) -> int:
    n = 0
    src = open_source(spec)
    try:
        for frame in src:
            assert frame.image.dtype == np.uint8 and frame.image.ndim == 3
            n += 1
            if n >= MAX_FRAMES_READ:
                break
    finally:
        src.close()
    return n


@FUZZ
@given(
    cut=st.floats(0.0, 1.0), flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=20)
)
@example(cut=0.6875, flips=[])  # a stream without a codec context: choosing the stream must not fail
def test_fuzz_truncated_or_corrupt_mp4(tmp_path, clip_bytes, cut, flips):
    data = bytearray(clip_bytes[: max(1, math.floor(len(clip_bytes) * cut))] if cut < 1 else clip_bytes)
    for where, byte in flips:
        data[min(len(data) - 1, int(where * len(data)))] = byte
    path = tmp_path / "clip.mp4"
    path.write_bytes(bytes(data))
    try:
        read_all(str(path))
    except SonomapError as exc:
        assert str(path) in str(exc)


@FUZZ
@given(raw=st.binary(max_size=400), suffix=st.sampled_from([".png", ".jpg", ".dcm", ".mp4", ".avi", ".tif"]))
def test_fuzz_garbage_files(tmp_path, raw, suffix):
    path = tmp_path / f"input{suffix}"
    path.write_bytes(raw)
    try:
        read_all(str(path))
    except SonomapError as exc:
        assert path.name in str(exc)


# --------------------------------------------------------------------- HTTP and systemd env


@pytest.fixture(scope="module")
def http():
    obs = make_http_observer("127.0.0.1", 0, FUZZ_TOKEN)
    yield obs
    obs.close()


@FUZZ
@given(
    request=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda m, p, h: f"{m} {p} HTTP/1.1\r\n{h}\r\n\r\n".encode("utf-8", "replace"),
            st.sampled_from(["GET", "HEAD", "POST", "DELETE", "GET\x00"]),
            st.text(max_size=60),
            st.sampled_from(
                [
                    "",
                    "Authorization: Bearer x",
                    "Authorization: Bearer ",
                    "Authorization: Basic Zm9v",
                    "Host: \xff",
                ]
            ),
        ),
    )
)
def test_fuzz_http_requests(http, request):
    with socket.create_connection(("127.0.0.1", http.port), timeout=5) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    if reply.startswith(b"HTTP/"):
        status = int(reply.split(b" ", 2)[1])
        assert status in (400, 401, 404, 405, 408, 414, 501, 505), reply[:200]
    elif reply:  # an HTTP/0.9-style request line gets a body without headers: an error or 401
        assert reply.startswith((b"400 ", b"unauthorised")), reply[:200]
    # never a data leak without the token, and the server still answers a real request
    assert b"sonomap_" not in reply
    assert_server_answers(http)


def assert_server_answers(http) -> None:
    """A full authorised HTTP exchange (a bare connect would succeed on the kernel's backlog
    even with the server thread dead)."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{http.port}/metrics", headers={"Authorization": f"Bearer {FUZZ_TOKEN}"}
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
        assert b"sonomap_frames_rendered_total" in r.read()


@FUZZ
@given(sock=st.text(max_size=40), usec=st.text(max_size=12))
def test_fuzz_systemd_environment(sock, usec):
    try:
        n = Notifier(env={"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": usec})
        n.ready()
        n.watchdog()
    except SonomapError as exc:
        assert "NOTIFY_SOCKET" in str(exc) or "WATCHDOG_USEC" in str(exc)
