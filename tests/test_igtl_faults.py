"""Messages the OpenIGTLink client cannot use, from real servers on loopback: each costs that message
only (skipped, counted, one throttled warning line, no traceback), never the connection or the next
good frame (an image over the size limit included); a connection that delivers no frame never
resets the reconnect backoff; a body whose header CRC64 does not match is skipped when checked
(``crc``: auto for small bodies, on, off)."""

from __future__ import annotations

import itertools
import logging
import time

import numpy as np
import pytest
from test_igtl_network import ScriptedServer, image_message
from test_igtl_standin import DEVICE, pyigtl

igtl = pytest.importorskip("edge_runtime.igtl")
from edge_runtime.igtl.image_message import MAX_IMAGE_SIDE  # noqa: E402
from edge_runtime.igtl.link import IgtlClientLink  # noqa: E402 (after the importorskip)
from edge_runtime.igtl.net import WARN_EVERY  # noqa: E402
from edge_runtime.igtl.wire import CRC_AUTO_MAX_BYTES, HEADER_CRC_OFFSET, HEADER_SIZE  # noqa: E402

pytestmark = pytest.mark.timeout(60)
BAD_REPEATS = 30  # more than one warning's worth would need WARN_EVERY; 30 shows the throttle
WAIT_S = 5.0
# The scripted servers go quiet once their script is sent. On a loaded machine the test may read its
# first frame more than the link's 3 s idle timeout after it came; the link would then reconnect and
# the server send its script again, doubling every count. No test here is about the idle timeout.
QUIET_SERVER_IDLE_S = 30.0
ECMA182_CHECK = 0x6C40DF5F0B497347  # CRC-64/ECMA-182 (init 0, no reflection) of b"123456789"
BACKOFF_WATCH_S = 2.5
BACKOFF_MAX_S = 2.0
# 0.1 s doubling to 2 s: 0.1 + 0.2 + 0.4 + 0.8 + 1.6 = 3.1 s, so at most ~5 connections in 2.5 s
# (a loaded machine only makes fewer); a backoff reset after every connection gives ~20.
MAX_BACKED_OFF_CONNECTIONS = 8
MIN_RESET_CONNECTIONS = 10  # a frame per connection keeps the backoff at 0.1 s: ~20 in 2.5 s


def empty_image() -> pyigtl.ImageMessage:
    """An IMAGE of size i=5, j=0, k=1: pyigtl packs and decodes it; it has no pixel."""
    return pyigtl.ImageMessage(np.zeros((1, 0, 5), np.uint8), device_name=DEVICE)


def with_crc(packed: bytes, crc: int) -> bytes:
    """``packed`` with the header's CRC64 field replaced."""
    return packed[:HEADER_CRC_OFFSET] + crc.to_bytes(8, "big") + packed[HEADER_SIZE:]


def one_shot(payload: bytes):
    """A server script: send ``payload`` once on each connection, then stay quiet."""
    return lambda n, sock, stop: sock.sendall(payload)


# Loopback addresses for servers read through the shared link (one per (host, port) in a process): an
# address of its own gives each such test a new link, so its counts are its own; all of 127/8 is loopback
_LOOPBACK_HOSTS = (f"127.0.0.{n}" for n in itertools.count(2))


def own_server(script) -> ScriptedServer:
    """A scripted server on a loopback address no other test of this process uses."""
    return ScriptedServer(script, host=next(_LOOPBACK_HOSTS))


def spec(host: str, port: int, **query) -> str:
    params = {
        "device": DEVICE,
        "timeout": WAIT_S,
        "backoff_max": 0.2,
        "idle_timeout": QUIET_SERVER_IDLE_S,
        **query,
    }
    return f"igtl://{host}:{port}?" + "&".join(f"{k}={v}" for k, v in params.items())


def next_frame(server: ScriptedServer, **query):
    """The first frame from ``server`` (made by :func:`own_server`, so the shared link is new) and the
    link's counts once it was read."""
    with igtl.open_igtl_source(spec(server.host, server.port, **query)) as source:
        frame = next(iter(source))
        return frame, source.counters


def warnings_about(caplog, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and text in r.getMessage()]


def test_an_empty_image_is_skipped_and_the_next_frame_comes_on_the_same_connection(caplog):
    good = image_message(value=77)
    server = own_server(one_shot(empty_image().pack() * BAD_REPEATS + good.pack()))
    try:
        frame, counters = next_frame(server)
    finally:
        server.close()
    assert frame.image.shape == (96, 128, 3) and int(frame.image[0, 0, 0]) == 77
    assert counters["skipped_malformed"] == BAD_REPEATS
    assert counters["connects"] == 1 and counters.get("disconnects", 0) == 0, counters
    assert server.connections == 1
    assert len(warnings_about(caplog, "empty image of size (5, 0, 1)")) == 1  # throttled: one line
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a bad message"


def test_an_image_over_the_size_limit_is_skipped_and_the_next_frame_comes(caplog):
    # One pixel tall, so the message stays small: the limit is per side, not per pixel count.
    too_wide = image_message(rows=1, cols=MAX_IMAGE_SIDE + 1, value=200)
    server = own_server(one_shot(too_wide.pack() * BAD_REPEATS + image_message(value=33).pack()))
    try:
        frame, counters = next_frame(server)
    finally:
        server.close()
    assert int(frame.image[0, 0, 0]) == 33
    assert counters["skipped_too_large"] == BAD_REPEATS and counters["images"] == 1, counters
    assert counters["connects"] == 1 and counters.get("disconnects", 0) == 0, counters
    assert len(warnings_about(caplog, f"over {MAX_IMAGE_SIDE} pixels a side")) == 1  # throttled


