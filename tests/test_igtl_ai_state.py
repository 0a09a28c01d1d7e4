"""An OpenIGTLink viewer (3D Slicer) overlays sonomap's labelmaps on the live image it gets from the
scanner itself, so it must learn when the AI stops answering: the AI state goes out as a STRING
(``AIState_<x>``) on every change and each second while it holds, no labelmap is sent unless the AI
is ON, and the last mask is cleared (an empty labelmap) the moment the AI leaves ON, so no mask
outlives the AI that made it.

A real viewer socket on loopback reading every message in order; the real ``sonomap live`` against a
pyigtl server standing in for PLUS."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
from cli import sonomap
from loopback import free_port
from runtime_model import dark_onnx
from test_igtl_standin import (
    DEVICE,
    busi4,  # noqa: F401 - a fixture
    plus,  # noqa: F401 - a fixture
    pyigtl,
)

igtl = pytest.importorskip("edge_runtime.igtl")
from edge_runtime.frames import Frame, Prediction  # noqa: E402 (after the importorskip)
from edge_runtime.igtl.ai_state import STATE_EVERY_S  # noqa: E402
from edge_runtime.igtl.wire import read_message  # noqa: E402

WAIT_S = 5.0
SHAPE = (48, 64)
STATE, LABELMAP, PROBMAP = "AIState_Reference", "Prediction_Reference", "ProbMap_Reference"
ON = {"state": "ON", "detail": ""}
STALLED = {"state": "STALLED", "detail": "1.5 s"}
LIVE_SECONDS = 3
SLOW_READ_S = 0.05  # a frame slow to build: the sender thread runs meanwhile, every time
# ON with its prediction; STALLED with the cleared labelmap; nothing on the next STALLED frame (no
# change, no prediction sent while not ON); STALLED said again a second later
EXPECTED = [STATE, LABELMAP, PROBMAP, STATE, LABELMAP, PROBMAP, STATE]


def _frame(index: int) -> Frame:
    image = np.random.default_rng(index).integers(0, 255, (*SHAPE, 3), dtype=np.uint8)
    return Frame(index, image, time.monotonic(), meta={"device": DEVICE, "mm_per_pixel": 0.2})


def _prediction() -> Prediction:
    mask = np.ones(SHAPE, np.uint8)
    return Prediction(mask, mask.astype(np.float32))


def _read(sock: socket.socket, seconds: float, got: list | None = None) -> list[tuple[str, object]]:
    """Every (device, message) the viewer socket gets within ``seconds``, in order, appended to ``got``
    as each comes (a new list when none is given)."""
    got = [] if got is None else got
    stop, deadline = threading.Event(), time.monotonic() + seconds
    sock.settimeout(seconds)
    try:
        while time.monotonic() < deadline:
            fields, msg = read_message(pyigtl, sock, stop, idle_timeout=deadline - time.monotonic())
            got.append((fields["device_name"], msg))
    except (TimeoutError, OSError):
        pass  # nothing more came
    return got


def test_the_state_goes_out_and_the_mask_is_cleared_when_the_ai_leaves_on():
    observer = igtl.make_igtl_observer(igtl_serve="127.0.0.1:0")
    viewer = socket.create_connection(("127.0.0.1", observer.link.port), timeout=WAIT_S)
    got: list = []
    reader = threading.Thread(target=_read, args=(viewer, STATE_EVERY_S + WAIT_S, got), daemon=True)
    try:
        deadline = time.monotonic() + WAIT_S
        while observer.link.client_count < 1:
            assert time.monotonic() < deadline, "the viewer was not admitted"
            time.sleep(0.02)
        reader.start()  # a viewer reads all along, as Slicer does
        for index, ai in enumerate([ON, STALLED, STALLED]):  # a new prediction on every frame
            frame = _frame(index)
            observer.on_frame(frame, _prediction(), frame.image, {"ai": ai})
            assert observer.flush(WAIT_S)
        time.sleep(STATE_EVERY_S)
        frame = _frame(3)
        observer.on_frame(frame, _prediction(), frame.image, {"ai": STALLED})  # a second later: said again
        assert observer.flush(WAIT_S)
        deadline = time.monotonic() + WAIT_S
        while len(got) < len(EXPECTED) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        viewer.close()
        observer.close()
        reader.join(WAIT_S)
    order = [device for device, _ in got]
    assert order == EXPECTED, order
    said = [msg.string for device, msg in got if device == STATE]
    assert said == ["AI ON", "AI STALLED 1.5 s", "AI STALLED 1.5 s"]
    first, cleared = got[1][1], got[4][1]
    assert first.image.max() == 1  # the prediction made while ON
    assert cleared.image.shape == (1, *SHAPE) and cleared.image.max() == 0  # cleared, not kept
    assert got[5][1].image.max() == 0
    assert (observer.sent, observer.cleared, observer.states_sent) == (1, 1, 3)


def test_live_with_the_ai_off_tells_the_viewer_and_sends_no_labelmap(plus):
    """``sonomap live --no-ai --igtl-serve``: the viewer hears ``AI OFF`` each second and gets no mask."""
    port = free_port()
    got: list = []
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + WAIT_S
        while not done.is_set() and time.monotonic() < deadline:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
            except OSError:
                time.sleep(0.05)
                continue
            got.extend(_read(sock, LIVE_SECONDS + 2))
            sock.close()
            return

    viewer = threading.Thread(target=watch, daemon=True)
    viewer.start()
    try:
        run = sonomap(
            *("live", "--source", f"igtl://127.0.0.1:{plus.port}?device={DEVICE}&timeout=10"),
            *("--igtl-serve", str(port), "--headless", "--roi", "full", "--no-ai"),
            *("--duration", str(LIVE_SECONDS), "--model", dark_onnx()),
            check=False,
            timeout=120,
        )
    finally:
        done.set()
        viewer.join(LIVE_SECONDS + WAIT_S)
    assert run.returncode == 0, run.stderr[-3000:]
    devices = {device for device, _ in got}
    assert devices == {STATE}, devices  # no labelmap, no probability map
    said = [msg.string for _, msg in got]
    assert said and all(text.startswith("AI OFF") for text in said), said
    assert len(said) >= LIVE_SECONDS - 1  # said again each second while it holds


class _SlowMeta(dict):
    """A frame's metadata that takes a while to read the pixel size (only the labelmap's geometry reads
    it): a busy render thread between two statements, made long enough to be seen every time."""

    def get(self, key, default=None):
        if key == "mm_per_pixel":
            time.sleep(SLOW_READ_S)
        return super().get(key, default)


def test_a_state_and_the_labelmap_it_speaks_for_leave_in_one_payload():
    """A viewer that falls behind loses whole payloads (its outbox keeps the newest two): the ``AI ON``
    that goes with a labelmap, or the ``AI STALLED`` that goes with the cleared one, must share its
    payload, or the viewer could be left holding a labelmap without ever hearing that the AI was ON.
    The sender thread is idle, waiting, when each frame comes, and the frame is slow to build."""
    sent: list[list[str]] = []

    class Recording(igtl.server.IgtlServerLink):
        def send(self, messages: list) -> bool:
            sent.append([m.device_name for m in messages])
            return super().send(messages)

    observer = igtl.IgtlObserver(Recording(0))
    try:
        for index, ai in enumerate([ON, STALLED]):
            frame = _frame(index)
            frame = Frame(index, frame.image, frame.timestamp, meta=_SlowMeta(frame.meta))
            observer.on_frame(frame, _prediction(), frame.image, {"ai": ai})
            assert observer.flush(WAIT_S)
    finally:
        observer.close()
    assert sent == [[STATE, LABELMAP, PROBMAP]] * 2, sent
