"""IMAGE and TRANSFORM messages whose geometry holds NaN or infinity, or is singular, from real servers on
loopback: the geometry is refused (counted per message type, one throttled error line naming the type
and the sanitised device name), the image itself goes on (shown and segmented), and nothing of the
refused geometry reaches a viewer of ``--igtl-serve``: neither the image's matrix nor the transform."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time

import numpy as np
import pytest
from cli import sonomap
from loopback import free_port
from runtime_model import dark_onnx
from test_igtl_network import ScriptedServer, image_message
from test_igtl_standin import DEVICE, PROBE_TO_TRACKER, TRANSFORM_DEVICE, image_matrix, pyigtl

igtl = pytest.importorskip("edge_runtime.igtl")
from edge_runtime.frames import Prediction  # noqa: E402 (after the importorskip)
from edge_runtime.igtl.geometry import GEOMETRY_REFUSED_KEY  # noqa: E402
from edge_runtime.igtl.net import WARN_EVERY  # noqa: E402
from edge_runtime.igtl.server import IgtlServerLink  # noqa: E402
from edge_runtime.igtl.sink import IgtlObserver  # noqa: E402
from edge_runtime.igtl.wire import read_message  # noqa: E402
from edge_runtime.live_stats import EVENTS  # noqa: E402

pytestmark = pytest.mark.timeout(120)
WAIT_S = 5.0
BAD_REPEATS = 30  # under net.WARN_EVERY: one error line per message type
QUIET_SERVER_IDLE_S = 30.0  # the scripted server goes quiet after its script: no idle reconnect here
GOOD_VALUE, BAD_VALUE = 33, 200  # pixel values telling the frames apart
ROWS, COLS = 96, 128
SPECKLE_LOW = 60  # the refused frames' grey levels: SPECKLE_LOW to 255
HOSTILE_NAME = "Probe\nFAKE LOG\x1b[2J"  # a device name that would forge a log line if shown as is


def bad_matrix(kind: str) -> np.ndarray:
    m = image_matrix().astype(np.float64)
    if kind == "nan":
        m[0, 0] = np.nan  # the i axis (direction and spacing)
    elif kind == "inf":
        m[1, 3] = np.inf  # the origin
    elif kind == "zero_spacing":
        m[:3, 1] = 0.0
    elif kind == "parallel_axes":
        m[:3, 1] = m[:3, 0]
    return m


def bad_image(kind: str) -> bytes:
    # speckle, not one plain level: an image the AI runs on (a plain one would be "no image"), told
    # apart from the good frames by its first pixel
    img = np.random.default_rng(ROWS).integers(SPECKLE_LOW, 256, (1, ROWS, COLS), dtype=np.uint8)
    img[0, 0, 0] = BAD_VALUE
    msg = pyigtl.ImageMessage(
        img, ijk_to_world_matrix=bad_matrix(kind), timestamp=time.time(), device_name=DEVICE
    )
    return msg.pack()


def transform(matrix: np.ndarray, name: str = TRANSFORM_DEVICE) -> bytes:
    return pyigtl.TransformMessage(matrix, timestamp=time.time(), device_name=name).pack()


def error_lines(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and text in r.getMessage()]


def source_spec(port: int) -> str:
    return f"igtl://127.0.0.1:{port}?device={DEVICE}&timeout={WAIT_S}&idle_timeout={QUIET_SERVER_IDLE_S}"


def frames_from(payload: bytes, count: int) -> tuple[list, dict]:
    """The first ``count`` frames an igtl:// source yields from a server that sends ``payload``, and the
    source's counts then."""
    server = ScriptedServer(lambda n, sock, stop: sock.sendall(payload))
    spec = source_spec(server.port)
    try:
        with igtl.open_igtl_source(spec) as source:
            it = iter(source)
            frames = [next(it) for _ in range(count)]
            return frames, source.counters
    finally:
        server.close()


