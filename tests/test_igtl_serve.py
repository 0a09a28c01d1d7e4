"""`--igtl-serve` on the network, with real sockets on loopback: it binds loopback by default,
refuses peers outside its allow-list and beyond its viewer cap, never counts a connection that has
already closed (port checks leave no ghost viewers), lets a new viewer take the place of one that
has sat idle, and a viewer that stops reading never slows another (each has its own bounded outbox)."""

from __future__ import annotations

import logging
import re
import socket
import struct
import threading
import time

import pytest
from cli import sonomap
from loopback import closed_by_server
from test_igtl_network import FPS, image_message
from test_igtl_standin import pyigtl

from edge_runtime.errors import ConfigError

igtl = pytest.importorskip("edge_runtime.igtl")
from edge_runtime.igtl.net import SEND_TIMEOUT_S  # noqa: E402 (after the importorskip)
from edge_runtime.igtl.server import IgtlServerLink  # noqa: E402
from edge_runtime.igtl.wire import read_message  # noqa: E402

pytestmark = pytest.mark.timeout(90)
SENDS = 90  # 3 s at 30 fps, 256 kB each: far more than the stalled socket buffers
# All SENDS calls together, not each one: queueing them takes milliseconds even on a loaded machine,
# while a single send() that waited for the stalled viewer would wait out most of its SEND_TIMEOUT_S
# (from when its outbox filled, a few frames after its socket did). Half of it separates the two.
ALL_SENDS_LIMIT_S = SEND_TIMEOUT_S / 2


class Packed:
    """An already packed message (what IgtlServerLink.send joins)."""

    def __init__(self, payload: bytes):
        self.payload = payload

    def pack(self) -> bytes:
        return self.payload


def test_serve_binds_loopback_unless_told_otherwise():
    observer = igtl.make_igtl_observer(serve="0")
    try:
        assert observer.link.host == "127.0.0.1"
    finally:
        observer.close()
    with pytest.raises(ConfigError, match="--igtl-allow"):
        igtl.make_igtl_observer(serve="0.0.0.0:0")
    with pytest.raises(ConfigError, match="not an address"):
        igtl.make_igtl_observer(serve="0.0.0.0:0", allow=["10.0.0.0/33"])


def test_allow_list_and_viewer_cap():
    observer = igtl.make_igtl_observer(serve="0.0.0.0:0", allow=["10.0.0.0/8"])
    try:
        with socket.create_connection(("127.0.0.1", observer.link.port), timeout=5) as s:
            assert closed_by_server(s)  # 127.0.0.1 is not in 10.0.0.0/8
        assert observer.link.counters.get("viewers_refused") == 1 and observer.link.client_count == 0
    finally:
        observer.close()
    observer = igtl.make_igtl_observer(serve="0.0.0.0:0", allow=["127.0.0.0/8"])
    link = observer.link
    held = []
    try:
        for _ in range(link.max_viewers):
            held.append(socket.create_connection(("127.0.0.1", link.port), timeout=5))
        deadline = time.monotonic() + 5
        while link.client_count < link.max_viewers:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", link.port), timeout=5) as extra:
            assert closed_by_server(extra)
        assert not closed_by_server(held[0], within=0.3)
    finally:
        for s in held:
            s.close()
        observer.close()


EVICT_IDLE_S = 0.3  # the idle limit the eviction test gives (the default is server.VIEWER_EVICT_IDLE_S)
IDLE_MARGIN_S = 0.2


