"""The OpenIGTLink sender's thread outlives any fault in one send: an error no check foresaw (here a
KeyError raised once while building a prediction's messages, standing in for a library's or our own
bug) is counted and logged, and the AI state still reaches the viewer afterwards. Before, the thread
ended and 3D Slicer kept the last labelmap and 'AI ON' for the rest of the session. A real server
link on a loopback socket, a real viewer socket."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

pytest.importorskip("pyigtl", reason="OpenIGTLink tests need the igtl extra (pyigtl)")

from test_igtl_geometry import read_all

from edge_runtime.frames import Frame, Prediction
from edge_runtime.igtl.server import IgtlServerLink
from edge_runtime.igtl.sink import IgtlObserver

WAIT_S = 5.0
SHAPE = (48, 64)


def test_an_unforeseen_fault_in_one_send_leaves_the_sender_running(monkeypatch, caplog):
    link = IgtlServerLink(0)
    observer = IgtlObserver(link, release=link.close)
    viewer = socket.create_connection(("127.0.0.1", link.port), timeout=WAIT_S)
    real, calls = observer.build_messages, []

    def fails_once(*args):
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("device")
        return real(*args)

    monkeypatch.setattr(observer, "build_messages", fails_once)
    try:
        deadline = time.monotonic() + WAIT_S
        while link.client_count < 1:
            assert time.monotonic() < deadline, "the viewer was not admitted"
            time.sleep(0.02)
        image = np.zeros((*SHAPE, 3), np.uint8)
        mask = np.ones(SHAPE, np.uint8)
        on = Frame(0, image, time.monotonic(), 0.0, {})
        observer.on_frame(on, Prediction(mask, mask.astype(np.float32)), image, {"ai": {"state": "ON"}})
        assert observer.flush(WAIT_S)
        off = Frame(1, image, time.monotonic(), 1 / 30, {})
        observer.on_frame(off, None, image, {"ai": {"state": "OFF", "detail": ""}})
        assert observer.flush(WAIT_S), "the sender stopped after the fault"
        got = read_all(viewer, 1.0)
    finally:
        viewer.close()
        observer.close()
    said = [msg.string for fields, msg in got if fields["message_type"] == "STRING"]
    assert said and said[-1] == "AI OFF", said
    assert observer.failed == 1 and len(calls) == 2
    assert "prediction not sent (KeyError: 'device')" in caplog.text
