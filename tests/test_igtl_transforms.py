"""TRANSFORMs from a real server on loopback: the link keeps a bounded number of device names
(new ones beyond the cap refused and counted), an image carries only the matrices received just
before it (a tool the tracker lost is not sent on as the current pose), and a v2/v3
``TransformStatus`` other than OK drops the device's matrix at once. What one prediction sends
back stays bounded too."""

from __future__ import annotations

import time

import numpy as np
import pytest
from test_igtl_network import ScriptedServer, image_message
from test_igtl_standin import DEVICE, PROBE_TO_TRACKER, TRANSFORM_DEVICE, pyigtl

igtl = pytest.importorskip("edge_runtime.igtl")
from edge_runtime.igtl.link import IgtlClientLink  # noqa: E402 (after the importorskip)
from edge_runtime.igtl.sink import IgtlObserver  # noqa: E402
from edge_runtime.igtl.transforms import MAX_TRANSFORM_DEVICES, TRANSFORM_MAX_AGE_S  # noqa: E402

pytestmark = pytest.mark.timeout(60)
WAIT_S = 5.0
EXTRA_NAMES = 100  # names beyond the cap, all sent within a fraction of a second (all current)
STALE_MARGIN_S = 0.3  # past the age limit by this much: stale on any machine
OTHER_DEVICE = "StylusToTracker"


def transform(name: str = TRANSFORM_DEVICE, status: str | None = None) -> bytes:
    msg = pyigtl.TransformMessage(PROBE_TO_TRACKER, timestamp=time.time(), device_name=name)
    if status is not None:  # v2 header with metadata, as PLUS sends with OpenIGTLink v3
        msg.header_version = 2
        msg.metadata = {"TransformStatus": status}
    return msg.pack()


def images_from(script) -> tuple[IgtlClientLink, ScriptedServer]:
    server = ScriptedServer(script)
    return IgtlClientLink(server.host, server.port, device=DEVICE), server


def next_image(link: IgtlClientLink, after: int = 0):
    got = link.wait_image(after, WAIT_S)
    assert got is not None, f"no image within {WAIT_S} s: {link.counters.snapshot()}"
    return got


def test_transform_device_names_are_capped_and_a_prediction_stays_small():
    names = [f"T{i:05d}" for i in range(MAX_TRANSFORM_DEVICES + EXTRA_NAMES)]
    payload = b"".join(transform(n) for n in names) + image_message().pack()
    link, server = images_from(lambda n, sock, stop: sock.sendall(payload))
    try:
        _, image = next_image(link)
        assert len(image.transforms) == MAX_TRANSFORM_DEVICES
        counts = link.counters.snapshot()
        assert counts["skipped_transform_devices"] == EXTRA_NAMES, counts
        assert counts["transforms"] == MAX_TRANSFORM_DEVICES, counts
        observer = IgtlObserver(link, release=lambda: None)
        try:
            geo = {
                "layout": image.layout,
                "matrix": image.ijk_to_world,
                "system": "ras",
                "device": DEVICE,
                "timestamp": image.timestamp,
                "transforms": image.transforms,
            }
            rows, cols = image.bgr.shape[:2]
            mask, prob = np.zeros((rows, cols), np.uint8), np.zeros((rows, cols), np.float32)
            messages = observer.build_messages(geo, (rows, cols), None, mask, prob)
        finally:
            observer.close()
        assert len(messages) == MAX_TRANSFORM_DEVICES + 2  # the transforms, the labelmap, the probabilities
    finally:
        link.close()
        server.close()


def test_a_transform_no_longer_sent_is_not_attached_to_later_images():
    def script(n, sock, stop):
        sock.sendall(transform() + image_message(value=10).pack())
        stop.wait(TRANSFORM_MAX_AGE_S + STALE_MARGIN_S)  # tracking lost: images only from now on
        sock.sendall(image_message(value=20).pack())

    link, server = images_from(script)
    try:
        seq, first = next_image(link)
        np.testing.assert_allclose(first.transforms[TRANSFORM_DEVICE], PROBE_TO_TRACKER, atol=1e-6)
        _, later = next_image(link, seq)
        assert later.transforms == {}
        assert link.transforms() == {}
    finally:
        link.close()
        server.close()


def test_a_transform_whose_status_is_not_ok_is_dropped_at_once():
    payload = (
        transform()
        + transform(OTHER_DEVICE, status="OK")
        + transform(status="INVALID")
        + image_message().pack()
    )
    link, server = images_from(lambda n, sock, stop: sock.sendall(payload))
    try:
        _, image = next_image(link)
        assert list(image.transforms) == [OTHER_DEVICE]
        assert link.counters.get("transforms_invalid") == 1
    finally:
        link.close()
        server.close()
