"""A PLUS-server stand-in for the OpenIGTLink tests, and its own sanity test.

:class:`PlusStandIn` is a real pyigtl.OpenIGTLinkServer on 127.0.0.1 (ephemeral port)
streaming real BUSI ultrasound images as IMAGE messages (device ``Image_Reference``,
uint8 gray, known spacing and IJK-to-world matrix) plus a ``ProbeToTracker`` TRANSFORM,
at 30 fps while a client is connected, as PLUS does. It records what it sent
(timestamp -> image index), so a test can tell which image a returned labelmap is for.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pyigtl = pytest.importorskip("pyigtl")

DEVICE = "Image_Reference"
TRANSFORM_DEVICE = "ProbeToTracker"
SPACING_MM = 0.12
ORIGIN_MM = (10.0, -20.0, 5.0)
FPS = 30.0
N_IMAGES = 4
FRAME_WH = (384, 288)  # small, so tests stay fast on 2 cores
CONNECT_TIMEOUT_S = 5.0
TIMESTAMP_TOL_S = 1e-5  # OpenIGTLink timestamps are 32.32 fixed point; floats lose a few us
PROBE_TO_TRACKER = np.array(
    [[0.0, -1.0, 0.0, 12.5], [1.0, 0.0, 0.0, -3.0], [0.0, 0.0, 1.0, 40.0], [0.0, 0.0, 0.0, 1.0]], np.float32
)


def image_matrix(spacing: float = SPACING_MM) -> np.ndarray:
    m = np.diag([spacing, spacing, 1.0, 1.0])
    m[:3, 3] = ORIGIN_MM
    return m


def busi_images(busi_dir: Path, n: int = N_IMAGES) -> list[tuple[str, np.ndarray]]:
    """The first ``n`` BUSI sample images, resized to one scanner frame size: a PLUS
    stream keeps its geometry from frame to frame (the runtime picks its ROI once)."""
    # Malignant first: a trained model should mark something in the streamed frames.
    files = sorted(
        (busi_dir / "images").glob("*.png"), key=lambda f: (not f.name.startswith("malignant"), f.name)
    )[:n]
    return [
        (f.name, cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), FRAME_WH, interpolation=cv2.INTER_AREA))
        for f in files
    ]


class PlusStandIn:
    """pyigtl server standing in for PLUS. ``stream=False``: send only what the test sends."""

    def __init__(self, images: list[np.ndarray], port: int = 0, stream: bool = True, fps: float = FPS):
        saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        self.server = pyigtl.OpenIGTLinkServer(port=port, local_server=True)
        for sig, handler in saved.items():  # pyigtl installs its own; keep pytest's
            signal.signal(sig, handler)
        self.port = self.server.server_address[1]
        self.images = images
        self.period = 1.0 / fps
        self.sent: dict[float, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._stream, daemon=True) if stream else None
        if self._thread:
            self._thread.start()

    def image_message(self, index: int, timestamp: float | None = None) -> pyigtl.ImageMessage:
        ts = time.time() if timestamp is None else timestamp
        msg = pyigtl.ImageMessage(
            self.images[index % len(self.images)][np.newaxis],
            ijk_to_world_matrix=image_matrix(),
            timestamp=ts,
            device_name=DEVICE,
        )
        self.sent[ts] = index % len(self.images)
        return msg

    def index_for(self, timestamp: float) -> int:
        """Which image was sent with ``timestamp`` (read back through 32.32 fixed point)."""
        best = min(self.sent, key=lambda ts: abs(ts - timestamp))
        assert abs(best - timestamp) < TIMESTAMP_TOL_S, f"no image was sent at {timestamp}"
        return self.sent[best]

    def send(self, *messages) -> None:
        for m in messages:
            self.server.send_message(m, wait=False)

    def wait_connected(self, timeout: float = CONNECT_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not self.server.is_connected():
            assert time.monotonic() < deadline, "no client connected to the PLUS stand-in"
            time.sleep(0.01)

    def _stream(self) -> None:
        index = 0
        while not self._stop.is_set():
            if not self.server.is_connected():
                self._stop.wait(self.period)
                continue
            ts = time.time()
            self.send(
                pyigtl.TransformMessage(PROBE_TO_TRACKER, timestamp=ts, device_name=TRANSFORM_DEVICE),
                self.image_message(index, ts),
            )
            index += 1
            self._stop.wait(self.period)

    def received(self, device: str, timeout: float):
        """The newest message the stand-in got from its client for ``device`` (or None)."""
        return self.server.wait_for_message(device, timeout=timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        self.server.stop()


@pytest.fixture()
def busi4(busi_sample):
    return busi_images(busi_sample)


@pytest.fixture()
def plus(busi4):
    server = PlusStandIn([im for _, im in busi4])
    yield server
    server.stop()


@pytest.mark.timeout(20)
def test_standin_streams_busi_images_to_a_pyigtl_client(plus, busi4):
    client = pyigtl.OpenIGTLinkClient(host="127.0.0.1", port=plus.port)
    try:
        msg = client.wait_for_message(DEVICE, timeout=5)
        transform = client.wait_for_message(TRANSFORM_DEVICE, timeout=5)
    finally:
        client.stop()
    assert msg is not None and transform is not None
    assert msg.image.shape == (1, FRAME_WH[1], FRAME_WH[0])
    np.testing.assert_allclose(msg.ijk_to_world_matrix, image_matrix(), atol=1e-4)
    np.testing.assert_allclose(transform.matrix, PROBE_TO_TRACKER, atol=1e-6)