def wait_until(condition, what: str, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_connections_that_sit_idle_give_their_place_to_a_new_viewer(caplog):
    link = IgtlServerLink(0, evict_idle_s=EVICT_IDLE_S)
    held = []
    try:
        for _ in range(link.max_viewers):  # connect, then neither send nor read: they only hold a place
            held.append(socket.create_connection(("127.0.0.1", link.port), timeout=5))
            time.sleep(0.02)  # in order: the first one has been idle longest
        wait_until(
            lambda: link.client_count == link.max_viewers, "the idle connections were not all admitted"
        )
        time.sleep(EVICT_IDLE_S + IDLE_MARGIN_S)
        with socket.create_connection(("127.0.0.1", link.port), timeout=5) as viewer:
            wait_until(lambda: link.counters.get("viewers_evicted") == 1, str(link.counters.snapshot()))
            assert closed_by_server(held[0])  # the one idle longest
            assert not any(closed_by_server(s, within=0.1) for s in held[1:])
            assert link.client_count == link.max_viewers
            sent = image_message()
            assert link.send([sent])
            viewer.settimeout(5)
            _, got = read_message(pyigtl, viewer, threading.Event())
        assert got.timestamp == pytest.approx(sent.timestamp, abs=1e-5)
        assert link.counters.get("viewers_refused") == 0
        assert any("its place went to a new viewer" in r.getMessage() for r in caplog.records)
    finally:
        for s in held:
            s.close()
        link.close()


PORT_CHECKS = 50  # connect-and-close probes (`nc -z`, a Slicer connector toggled on and off)


def test_connections_that_close_at_once_never_hold_a_viewer_slot():
    observer = igtl.make_igtl_observer(serve="127.0.0.1:0")
    link = observer.link
    try:
        for _ in range(PORT_CHECKS):
            socket.create_connection(("127.0.0.1", link.port), timeout=5).close()
            time.sleep(0.02)
        deadline = time.monotonic() + 5
        while link.counters.get("viewers_dropped") < link.counters.get("viewers_connected"):
            assert time.monotonic() < deadline, link.counters.snapshot()
            time.sleep(0.02)
        assert link.client_count == 0 and link.counters.get("viewers_refused") == 0, link.counters.snapshot()
        with socket.create_connection(("127.0.0.1", link.port), timeout=5) as viewer:
            deadline = time.monotonic() + 5
            while link.client_count < 1:
                assert time.monotonic() < deadline, link.counters.snapshot()
                time.sleep(0.02)
            sent = image_message()
            assert link.send([sent])
            viewer.settimeout(5)
            _, got = read_message(pyigtl, viewer, threading.Event())
        assert got.timestamp == pytest.approx(sent.timestamp, abs=1e-5)
    finally:
        observer.close()


def test_a_viewer_that_stops_reading_never_delays_another():
    observer = igtl.make_igtl_observer(serve="127.0.0.1:0")
    link = observer.link
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", link.port))  # connects and never reads
    reader = socket.create_connection(("127.0.0.1", link.port), timeout=10)
    received: list[float] = []

    def read():
        stop = threading.Event()
        try:
            while True:
                _, msg = read_message(pyigtl, reader, stop)
                received.append(msg.timestamp)
        except OSError:
            pass

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 5
        while link.client_count < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        durations, sent = [], []
        for _ in range(SENDS):
            msg = image_message(rows=256, cols=1024)
            packed = Packed(msg.pack())  # packing (CRC) outside the timing: send() itself is measured
            start = time.monotonic()
            link.send([packed])
            durations.append(time.monotonic() - start)
            sent.append(msg.timestamp)
            time.sleep(1 / FPS)
        deadline = time.monotonic() + 5
        while (not received or abs(received[-1] - sent[-1]) > 1e-4) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert received and abs(received[-1] - sent[-1]) < 1e-4, "the reading viewer did not get the newest"
        assert len(received) >= 0.5 * len(sent)  # it may lose a few under load (outbox of 2), never all
        # The stalled viewer's outbox overflowed: send() dropped its oldest payloads instead of waiting for room.
        assert link.counters.get("viewer_payloads_dropped") >= 1, link.counters.snapshot()
        assert sum(durations) < ALL_SENDS_LIMIT_S, f"send() waited: {sum(durations):.3f} s for {SENDS} calls"
        deadline = time.monotonic() + 10
        while link.counters.get("viewers_dropped") < 1:  # the stalled one, after its send deadline
            assert time.monotonic() < deadline, link.counters.snapshot()
            time.sleep(0.1)
        assert link.client_count == 1
    finally:
        stalled.close()
        reader.close()
        observer.close()


def test_cli_refuses_to_serve_beyond_loopback_without_an_allow_list():
    live = ("live", "--source", "synthetic", "--headless", "--duration", "1")
    res = sonomap(*live, "--igtl-serve", "0.0.0.0:0", check=False)
    assert res.returncode == 2 and re.search(r"error: --igtl-serve 0\.0\.0\.0:0: .*--igtl-allow", res.stderr)
    res = sonomap(*live, "--igtl-allow", "10.0.0.0/8", check=False)
    assert res.returncode == 2 and "give --igtl-serve too" in res.stderr


PAYLOAD_BYTES = 1 << 20  # more than a socket buffer takes: the send meets the peer's close or reset
RESET_LINGER = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset, as a crashed peer's does


def test_viewers_that_close_or_reset_are_counted_not_warned_per_connection(caplog):
    """A port check or a Slicer connector switched off mid-send is the viewer's own doing: counted as
    dropped, never one warning per connection, which a peer could repeat to flood the journal."""
    link = IgtlServerLink(0)
    try:
        assert not link.send([Packed(bytes(PAYLOAD_BYTES))])  # no viewer yet: kept as the newest payload
        for n in range(PORT_CHECKS):
            probe = socket.create_connection(("127.0.0.1", link.port), timeout=5)
            if n % 2:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_LINGER)
            probe.close()
        wait_until(
            lambda: (
                link.counters.get("viewers_connected") == PORT_CHECKS
                and link.counters.get("viewers_dropped") == PORT_CHECKS
            ),
            str(link.counters.snapshot()),
            within=30.0,
        )
        warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert warned == [], warned
    finally:
        link.close()
