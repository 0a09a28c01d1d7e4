"""The HTTP viewer's frame store with real OpenCV encodes and real threads: the render loop's put()
never waits for a viewer's JPEG encode, and viewers share one encode per frame.

A 4K noise frame (the worst case for JPEG, like speckle) takes tens to hundreds of milliseconds to
encode, and copying it in put() a few. The assertions count events (puts done per encode), not
wall-clock times, so a slow or busy machine changes both sides alike."""

from __future__ import annotations

import math
import threading
import time

import numpy as np

from edge_runtime.service import http_frames
from edge_runtime.service.http_frames import FrameStore, NoFrame

WIDTH, HEIGHT = 3840, 2160
ENCODES = 6  # viewer encodes to watch the render loop through
# puts per encode: 1 when put() waits for each encode; about encode time / copy time (~10) when not
MIN_PUTS_PER_ENCODE = 3
RUN_LIMIT_S = 120.0  # a safety stop only: the loop ends on the encode count
VIEWERS = 4
JOIN_S = 30.0


def noise_frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), np.uint8)


def test_put_does_not_wait_while_a_viewer_encodes(monkeypatch):
    monkeypatch.setattr(http_frames, "MJPEG_MAX_FPS", math.inf)  # the render loop puts as fast as it can
    store = FrameStore()
    image = noise_frame()
    store.put(image)
    stop = threading.Event()
    served = [0]  # frames the viewer got, each one encoded for it (no other viewer shares them)

    def viewer() -> None:  # what an MJPEG stream thread does
        seq = -1
        while not stop.is_set():
            try:
                seq, _ = store.jpeg(seq)
            except NoFrame:
                continue
            served[0] += 1

    thread = threading.Thread(target=viewer, daemon=True)
    thread.start()
    puts, limit = 0, time.monotonic() + RUN_LIMIT_S
    try:
        while served[0] < 1 and time.monotonic() < limit:
            time.sleep(0.001)  # count from the first encode on
        first = served[0]
        while served[0] < first + ENCODES and time.monotonic() < limit:
            store.put(image)
            puts += 1
        encodes = served[0] - first
    finally:
        stop.set()
        store.close()
        thread.join(JOIN_S)
    assert encodes >= ENCODES
    assert puts >= MIN_PUTS_PER_ENCODE * encodes, (puts, encodes)


def test_viewers_share_one_encode_per_frame():
    store = FrameStore()
    store.put(noise_frame())
    start = threading.Barrier(VIEWERS)
    results: list[tuple[int, bytes]] = []

    def viewer() -> None:
        start.wait()
        results.append(store.jpeg(timeout=JOIN_S))

    threads = [threading.Thread(target=viewer) for _ in range(VIEWERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_S)
    assert len(results) == VIEWERS and {seq for seq, _ in results} == {1}
    assert len({jpeg for _, jpeg in results}) == 1
    assert store.encodes == 1
    # the next viewer asking for the same frame gets it without a new encode
    assert store.jpeg() == results[0] and store.encodes == 1