class FailingLink(IgtlClientLink):
    """A link whose handling of device ``Boom`` fails the way an unforeseen bug would."""

    def _dispatch(self, message_type, msg):
        if msg is not None and msg.device_name == "Boom":
            raise RuntimeError("handler bug")
        super()._dispatch(message_type, msg)


def test_an_unexpected_error_costs_one_message_not_the_connection(caplog):
    boom = pyigtl.ImageMessage(np.zeros((1, 4, 4), np.uint8), device_name="Boom").pack()
    server = ScriptedServer(one_shot(boom * BAD_REPEATS + image_message(value=55).pack()))
    link = FailingLink("127.0.0.1", server.port, device=DEVICE)
    try:
        got = link.wait_image(0, WAIT_S)
        counters = link.counters.snapshot()
    finally:
        link.close()
        server.close()
    assert got is not None and int(got[1].bgr[0, 0, 0]) == 55
    assert counters["reader_errors"] == BAD_REPEATS
    assert counters["connects"] == 1 and counters.get("disconnects", 0) == 0, counters
    lines = warnings_about(caplog, "unexpected error")
    assert len(lines) == 1 and "RuntimeError: handler bug" in lines[0].getMessage()
    assert BAD_REPEATS < WARN_EVERY and not [r for r in caplog.records if r.exc_info]


def connections_within(script, seconds: float, **link_options) -> int:
    server = ScriptedServer(script)
    link = IgtlClientLink(
        "127.0.0.1", server.port, device=DEVICE, backoff_max_s=BACKOFF_MAX_S, **link_options
    )
    try:
        time.sleep(seconds)
        return server.connections
    finally:
        link.close()
        server.close()


def test_only_a_lasting_connection_that_delivered_frames_resets_the_reconnect_backoff():
    """A peer that sends a status and closes, and one that sends one image and closes (a flapping
    PLUS), are both backed off; a connection that delivered frames for ``stable_s`` (0 here) resets it."""
    status = pyigtl.StringMessage("busy", device_name="Status").pack()

    def message_then_close(payload):
        def script(n, sock, stop):
            sock.sendall(payload)
            sock.close()  # the client still reads the payload first: TCP delivers it before the FIN

        return script

    image = image_message().pack()
    without_frames = connections_within(message_then_close(status), BACKOFF_WATCH_S)
    flapping = connections_within(message_then_close(image), BACKOFF_WATCH_S)
    lasting = connections_within(message_then_close(image), BACKOFF_WATCH_S, stable_s=0.0)
    assert without_frames <= MAX_BACKED_OFF_CONNECTIONS, f"{without_frames} connections: no backoff"
    assert flapping <= MAX_BACKED_OFF_CONNECTIONS, f"{flapping} connections: a flapping peer not backed off"
    assert lasting >= MIN_RESET_CONNECTIONS, f"{lasting} connections: backoff never reset"


def test_a_body_that_fails_its_crc_is_skipped_and_counted(caplog):
    bad = with_crc(image_message(value=200).pack(), 0xDEADBEEF)
    server = own_server(one_shot(bad + image_message(value=33).pack()))
    try:
        frame, counters = next_frame(server)
    finally:
        server.close()
    assert int(frame.image[0, 0, 0]) == 33
    assert counters["skipped_crc"] == 1 and counters["images"] == 1, "the corrupt frame is no image"
    assert counters["connects"] == 1 and counters.get("disconnects", 0) == 0, counters
    assert len(warnings_about(caplog, "header CRC64 0x00000000deadbeef does not match")) == 1
    assert pyigtl.messages.CRC64(b"123456789") == ECMA182_CHECK  # the OpenIGTLink polynomial


@pytest.mark.parametrize("mode, checked", [("on", True), ("auto", False), ("off", False)])
def test_large_bodies_are_crc_checked_only_when_asked(mode, checked):
    """``auto`` (the default) checks small bodies only, where the CRC is cheap; ``on`` every body."""
    big = image_message(rows=840, cols=1200).pack()
    assert len(big) - HEADER_SIZE > CRC_AUTO_MAX_BYTES
    server = ScriptedServer(one_shot(with_crc(big, 0xDEADBEEF) + image_message().pack()))
    link = IgtlClientLink("127.0.0.1", server.port, device=DEVICE, crc=mode)
    try:
        deadline = time.monotonic() + WAIT_S
        while link.counters.get("images") + link.counters.get("skipped_crc") < 2:
            assert time.monotonic() < deadline, link.counters.snapshot()
            time.sleep(0.02)
        counters = link.counters.snapshot()
    finally:
        link.close()
        server.close()
    assert counters.get("skipped_crc", 0) == (1 if checked else 0)
    assert counters["images"] == (1 if checked else 2)


def test_an_image_that_arrives_while_the_source_is_opening_is_its_first_frame(monkeypatch):
    """A server that sends at once can beat the source to its first look at the link (a loaded
    machine): the link's constructor is made to return only after its reader has received the image.
    That image is still new to the source; only a shared link's image from before it opened is old."""
    original_init = IgtlClientLink.__init__

    def init_then_receive(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        deadline = time.monotonic() + WAIT_S
        while self.image_seq() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.image_seq() == 1, "the scripted server's image never came"

    monkeypatch.setattr(IgtlClientLink, "__init__", init_then_receive)
    server = own_server(one_shot(image_message(value=91).pack()))
    try:
        frame, counters = next_frame(server)
    finally:
        server.close()
    assert int(frame.image[0, 0, 0]) == 91 and counters["images"] == 1