@pytest.mark.parametrize("kind", ["nan", "inf", "zero_spacing", "parallel_axes"])
def test_an_image_with_unusable_geometry_is_kept_without_it(kind, caplog):
    # Latest wins: a bad image and a good one sent together may collapse into the good one, so the bad
    # one comes alone first and the good one after a pause.
    server = ScriptedServer(
        lambda n, sock, stop: (
            sock.sendall(bad_image(kind)),
            stop.wait(0.5),
            sock.sendall(image_message(value=GOOD_VALUE).pack()),
        )
    )
    events_before = EVENTS.snapshot().get("igtl_geometry_refused", 0)
    try:
        with igtl.open_igtl_source(source_spec(server.port)) as source:
            it = iter(source)
            refused, good = next(it), next(it)
            counters = source.counters
    finally:
        server.close()
    assert EVENTS.snapshot().get("igtl_geometry_refused", 0) == events_before + 1  # the /metrics kind
    assert int(refused.image[0, 0, 0]) == BAD_VALUE, "the image itself must go on"
    assert GEOMETRY_REFUSED_KEY in refused.meta and refused.meta[GEOMETRY_REFUSED_KEY]
    for key in ("ijk_to_world", "ijk_to_ras", "mm_per_pixel", "spacing", "pixel_spacing"):
        assert key not in refused.meta, key
    assert int(good.image[0, 0, 0]) == GOOD_VALUE and GEOMETRY_REFUSED_KEY not in good.meta
    assert np.allclose(good.meta["ijk_to_world"], image_matrix(), atol=1e-5)
    assert counters["image_geometry_refused"] == 1 and counters["images"] == 2, counters
    lines = error_lines(caplog, "geometry refused")
    assert len(lines) == 1 and f"IMAGE '{DEVICE}'" in lines[0], lines
    assert counters.get("disconnects", 0) == 0, "a bad geometry never costs the connection"


def test_a_transform_with_unusable_geometry_drops_the_device_and_is_logged_once(caplog):
    nan = PROBE_TO_TRACKER.copy()
    nan[0, 3] = np.nan
    payload = (
        transform(PROBE_TO_TRACKER)
        + transform(nan) * BAD_REPEATS
        + transform(nan, name=HOSTILE_NAME)
        + image_message(value=GOOD_VALUE).pack()
    )
    (frame,), counters = frames_from(payload, 1)
    assert frame.meta["transforms"] == {}, "the last good matrix must not stand in for a refused one"
    assert counters["transform_geometry_refused"] == BAD_REPEATS + 1, counters
    assert counters["transforms"] == 1 and counters.get("image_geometry_refused", 0) == 0, counters
    lines = error_lines(caplog, "geometry refused")
    assert len(lines) == 1, lines  # throttled: 31 refusals, one line
    assert f"TRANSFORM '{TRANSFORM_DEVICE}'" in lines[0] and "NaN or infinity" in lines[0]
    assert not any("FAKE LOG" in r.getMessage() and "\n" in r.getMessage() for r in caplog.records)


def test_a_hostile_device_name_is_shown_sanitised(caplog):
    nan = PROBE_TO_TRACKER.copy()
    nan[2, 2] = np.inf
    (frame,), counters = frames_from(transform(nan, name=HOSTILE_NAME) + image_message().pack(), 1)
    lines = error_lines(caplog, "geometry refused")
    assert len(lines) == 1 and "TRANSFORM 'Probe?FAKE LOG?[2J'" in lines[0], lines
    assert "\n" not in lines[0] and "\x1b" not in lines[0]


def read_all(sock: socket.socket, seconds: float) -> list:
    """Every (header fields, message) a viewer socket gets within ``seconds``."""
    got, stop = [], threading.Event()
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            got.append(read_message(pyigtl, sock, stop, idle_timeout=deadline - time.monotonic()))
    except (TimeoutError, OSError):
        pass  # nothing more came
    return got


