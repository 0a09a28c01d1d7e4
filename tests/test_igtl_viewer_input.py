"""What viewers of ``--igtl-serve`` send, with real sockets on loopback: a viewer that trickles bytes
(slowloris) never holds a place for ever. It is dropped and counted once a message it began is not whole
within the message timeout, and before that it counts as idle, so a newcomer can take its place when all
are taken. A viewer that sends whole messages, however slowly, is kept; one that sends something other
than OpenIGTLink is dropped at once, with throttled warnings."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from loopback import closed_by_server
from test_igtl_network import image_message
from test_igtl_standin import pyigtl

igtl = pytest.importorskip("edge_runtime.igtl")
from edge_runtime.igtl.server import IgtlServerLink  # noqa: E402 (after the importorskip)
from edge_runtime.igtl.viewer_input import VIEWER_MESSAGE_TIMEOUT_S  # noqa: E402
from edge_runtime.igtl.wire import HEADER_SIZE, read_message  # noqa: E402

pytestmark = pytest.mark.timeout(90)
MESSAGE_TIMEOUT_S = 0.6  # the timeout these tests give (the default is VIEWER_MESSAGE_TIMEOUT_S)
NO_TIMEOUT_S = 60.0  # a message timeout the test never reaches, to watch eviction alone
EVICT_IDLE_S = 0.3
SLOW_VIEWER_EVICT_S = 1.0  # a margin for a loaded machine's accept thread over the viewer's 0.2 s pace
TRICKLE_S = 0.1  # one byte this often: far more often than the idle limit
WAIT_S = 5.0
BAD_VIEWERS = 30  # more than one warning's worth, fewer than net.WARN_EVERY


def wait_until(condition, what: str, within: float = WAIT_S) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


class Tricklers:
    """``count`` connections to ``port`` that each send one byte every TRICKLE_S and read nothing."""

    def __init__(self, port: int, count: int, data: bytes = b"\0" * HEADER_SIZE):
        self.socks = []
        for _ in range(count):
            self.socks.append(socket.create_connection(("127.0.0.1", port), timeout=WAIT_S))
            time.sleep(0.02)  # in order: the first one has been idle longest
        self.data, self.stop = data, threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self) -> None:
        for i in range(len(self.data)):
            for sock in self.socks:
                try:
                    sock.send(self.data[i : i + 1])
                except OSError:
                    pass  # dropped by the server: that is what the tests wait for
            if self.stop.wait(TRICKLE_S):
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(WAIT_S)
        for sock in self.socks:
            sock.close()


def gets_predictions(link: IgtlServerLink, viewer: socket.socket) -> bool:
    """Whether ``viewer`` (connected to ``link``) is admitted and receives what the server sends."""
    wait_until(lambda: link.counters.get("viewers_connected") >= 1, "never admitted")
    sent = image_message()
    link.send([sent])
    viewer.settimeout(WAIT_S)
    _, got = read_message(pyigtl, viewer, threading.Event())
    return abs(got.timestamp - sent.timestamp) < 1e-4


def test_viewers_that_trickle_a_header_are_dropped_and_a_new_viewer_gets_in(caplog):
    link = IgtlServerLink(0, message_timeout_s=MESSAGE_TIMEOUT_S, evict_idle_s=NO_TIMEOUT_S)
    tricklers = Tricklers(link.port, link.max_viewers)
    try:
        wait_until(lambda: link.client_count == link.max_viewers, str(link.counters.snapshot()))
        start = time.monotonic()
        wait_until(
            lambda: link.counters.get("viewers_timed_out") == link.max_viewers, str(link.counters.snapshot())
        )
        assert time.monotonic() - start < MESSAGE_TIMEOUT_S + 2.0  # bounded, at the slowloris's pace
        assert all(closed_by_server(sock) for sock in tricklers.socks)
        assert link.client_count == 0 and link.counters.get("viewers_dropped") == link.max_viewers
        with socket.create_connection(("127.0.0.1", link.port), timeout=WAIT_S) as viewer:
            assert gets_predictions(link, viewer)
        assert link.counters.get("viewers_refused") == 0
        lines = [r.getMessage() for r in caplog.records if "no whole message within" in r.getMessage()]
        assert len(lines) == 1 and "header bytes" in lines[0], lines  # throttled: one line for four
    finally:
        tricklers.close()
        link.close()


def test_a_trickling_viewer_is_idle_so_a_newcomer_takes_its_place():
    link = IgtlServerLink(0, message_timeout_s=NO_TIMEOUT_S, evict_idle_s=EVICT_IDLE_S)
    tricklers = Tricklers(link.port, link.max_viewers)
    try:
        wait_until(lambda: link.client_count == link.max_viewers, str(link.counters.snapshot()))
        time.sleep(EVICT_IDLE_S + 0.2)  # bytes arrived all along, never a whole message
        with socket.create_connection(("127.0.0.1", link.port), timeout=WAIT_S) as viewer:
            wait_until(lambda: link.counters.get("viewers_evicted") == 1, str(link.counters.snapshot()))
            assert closed_by_server(tricklers.socks[0])  # the one idle longest
            assert gets_predictions(link, viewer)
        assert link.counters.get("viewers_refused") == 0, link.counters.snapshot()
    finally:
        tricklers.close()
        link.close()


def status_message() -> bytes:
    return pyigtl.StringMessage("ok", device_name="Slicer").pack()


def test_a_viewer_that_sends_whole_messages_slowly_is_kept_and_active():
    """Each message is whole within the timeout (its header split in two, 0.1 s apart): for longer than
    the timeout and the idle limit together, the viewer keeps its place and is never idle long enough to
    be evicted by a newcomer, who is refused instead."""
    link = IgtlServerLink(
        0, max_viewers=1, message_timeout_s=MESSAGE_TIMEOUT_S, evict_idle_s=SLOW_VIEWER_EVICT_S
    )
    viewer = socket.create_connection(("127.0.0.1", link.port), timeout=WAIT_S)
    try:
        wait_until(lambda: link.client_count == 1, str(link.counters.snapshot()))
        message = status_message()
        deadline = time.monotonic() + 2 * max(MESSAGE_TIMEOUT_S, SLOW_VIEWER_EVICT_S)
        while time.monotonic() < deadline:
            viewer.sendall(message[:20])
            time.sleep(0.1)
            viewer.sendall(message[20:])
            time.sleep(0.1)
        with socket.create_connection(("127.0.0.1", link.port), timeout=WAIT_S) as newcomer:
            assert closed_by_server(newcomer), "an active viewer must not give its place away"
        assert not closed_by_server(viewer, within=0.2)
        counts = link.counters.snapshot()
        assert link.client_count == 1 and counts.get("viewers_timed_out", 0) == 0, counts
        assert counts.get("viewers_evicted", 0) == 0 and counts["viewers_refused"] == 1, counts
    finally:
        viewer.close()
        link.close()


def test_a_body_trickled_past_the_timeout_drops_the_viewer():
    link = IgtlServerLink(0, message_timeout_s=MESSAGE_TIMEOUT_S)
    message = image_message(rows=4, cols=4).pack()
    viewer = socket.create_connection(("127.0.0.1", link.port), timeout=WAIT_S)
    try:
        viewer.sendall(message[: HEADER_SIZE + 1])  # a whole header, then its body byte by byte
        for i in range(HEADER_SIZE + 1, len(message)):
            if closed_by_server(viewer, within=TRICKLE_S):
                break
            viewer.sendall(message[i : i + 1])
        wait_until(lambda: link.counters.get("viewers_timed_out") == 1, str(link.counters.snapshot()))
        assert link.client_count == 0
    finally:
        viewer.close()
        link.close()


def test_viewers_that_send_no_openigtlink_are_dropped_at_once_with_one_warning(caplog):
    link = IgtlServerLink(0, message_timeout_s=VIEWER_MESSAGE_TIMEOUT_S)
    try:
        for _ in range(BAD_VIEWERS):
            with socket.create_connection(("127.0.0.1", link.port), timeout=WAIT_S) as peer:
                peer.sendall(b"GET / HTTP/1.1\r\nHost: cart\r\n" + b"x" * HEADER_SIZE)
                assert closed_by_server(peer)  # at once: far within the default message timeout
        wait_until(
            lambda: link.counters.get("viewers_bad_message") == BAD_VIEWERS, str(link.counters.snapshot())
        )
        warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warned) == 1 and "is not OpenIGTLink's" in warned[0], warned
    finally:
        link.close()
