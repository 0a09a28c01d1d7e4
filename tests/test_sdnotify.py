"""sd_notify against a real AF_UNIX datagram socket (path and abstract), as systemd does."""

from __future__ import annotations

import os
import socket
import time
import uuid

import numpy as np
import pytest

from edge_runtime.errors import ConfigError
from edge_runtime.frames import Frame, Prediction
from edge_runtime.service.sdnotify import Notifier, parse_watchdog_usec
from edge_runtime.service.watchdog import ServiceObserver


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET: a bound datagram socket."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(2.0)

    def messages(self, timeout: float = 0.2) -> list[dict[str, str]]:
        out = []
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(4096).decode()
                out.append(dict(line.split("=", 1) for line in data.split("\n")))
        except TimeoutError:
            return out

    def close(self):
        self.sock.close()


@pytest.fixture()
def path_socket(tmp_path):
    addr = str(tmp_path / "notify.sock")
    sd = FakeSystemd(addr)
    yield addr, sd
    sd.close()


def frame(i: int) -> Frame:
    return Frame(i, np.zeros((8, 8, 3), np.uint8), time.monotonic())


def pred() -> Prediction:
    return Prediction(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.float32), latency_ms=7.5)


def test_noop_without_notify_socket():
    n = Notifier(env={})
    assert not n.enabled
    assert n.ready("x") is False and n.watchdog() is False and n.stopping() is False


def test_path_socket_ready_status_watchdog_extend_stopping(path_socket):
    addr, sd = path_socket
    n = Notifier(env={"NOTIFY_SOCKET": addr})
    assert n.ready("first frame\nrendered") and n.status("12.0 fps") and n.watchdog()
    assert n.extend_timeout(90) and n.stopping("bye")
    msgs = sd.messages()
    assert msgs[0] == {"READY": "1", "STATUS": "first frame rendered"}  # newline cannot split a field
    assert msgs[1] == {"STATUS": "12.0 fps"}
    assert msgs[2] == {"WATCHDOG": "1"}
    assert msgs[3] == {"EXTEND_TIMEOUT_USEC": "90000000"}
    assert msgs[4] == {"STOPPING": "1", "STATUS": "bye"}


def test_abstract_socket():
    name = f"sonomap-test-{uuid.uuid4().hex}"
    sd = FakeSystemd(b"\0" + name.encode())
    try:
        assert Notifier(env={"NOTIFY_SOCKET": "@" + name}).ready()
        assert sd.messages() == [{"READY": "1"}]
    finally:
        sd.close()


def test_missing_socket_is_logged_not_raised(tmp_path, caplog):
    n = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert n.ready() is False and n.watchdog() is False
    assert sum("sd_notify" in r.message for r in caplog.records) == 1


def test_a_second_run_of_failures_is_logged_again_after_the_socket_worked(tmp_path, caplog):
    """The socket gone, back (systemd restarted its end), gone again: each run of failures is said once,
    so lost watchdog pings days after a start-up hiccup still reach the log."""
    addr = str(tmp_path / "notify.sock")
    n = Notifier(env={"NOTIFY_SOCKET": addr})
    assert n.watchdog() is False and n.watchdog() is False  # nothing bound there yet
    sd = FakeSystemd(addr)
    try:
        assert n.watchdog() and n.watchdog()
    finally:
        sd.close()
    (tmp_path / "notify.sock").unlink()
    assert n.watchdog() is False and n.watchdog() is False
    lines = [r.message for r in caplog.records if "sd_notify" in r.message]
    assert ["failed:" in m for m in lines] == [True, False, True]  # failed, works again, failed
    assert lines[1].endswith("works again")


@pytest.mark.parametrize(
    "env,expected",
    [
        ({"WATCHDOG_USEC": "10000000"}, 10.0),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({}, None),
    ],
)
def test_watchdog_usec(env, expected):
    assert parse_watchdog_usec(env) == expected


@pytest.mark.parametrize("bad", ["abc", "-5", "0", "1.5"])
def test_bad_watchdog_usec_names_variable(bad):
    with pytest.raises(ConfigError, match="WATCHDOG_USEC"):
        parse_watchdog_usec({"WATCHDOG_USEC": bad})