def test_a_refused_geometry_never_reaches_a_viewer():
    bad = PROBE_TO_TRACKER.copy()
    bad[1, 3] = np.inf
    server = ScriptedServer(
        lambda n, sock, stop: (
            sock.sendall(
                transform(bad, name="StylusToTracker") + transform(PROBE_TO_TRACKER) + bad_image("nan")
            ),
            stop.wait(0.5),
            sock.sendall(image_message(value=GOOD_VALUE).pack()),
        )
    )
    spec = source_spec(server.port)
    link = IgtlServerLink(0)
    observer = IgtlObserver(link, release=link.close)
    viewer = socket.create_connection(("127.0.0.1", link.port), timeout=WAIT_S)
    try:
        deadline = time.monotonic() + WAIT_S
        while link.client_count < 1:
            assert time.monotonic() < deadline, "the viewer was not admitted"
            time.sleep(0.02)
        with igtl.open_igtl_source(spec) as source:
            it = iter(source)
            for frame in (next(it), next(it)):  # the refused one, then the good one
                mask = np.full(frame.image.shape[:2], 1, np.uint8)
                observer.on_frame(frame, Prediction(mask, mask.astype(np.float32)), frame.image, {})
                assert observer.flush(WAIT_S)
        got = read_all(viewer, 1.0)
    finally:
        viewer.close()
        observer.close()
        server.close()
    said = [msg.string for fields, msg in got if fields["message_type"] == "STRING"]
    got = [(fields, msg) for fields, msg in got if fields["message_type"] != "STRING"]
    types = [(fields["message_type"], fields["device_name"]) for fields, _ in got]
    # Only the good frame's prediction: its transform (the stylus's infinite one left out) and two images.
    assert types == [
        ("TRANSFORM", "Pred_ProbeToTracker"),
        ("IMAGE", "Prediction_Reference"),
        ("IMAGE", "ProbMap_Reference"),
    ], types
    assert said == ["AI ON"]  # the AI state, said once (the state is the same on both frames)
    for _, msg in got:
        matrix = msg.matrix if hasattr(msg, "matrix") else msg.ijk_to_world_matrix
        assert np.isfinite(np.asarray(matrix, np.float64)).all()
    assert link.counters.get("predictions_without_geometry") == 1, link.counters.snapshot()


def streams_refused_geometry(n, sock, stop):
    """A PLUS whose calibration went bad: 30 fps of images whose matrix holds NaN."""
    while not stop.is_set():
        sock.sendall(bad_image("nan"))
        stop.wait(1 / 30)


def viewer_reads(port: int, got: list, stop: threading.Event) -> None:
    """Connect to ``--igtl-serve`` as soon as it listens and keep every message until it closes."""
    while not stop.is_set():
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
            break
        except OSError:
            stop.wait(0.1)  # not listening yet
    else:
        return
    with sock:
        got.append(("connected", None))
        try:
            while True:
                got.append(read_message(pyigtl, sock, stop))
        except OSError:
            pass  # the command ended and closed the server


def test_live_keeps_showing_and_segmenting_images_whose_geometry_is_refused():
    """Through the real command: the frames are rendered with the AI on (not frozen, not dropped), one
    error line says why the geometry is refused, and a viewer of --igtl-serve gets nothing to misplace."""
    server = ScriptedServer(streams_refused_geometry)
    serve_port = free_port()
    args = ["live", "--source", f"igtl://127.0.0.1:{server.port}?device={DEVICE}"]
    args += ["--model", dark_onnx(), "--headless", "--roi", "full", "--mode", "strict", "--duration", "4"]
    got: list = []
    stop = threading.Event()
    viewer = threading.Thread(target=viewer_reads, args=(serve_port, got, stop), daemon=True)
    viewer.start()
    try:
        res = sonomap(*args, "--igtl-serve", f"127.0.0.1:{serve_port}", check=False, timeout=120)
    finally:
        stop.set()
        server.close()
        viewer.join(WAIT_S)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    summary = next(line for line in res.stdout.splitlines() if line.startswith("frames "))
    fields = summary.split()
    assert int(fields[1]) >= 20, summary  # ~4 s of a 30 fps stream, on a loaded machine
    assert fields[fields.index("AI") + 1] == "0", f"frames shown without the AI: {summary}"
    lines = [line for line in res.stderr.splitlines() if "geometry refused" in line]
    assert lines and f"IMAGE '{DEVICE}'" in lines[0] and "ERROR" in lines[0], res.stderr[-3000:]
    # throttled: the 1st refusal and every WARN_EVERY-th (counted as received, which may exceed those shown)
    counts = [int(re.search(r"\((\d+) so far", line).group(1)) for line in lines]
    assert counts == [1] + [WARN_EVERY * k for k in range(1, len(counts))], lines
    assert "prediction for" not in res.stderr, "the refusal is reported once, by the source"
    assert got[:1] == [("connected", None)], "the viewer never got in"
    placed = [fields for fields, _ in got[1:] if fields["message_type"] != "STRING"]
    assert placed == [], placed  # nothing to misplace; the AI state (a STRING) has no geometry
    said = {" ".join(msg.string.split()[:2]) for fields, msg in got[1:]}  # "AI ON 3 ms": the mask's age
    assert said == {"AI ON"}  # said, and said again each second
