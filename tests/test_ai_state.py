"""The AI state: how it is derived (AiMonitor), how it looks (golden frames of the badge and banner
in each state, BGR and YUV paths), and what the watchdog does with it (a real notify socket)."""

from __future__ import annotations

import socket
import time

import cv2
import numpy as np
import pytest
from golden_frames import assert_matches_golden
from runtime_model import dark_onnx

from edge_runtime.aistate import AiMonitor, AiStatus, state_banner
from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_runtime.config import build_config
from edge_runtime.config_schema import OverlayConfig
from edge_runtime.frames import Frame, Observer
from edge_runtime.manifest import load_manifest
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.render.hudrow import AI_BADGE_BGR
from edge_runtime.render.overlay import Overlay
from edge_runtime.roi import Roi
from edge_runtime.service.sdnotify import Notifier
from edge_runtime.service.watchdog import ServiceObserver

ROI = Roi(60, 50, 400, 280)
SCREEN = (360, 520)
STATUSES = {
    "on": AiStatus("ON", "40 ms"),
    "loading": AiStatus("LOADING", "building engine"),
    "stalled": AiStatus("STALLED", "3.2 s"),
    "error": AiStatus("ERROR"),
    "off": AiStatus("OFF"),
}


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_monitor_states_in_order_of_a_run():
    clock = Clock()
    ai = AiMonitor(deadline_ms=500, stall_restart_s=5, clock=clock)
    with ai.loading("building engine"):
        ai.request_sent()
        clock.t += 60  # an engine build is not a stall
        assert ai.status().state == "LOADING" and ai.status().detail == "building engine"
    assert ai.status().state == "LOADING" and ai.pending_s() == 0
    clock.t += 0.1
    ai.answered(True)
    assert ai.status(mask_age_ms=35).label == "AI ON 35 ms"
    error = ai.status(fault="AI ERROR: inference fault")
    assert error.state == "ERROR" and not error.healthy
    ai.request_sent()
    clock.t += 0.4
    assert ai.status().state == "ON"
    clock.t += 0.2
    stalled = ai.status()
    assert stalled.state == "STALLED" and stalled.detail == "0.6 s" and not stalled.healthy
    assert ai.status().stalls == 1  # one episode counts once
    assert stalled.watchdog_ok and not ai.must_restart()
    clock.t += 5
    assert ai.must_restart() and not ai.status().watchdog_ok
    ai.answered(True)
    assert ai.status().state == "ON" and ai.stalls == 1
    ai.enabled = False
    assert ai.status().state == "OFF" and ai.status().healthy


def test_state_banners_say_the_video_is_raw():
    assert state_banner(STATUSES["on"]) is None
    for name in ("loading", "stalled", "off"):
        level, text = state_banner(STATUSES[name])
        assert text.startswith(f"AI {STATUSES[name].state}") and "raw ultrasound only" in text


@pytest.fixture(scope="module")
def screen(busi_sample):
    image = cv2.imread(str(busi_sample / "images" / "malignant_002.png"))
    canvas = np.full((*SCREEN, 3), 12, np.uint8)
    canvas[ROI.y : ROI.y + ROI.h, ROI.x : ROI.x + ROI.w] = cv2.resize(image, (ROI.w, ROI.h))
    return canvas


def render(screen, ai: AiStatus, hud: bool = True) -> np.ndarray:
    overlay = Overlay.from_config(load_manifest(dark_onnx()), OverlayConfig(hud=hud))
    banner = state_banner(ai) or (
        ("error", "AI ERROR: inference fault - raw ultrasound only") if ai.state == "ERROR" else None
    )
    return overlay.render(
        screen, ROI, None, hud={"backend": "onnxruntime cpu"}, banners=[banner] if banner else [], ai=ai
    )


@pytest.mark.parametrize("name", list(STATUSES))
def test_golden_frame_of_each_ai_state(screen, name):
    """The badge (and banner) as the user sees it. Regenerate with SONOMAP_REGEN_GOLDEN=1 after an intended change."""
    rendered = render(screen, STATUSES[name])
    assert_matches_golden(f"ai_state_{name}", rendered)
    # the badge is in the state's colour, above the ROI: nothing of the ultrasound under it
    badge = np.all(rendered[: ROI.y] == AI_BADGE_BGR[STATUSES[name].state], axis=2)
    assert badge.sum() > 500
    others = [
        np.all(rendered == bgr, axis=2).sum() for s, bgr in AI_BADGE_BGR.items() if s != STATUSES[name].state
    ]
    assert max(others) == 0


@pytest.mark.parametrize("name", list(STATUSES))
def test_badge_stays_with_the_hud_off_and_in_the_yuv_path(screen, name):
    ai = STATUSES[name]
    bgr = render(screen, ai, hud=False)
    assert np.all(bgr[: ROI.y] == AI_BADGE_BGR[ai.state], axis=2).sum() > 300
    overlay = Overlay.from_config(load_manifest(dark_onnx()), OverlayConfig(hud=False))
    i420 = overlay.render_i420(cv2.cvtColor(screen, cv2.COLOR_BGR2YUV_I420), ROI, None, ai=ai)
    got = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
    close = np.abs(got[: ROI.y].astype(int) - AI_BADGE_BGR[ai.state]).max(axis=2) <= 12
    assert close.sum() > 300


def test_badge_fits_a_small_dicom_frame(screen):
    small = cv2.resize(screen, (128, 96))
    roi = Roi(0, 0, 128, 96)
    overlay = Overlay.from_config(load_manifest(dark_onnx()), OverlayConfig())
    out = overlay.render(small, roi, None, hud={"fps": 30.0}, ai=STATUSES["stalled"])
    assert np.all(out == AI_BADGE_BGR["STALLED"], axis=2).sum() > 50  # inside the ROI: no room above