def test_relative_notify_socket_rejected():
    with pytest.raises(ConfigError, match="NOTIFY_SOCKET"):
        Notifier(env={"NOTIFY_SOCKET": "relative/path"})


def test_observer_ready_once_then_pings_only_while_frames_flow(path_socket):
    addr, sd = path_socket
    now = [100.0]
    n = Notifier(env={"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "2000000"})  # 2 s -> ping every 1 s
    obs = ServiceObserver(n, clock=lambda: now[0])
    assert sd.messages() == []  # nothing before the first rendered frame
    for i in range(30):  # 30 frames over 3 s at 10 fps
        obs.on_frame(frame(i), pred(), np.zeros((8, 8, 3), np.uint8), {"backend": "onnxruntime"})
        now[0] += 0.1
    msgs = sd.messages()
    ready = [m for m in msgs if m.get("READY") == "1"]
    pings = [m for m in msgs if m.get("WATCHDOG") == "1"]
    status = [m["STATUS"] for m in msgs if "STATUS" in m]
    assert len(ready) == 1 and msgs[0].get("READY") == "1"
    assert len(pings) == 3  # t = 0, 1, 2 s
    assert any("fps" in s and "latency" in s and "backend 7.5 ms" in s for s in status)
    now[0] += 10.0  # frames stop: time passes, no pings are sent
    assert [m for m in sd.messages() if "WATCHDOG" in m] == []
    obs.on_frame(frame(31), pred(), np.zeros((8, 8, 3), np.uint8), {})
    assert {"WATCHDOG": "1"} in sd.messages()


def test_observer_long_build_extends_timeout(path_socket):
    addr, sd = path_socket
    obs = ServiceObserver(Notifier(env={"NOTIFY_SOCKET": addr}))
    obs.on_long_build(300)
    msgs = sd.messages()
    assert msgs[0] == {"EXTEND_TIMEOUT_USEC": str(450 * 1_000_000)}
    assert "building" in msgs[1]["STATUS"]
    obs.close()
    assert sd.messages()[0]["STOPPING"] == "1"


def test_signal_handlers_reload_and_stop_a_pipeline(path_socket):
    """Real signals to this process: SIGHUP -> request_reload(), SIGTERM -> stop(), twice -> give up."""
    import signal

    from edge_runtime.service.signals import install_signal_handlers

    class Pipe:
        reloads = stops = 0

        def request_reload(self):
            self.reloads += 1

        def stop(self):
            self.stops += 1

    addr, sd = path_socket
    pipe = Pipe()
    handlers = install_signal_handlers(pipe, Notifier(env={"NOTIFY_SOCKET": addr}))
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert (pipe.reloads, pipe.stops) == (1, 1) and (handlers.reloads, handlers.stops) == (1, 1)
        msgs = sd.messages()
        assert "reloading" in msgs[0]["STATUS"] and msgs[1]["STOPPING"] == "1"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
    finally:
        handlers.restore()
    assert signal.getsignal(signal.SIGTERM) != handlers._term  # previous handler restored


def test_pipeline_hands_engine_builds_to_the_service_observer(path_socket):
    """The engine builder's hook goes through the pipeline to its observers: the service's
    ServiceObserver sends EXTEND_TIMEOUT_USEC (short estimates still get MIN_EXTEND_S)."""
    from runtime_model import dark_onnx

    from edge_runtime import config as cfg
    from edge_runtime.pipeline.graph import Pipeline

    addr, sd = path_socket
    pipe = Pipeline(
        cfg.build_config({"source": {"input": "synthetic"}, "inference": {"model": str(dark_onnx())}}),
        observers=[ServiceObserver(Notifier(env={"NOTIFY_SOCKET": addr}))],
    )
    try:
        pipe.guard.backend.options["on_long_build"](40)
        assert sd.messages()[0] == {"EXTEND_TIMEOUT_USEC": "60000000"}
    finally:
        pipe.close()
