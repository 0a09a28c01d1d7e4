"""OpenIGTLink source and sink against a real pyigtl server on loopback standing in for PLUS.

Checks: frames with spacing/matrix/transforms/timestamps; latest-wins; RGB; plain 2-D
arrays; bad messages (unsupported scalar type, 3-D volume, other device, undecodable body,
corrupt header) skipped and counted; reconnection after the server restarts; the labelmap
and probability map sent back in client mode (over the source's own connection) and in
server mode, with the input's size, spacing, matrix, timestamp and derived names, pasted
at a sub-ROI; clear errors.
"""

from __future__ import annotations

import sys
import time

import cv2
import numpy as np
import pytest
from test_igtl_standin import (
    DEVICE,
    PROBE_TO_TRACKER,
    SPACING_MM,
    TRANSFORM_DEVICE,
    PlusStandIn,
    busi4,  # noqa: F401 - a fixture
    image_matrix,
    plus,  # noqa: F401 - a fixture
    pyigtl,
)

from edge_runtime.errors import ConfigError, InputError, SonomapError
from edge_runtime.frames import Frame, Prediction
from edge_runtime.live_stats import EVENTS
from edge_runtime.roi import Roi

igtl = pytest.importorskip("edge_runtime.igtl")

WAIT_S = 5.0
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
pytestmark = pytest.mark.timeout(30)


def spec(port: int, **query) -> str:
    params = {"device": DEVICE, "timeout": WAIT_S, **query}
    return f"igtl://127.0.0.1:{port}?" + "&".join(f"{k}={v}" for k, v in params.items())


def first_frames(source, n: int) -> list[Frame]:
    frames = []
    for frame in source:
        frames.append(frame)
        if len(frames) == n:
            return frames
    raise AssertionError("stream ended early")