def test_watchdog_stops_pinging_once_a_stall_outlasts_the_restart_limit(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.3)
    observer = ServiceObserver(Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000"}))
    frame = Frame(0, np.zeros((8, 8, 3), np.uint8), time.monotonic())

    def pings(ai: AiStatus) -> int:
        observer.on_frame(frame, None, frame.image, {"ai": ai.as_dict()})
        got = []
        try:
            while True:
                got.append(sock.recv(4096).decode())
        except TimeoutError:
            return sum("WATCHDOG=1" in m for m in got)

    try:
        assert pings(AiStatus("ON")) == 1
        time.sleep(0.01)
        assert pings(AiStatus("STALLED", "2.0 s")) == 1  # stalled, but not for long yet
        time.sleep(0.01)
        assert pings(AiStatus("STALLED", "31.0 s", watchdog_ok=False)) == 0
    finally:
        observer.close()
        sock.close()


class SlowToPrepare(OnnxRuntimeBackend):
    """The real ONNX Runtime backend whose one-off preparation blocks for a while, as a TensorRT
    engine build does on the inference thread."""

    prepare_label = "building engine"

    def prepare(self):
        time.sleep(PREPARE_S)


PREPARE_S = 1.5


class States(Observer):
    def __init__(self):
        self.seen: list[tuple[float, str, str]] = []

    def on_frame(self, frame, prediction, rendered, stats):
        self.seen.append((time.monotonic(), stats["ai"]["state"], stats["ai"]["detail"]))

    def close(self):
        pass


def test_engine_build_shows_loading_not_stalled_and_video_flows():
    model = dark_onnx()
    config = build_config(
        {
            "source": {"input": "synthetic", "fps": 30, "width": 320, "height": 240},
            "inference": {"model": str(model), "deadline_ms": 300},
            "live": {"duration_s": 3.5},
        }
    )
    states = States()
    summary = Pipeline(
        config, observers=[states], backend=SlowToPrepare(model, load_manifest(model), device="cpu")
    ).run()
    names = [s for _, s, _ in states.seen]
    assert "STALLED" not in names and summary["inference_stalls"] == 0  # a build is not a stall
    building = [t for t, s, d in states.seen if s == "LOADING" and d == "building engine"]
    assert building and building[-1] - building[0] > PREPARE_S - 0.5  # frames flowed during the build
    assert names[-1] == "ON" and names.index("ON") >= len(building)


def test_operator_switches_the_ai_off_and_on_by_config_reload(tmp_path):
    """SIGHUP's path (request_reload): ``inference.enabled`` off, then on again while nothing is inferred."""
    import threading

    import yaml

    path = tmp_path / "config.yaml"
    data = {
        "source": {"input": "synthetic", "fps": 30, "width": 320, "height": 240},
        "inference": {"model": str(dark_onnx()), "enabled": False},
        "live": {"duration_s": 3.0},
    }
    path.write_text(yaml.safe_dump(data))
    states = States()
    pipeline = Pipeline(build_config(data), observers=[states], config_path=path)

    def switch_on():
        data["inference"]["enabled"] = True
        path.write_text(yaml.safe_dump(data))
        pipeline.request_reload()

    threading.Timer(1.2, switch_on).start()
    summary = pipeline.run()
    names = [s for _, s, _ in states.seen]
    first_on = names.index("ON")
    assert set(names[:10]) == {"OFF"} and names[-1] == "ON" and "OFF" not in names[first_on:]
    assert summary["inferred"] > 0


def test_restart_limit_shorter_than_the_deadline_is_a_config_error():
    from edge_runtime.errors import ConfigError

    with pytest.raises(ConfigError, match="'inference.stall_restart_s' .* longer than inference.deadline_ms"):
        build_config({"inference": {"deadline_ms": 2000, "stall_restart_s": 1}})
    assert build_config({"inference": {"stall_restart_s": None}}).inference.stall_restart_s is None


FAULT_AFTER_CUTS = 20  # the live inference thread's ROI cuts that work before the injected fault


def test_a_fault_in_the_live_inference_step_outside_the_backend_reads_ai_error_not_on(monkeypatch):
    """A fault in the inference thread around the backend call (here the ROI cut, made to raise after
    its first results: a stand-in for any bug in that step) must not leave the badge at ON over frames
    that get no mask; it reads ERROR with the fault banner, and the video keeps flowing."""
    model = dark_onnx()
    config = build_config(
        {
            "source": {"input": "synthetic", "fps": 30, "width": 320, "height": 240},
            "inference": {"model": str(model)},
            "live": {"duration_s": 2.5},
        }
    )
    states = States()
    pipeline = Pipeline(config, observers=[states])
    real_cut, calls = pipeline.stages.cut, []

    def cut_then_fail(frame):
        calls.append(frame.index)
        if len(calls) > FAULT_AFTER_CUTS:
            raise RuntimeError("ROI cut failed")
        return real_cut(frame)

    monkeypatch.setattr(pipeline.stages, "cut", cut_then_fail)
    summary = pipeline.run()
    names = [s for _, s, _ in states.seen]
    assert "ON" in names and "ERROR" in names, names
    first_error = names.index("ERROR")
    assert "ON" not in names[first_error:], names[first_error:]
    assert len(names) - first_error > 10  # frames kept coming after the fault
    assert summary["errors"] >= 1 and "ROI cut failed" in summary["last_error"]
