"""The OpenIGTLink client's life cycle, with real sockets on loopback: a source reopened on a link
kept open by ``--igtl-out`` yields only images that arrived after it opened; non-finite or
non-positive igtl:// numbers are one-line errors naming the key; a link's own outages are not
counted as a lost video source on /metrics (the source wrapper counts that, once), and a
connection we shut down after a failed send is logged as ours, not the peer's."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from cli import sonomap
from test_igtl_network import ScriptedServer, image_message
from test_igtl_standin import DEVICE

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.live_stats import EVENTS

igtl = pytest.importorskip("edge_runtime.igtl")
from edge_runtime.igtl.net import SEND_TIMEOUT_S  # noqa: E402 (after the importorskip)

pytestmark = pytest.mark.timeout(60)
WAIT_S = 5.0
SOURCE_EVENTS = ("source_lost", "source_reconnect")
# Far more than loopback socket buffers hold, so a peer that never reads stalls the send.
STALLING_PAYLOAD = 64 * 1024 * 1024


class Packed:
    """An already packed payload (what a link's send() joins)."""

    def __init__(self, payload: bytes):
        self.payload = payload

    def pack(self) -> bytes:
        return self.payload


def spec(port: int, **query) -> str:
    params = {"device": DEVICE, "timeout": WAIT_S, "backoff_max": 0.2, **query}
    return f"igtl://127.0.0.1:{port}?" + "&".join(f"{k}={v}" for k, v in params.items())


def wait_until(predicate, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def source_events() -> dict[str, int]:
    events = EVENTS.snapshot()
    return {k: events.get(k, 0) for k in SOURCE_EVENTS}


def test_a_reopened_source_yields_only_frames_received_after_it_opened():
    send_second = threading.Event()

    def script(n, sock, stop):
        sock.sendall(image_message(value=10).pack())
        send_second.wait(WAIT_S * 3)
        sock.sendall(image_message(value=20).pack())

    server = ScriptedServer(script)
    first = igtl.open_igtl_source(spec(server.port, idle_timeout=30))
    observer = igtl.make_igtl_observer(out=f"127.0.0.1:{server.port}")  # keeps the link open
    try:
        with first:
            assert int(next(iter(first)).image[0, 0, 0]) == 10
        with igtl.open_igtl_source(spec(server.port, idle_timeout=30, timeout=0.5)) as reopened:
            with pytest.raises(InputError, match="no IMAGE"):
                next(iter(reopened))  # the old image is not a new frame
        with igtl.open_igtl_source(spec(server.port, idle_timeout=30)) as again:
            send_second.set()
            frame = next(iter(again))
    finally:
        observer.close()
        server.close()
    assert int(frame.image[0, 0, 0]) == 20
    assert server.connections == 1, "the shared connection was kept throughout"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("key", ["timeout", "idle_timeout", "backoff_max", "max_body_mb"])
def test_non_finite_numbers_are_config_errors_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"{key}='{value}' must be a finite number > 0"):
        igtl.parse_igtl_spec(f"igtl://127.0.0.1:18944?{key}={value}")


def test_live_reports_a_bad_igtl_number_in_one_line():
    res = sonomap("live", "--source", "igtl://127.0.0.1:1?max_body_mb=nan", "--headless", check=False)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert len(res.stderr.strip().splitlines()) == 1 and "max_body_mb='nan'" in res.stderr
    with pytest.raises(ConfigError, match="crc='sometimes' must be one of auto, on, off"):
        igtl.parse_igtl_spec("igtl://127.0.0.1:18944?crc=sometimes")


def drops_the_first_connection(n, sock, stop):
    if n == 1:
        sock.sendall(image_message(value=10).pack())
        time.sleep(0.1)
        sock.close()
        return
    while not stop.is_set():
        sock.sendall(image_message(value=20).pack())
        stop.wait(0.05)


def test_a_link_outage_is_not_counted_as_a_lost_video_source():
    server = ScriptedServer(drops_the_first_connection)
    before = source_events()
    observer = igtl.make_igtl_observer(out=f"127.0.0.1:{server.port}")  # send-only: carries no source
    try:
        wait_until(lambda: observer.link.counters.get("connects") >= 2, "the reconnect")
        send_only = observer.link.counters.snapshot()
    finally:
        observer.close()
        server.close()
    server = ScriptedServer(drops_the_first_connection)
    try:
        with igtl.open_igtl_source(spec(server.port)) as source:
            frames = iter(source)
            while int(next(frames).image[0, 0, 0]) != 20:  # a frame from the second connection
                pass
            receiving = source.counters
    finally:
        server.close()
    assert send_only["disconnects"] >= 1 and receiving["disconnects"] >= 1
    assert source_events() == before, "only the video source wrapper counts source_lost, once"


def test_our_own_shutdown_after_a_failed_send_is_logged_as_ours(caplog):
    caplog.set_level(logging.WARNING, logger="sonomap.igtl")
    server = ScriptedServer(lambda n, sock, stop: None)  # accepts, never reads
    observer = igtl.make_igtl_observer(out=f"127.0.0.1:{server.port}")
    link = observer.link
    try:
        assert link.connected.wait(WAIT_S)
        start = time.monotonic()
        assert not link.send([Packed(bytes(STALLING_PAYLOAD))])
        assert time.monotonic() - start >= SEND_TIMEOUT_S * 0.9  # it waited out the send deadline
        wait_until(lambda: link.counters.get("disconnects") >= 1, "the disconnect")
    finally:
        observer.close()
        server.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("closed by us after a failed send" in m for m in messages), messages
    assert not any("closed by peer" in m for m in messages), messages
    assert link.counters.get("send_errors") == 1