def wait_until(predicate, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_source_yields_busi_frames_with_geometry_and_transforms(plus, busi4):
    with igtl.open_igtl_source(spec(plus.port)) as source:
        assert source.live
        frames = first_frames(source, 3)
    sizes = {im.shape for _, im in busi4}
    for frame in frames:
        assert frame.image.dtype == np.uint8 and frame.image.shape[2] == 3
        index = plus.index_for(frame.meta["igtl_timestamp"])
        np.testing.assert_array_equal(frame.image[:, :, 1], busi4[index][1])  # gray -> BGR, lossless
        assert frame.image.shape[:2] in sizes
        assert frame.meta["mm_per_pixel"] == pytest.approx(SPACING_MM, rel=1e-5)
        assert frame.meta["pixel_spacing"] == pytest.approx((SPACING_MM, SPACING_MM), rel=1e-5)
        np.testing.assert_allclose(frame.meta["ijk_to_world"], image_matrix(), atol=1e-4)
        np.testing.assert_allclose(frame.meta["ijk_to_ras"], LPS_TO_RAS @ image_matrix(), atol=1e-4)
        assert frame.meta["device"] == DEVICE
        np.testing.assert_allclose(frame.meta["transforms"][TRANSFORM_DEVICE], PROBE_TO_TRACKER, atol=1e-6)
    assert [f.index for f in frames] == [0, 1, 2]
    assert frames[0].timestamp < frames[1].timestamp < frames[2].timestamp


def test_latest_frame_wins_and_rgb_becomes_bgr(busi4):
    plus = PlusStandIn([im for _, im in busi4], stream=False)
    try:
        with igtl.open_igtl_source(spec(plus.port)) as source:
            plus.wait_connected()
            gray = busi4[0][1]
            rgb = np.stack([gray, 255 - gray, np.full_like(gray, 7)], axis=-1)
            for i in range(4):
                plus.send(plus.image_message(i))
            last_ts = time.time()
            plus.send(
                pyigtl.ImageMessage(
                    rgb[np.newaxis], ijk_to_world_matrix=image_matrix(), timestamp=last_ts, device_name=DEVICE
                )
            )
            wait_until(lambda: source.counters.get("images", 0) == 5, "5 images")
            frame = first_frames(source, 1)[0]
    finally:
        plus.stop()
    assert frame.meta["igtl_timestamp"] == pytest.approx(last_ts, abs=1e-5)  # the 4 older ones dropped
    np.testing.assert_array_equal(frame.image, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


class RawMessage(pyigtl.MessageBase):
    """Bytes on the wire exactly as given: for messages pyigtl refuses to build."""

    def __init__(self, payload: bytes):
        super().__init__()
        self._payload = payload
        self._valid_message = True

    def pack(self) -> bytes:
        return self._payload


SCALAR_TYPE_OFFSET = 58 + 3  # header, then image header version (2 bytes) and components (1)
UNKNOWN_SCALAR_CODE = 99


def with_fresh_crc(packed: bytes) -> bytes:
    """``packed`` with its header CRC64 recomputed for its edited body: a decode fault, not a CRC one."""
    body = packed[igtl.wire.HEADER_SIZE :]
    crc = pyigtl.messages.CRC64(body).to_bytes(8, "big")
    return packed[: igtl.wire.HEADER_CRC_OFFSET] + crc + body


def test_bad_messages_are_skipped_with_counted_warnings(busi4, caplog):
    gray = busi4[0][1]
    plus = PlusStandIn([gray], stream=False)
    try:
        with igtl.open_igtl_source(spec(plus.port)) as source:
            plus.wait_connected()
            undecodable = bytearray(plus.image_message(0).pack())
            undecodable[SCALAR_TYPE_OFFSET] = UNKNOWN_SCALAR_CODE
            plus.send(
                pyigtl.ImageMessage(gray[np.newaxis].astype(np.uint16), device_name=DEVICE),
                pyigtl.ImageMessage(gray[np.newaxis].astype(np.float32), device_name=DEVICE),
                pyigtl.ImageMessage(np.zeros((3, 32, 48), np.uint8), device_name=DEVICE),
                pyigtl.ImageMessage(gray[np.newaxis], device_name="Image_Other"),
                RawMessage(with_fresh_crc(bytes(undecodable))),
                pyigtl.StringMessage("hello", device_name="Status"),
            )
            good_ts = time.time()
            plus.send(plus.image_message(0, good_ts))
            frame = first_frames(source, 1)[0]
            counters = source.counters
    finally:
        plus.stop()
    assert frame.meta["igtl_timestamp"] == pytest.approx(good_ts, abs=1e-5)
    assert counters["skipped_scalar_type"] == 2
    assert counters["skipped_volume"] == 1
    assert counters["skipped_device"] == 1
    assert counters["skipped_malformed"] == 1
    assert counters["images"] == 1 and counters["other_messages"] == 1
    assert counters.get("disconnects", 0) == 0, "a bad message must not cost the connection"
    events = EVENTS.snapshot()
    assert events["igtl_skipped_volume"] >= 1 and events["igtl_skipped_device"] >= 1  # /metrics kinds
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "uint16" in warned and "3-D volume" in warned and "Image_Other" in warned


def test_reconnects_after_the_server_restarts(busi4):
    images = [im for _, im in busi4]
    plus = PlusStandIn(images)
    port = plus.port
    try:
        with igtl.open_igtl_source(spec(port, backoff_max=0.2)) as source:
            it = iter(source)
            before = next(it)
            plus.stop()
            wait_until(lambda: not source.link.connected.is_set(), "the disconnect")
            time.sleep(0.5)  # a few failed attempts with backoff while the server is down
            plus = PlusStandIn(images, port=port)
            after = next(it)
            counters = source.counters
    finally:
        plus.stop()
    assert after.meta["igtl_timestamp"] > before.meta["igtl_timestamp"]
    assert counters["connects"] == 2 and counters["disconnects"] == 1
    assert counters.get("connect_failures", 0) >= 1


def fake_prediction(frame: Frame, roi: Roi | None = None) -> Prediction:
    """A deterministic prediction from the pixels (these tests are about transport, the
    model-equality test is in test_igtl_pipeline.py)."""
    gray = frame.image[:, :, 1] if roi is None else roi.crop(frame.image)[:, :, 1]
    prob = gray.astype(np.float32) / 255.0
    return Prediction(mask=(prob > 0.5).astype(np.uint8), prob=prob)


def test_client_mode_sends_labelmap_probability_and_transforms_back(plus, busi4):
    with igtl.open_igtl_source(spec(plus.port)) as source:
        observer = igtl.make_igtl_observer(igtl_out=f"127.0.0.1:{plus.port}")
        assert observer.link is source.link, "--igtl-out to the source's server reuses its connection"
        frame = first_frames(source, 1)[0]
        prediction = fake_prediction(frame)
        observer.on_frame(frame, prediction, frame.image, {})
        observer.on_frame(frame, prediction, frame.image, {})  # re-rendered: not sent twice
        assert observer.flush(WAIT_S)
        label = plus.received("Prediction_Reference", WAIT_S)
        prob = plus.received("ProbMap_Reference", WAIT_S)
        transform = plus.received("Pred_" + TRANSFORM_DEVICE, WAIT_S)
        observer.close()
    assert observer.sent == 1
    ts = frame.meta["igtl_timestamp"]
    for msg in (label, prob):
        assert msg is not None and msg.image.dtype == np.uint8
        assert msg.image.shape == (1, *frame.image.shape[:2])
        np.testing.assert_allclose(msg.ijk_to_world_matrix, image_matrix(), atol=1e-4)
        assert msg.world_coordinate_system == "lps"
        assert msg.timestamp == pytest.approx(ts, abs=1e-5)
    np.testing.assert_array_equal(label.image[0], prediction.mask)
    np.testing.assert_array_equal(prob.image[0], np.rint(prediction.prob * 255).astype(np.uint8))
    np.testing.assert_allclose(transform.matrix, PROBE_TO_TRACKER, atol=1e-6)
    assert transform.timestamp == pytest.approx(ts, abs=1e-5)
    assert observer.latency()["stamp_to_sent_ms"]["n"] == 1


def test_server_mode_serves_viewers_and_pastes_a_sub_roi(plus, busi4):
    observer = igtl.make_igtl_observer(igtl_serve="127.0.0.1:0", send_probability=False)
    viewer = pyigtl.OpenIGTLinkClient(host="127.0.0.1", port=observer.link.port)
    try:
        wait_until(lambda: observer.link.client_count == 1, "the viewer to connect")
        with igtl.open_igtl_source(spec(plus.port)) as source:
            frame = first_frames(source, 1)[0]
        h, w = frame.image.shape[:2]
        roi = Roi(5, 7, w // 2, h // 3)
        frame.meta["roi"] = roi
        prediction = fake_prediction(frame, roi)
        observer.on_frame(frame, prediction, frame.image, {})
        assert observer.flush(WAIT_S)
        label = viewer.wait_for_message("Prediction_Reference", timeout=WAIT_S)
        assert viewer.wait_for_message("ProbMap_Reference", timeout=0.2) is None  # disabled
    finally:
        viewer.stop()
        observer.close()
    assert label is not None and label.image.shape == (1, h, w)
    expected = np.zeros((h, w), np.uint8)
    expected[roi.y : roi.y + roi.h, roi.x : roi.x + roi.w] = prediction.mask
    np.testing.assert_array_equal(label.image[0], expected)
    assert label.timestamp == pytest.approx(frame.meta["igtl_timestamp"], abs=1e-5)


def test_frames_from_other_sources_get_an_axis_aligned_matrix_with_their_mm_scale():
    observer = igtl.make_igtl_observer(igtl_serve="127.0.0.1:0")
    try:
        image = np.zeros((20, 30, 3), np.uint8)
        frame = Frame(0, image, time.monotonic(), meta={"mm_per_pixel": 0.25})
        messages = observer.build_messages(
            igtl.frame_geometry.geometry(frame),
            (20, 30),
            None,
            np.ones((20, 30), np.uint8),
            np.zeros((20, 30), np.float32),
        )
    finally:
        observer.close()
    assert [m.device_name for m in messages] == ["Prediction", "ProbMap"]
    assert messages[0].image.shape == (1, 20, 30)
    np.testing.assert_allclose(messages[0].ijk_to_world_matrix, np.diag([0.25, 0.25, 1, 1]))


@pytest.mark.parametrize(
    "name,tag,expected",
    [
        ("Image_Reference", "Prediction", "Prediction_Reference"),
        ("Image_Reference", "ProbMap", "ProbMap_Reference"),
        ("ImageToReference", "Pred", "PredToReference"),
        ("ProbeToTracker", "Pred", "Pred_ProbeToTracker"),
        ("Image_VeryLongReferenceName", "Prediction", "Prediction_VeryLongR"),
    ],
)
def test_derived_device_names_fit_the_20_byte_field(name, tag, expected):
    assert igtl.image_message.derive_device_name(name, tag) == expected


def test_no_frame_within_timeout_is_a_clear_input_error():
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with igtl.open_igtl_source(f"igtl://127.0.0.1:{port}?timeout=0.5&backoff_max=0.1") as source:
        with pytest.raises(InputError, match=rf"igtl://127.0.0.1:{port}.*no IMAGE.*not connected"):
            next(iter(source))
        assert source.counters["connect_failures"] >= 1


@pytest.mark.parametrize(
    "bad", ["igtl://", "igtl://host:port", "igtl://h:1?fps=3", "igtl://h:1?timeout=-1", "tcp://h:1"]
)
def test_bad_specs_are_config_errors(bad):
    with pytest.raises(ConfigError, match="igtl|host|port|timeout|fps"):
        igtl.parse_igtl_spec(bad)


def test_observer_needs_exactly_one_mode_and_a_valid_address():
    with pytest.raises(ConfigError):
        igtl.make_igtl_observer()
    with pytest.raises(ConfigError, match="--igtl-out"):
        igtl.make_igtl_observer(igtl_out="nohostport")
    with pytest.raises(ConfigError, match="--igtl-serve"):
        igtl.make_igtl_observer(igtl_serve="99999")


def test_missing_pyigtl_is_a_sonomap_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyigtl", None)  # what `import pyigtl` sees when not installed
    with pytest.raises(SonomapError, match="pip install"):
        igtl.open_igtl_source("igtl://127.0.0.1:18944")


def test_a_plain_2d_array_sender_keeps_its_layout_and_axis_spacing(busi4):
    """pyigtl packs a 2-D (H, W) array as i=1, j=W, k=H: rows run along k, columns along j.
    The labelmap must come back in that same layout so the sender's matrix still fits."""
    gray = busi4[0][1]
    matrix = np.diag([0.5, 0.12, 0.3, 1.0])  # i (unused), j = columns, k = rows
    plus = PlusStandIn([gray], stream=False)
    try:
        with igtl.open_igtl_source(spec(plus.port)) as source:
            plus.wait_connected()
            plus.send(pyigtl.ImageMessage(gray, ijk_to_world_matrix=matrix, device_name=DEVICE))
            frame = first_frames(source, 1)[0]
    finally:
        plus.stop()
    np.testing.assert_array_equal(frame.image[:, :, 1], gray)
    assert frame.meta["igtl_layout"] == (*gray.shape, 1)
    assert frame.meta["pixel_spacing"] == pytest.approx((0.3, 0.12), rel=1e-5)
    observer = igtl.make_igtl_observer(igtl_serve="127.0.0.1:0")
    try:
        mask = (gray > 100).astype(np.uint8)
        label = observer.build_messages(
            igtl.frame_geometry.geometry(frame), gray.shape, None, mask, mask.astype(np.float32)
        )[0]
    finally:
        observer.close()
    assert label.image.shape == (*gray.shape, 1)
    np.testing.assert_array_equal(label.image[:, :, 0], mask)


BODY_SIZE_OFFSET = 2 + 12 + 20 + 8  # header: version, type, device name, timestamp, then body size


def test_a_corrupt_header_resynchronises_by_reconnecting(plus):
    with igtl.open_igtl_source(spec(plus.port, backoff_max=0.2)) as source:
        it = iter(source)
        next(it)
        corrupt = bytearray(plus.image_message(0).pack())
        corrupt[BODY_SIZE_OFFSET : BODY_SIZE_OFFSET + 8] = (1 << 62).to_bytes(8, "big")
        plus.send(RawMessage(bytes(corrupt)))
        wait_until(lambda: source.counters.get("disconnects", 0) == 1, "the resync disconnect")
        after = next(it)
        counters = source.counters
    assert counters["connects"] == 2
    assert after.meta["igtl_timestamp"] > 0 and after.image.shape[:2] == plus.images[0].shape
