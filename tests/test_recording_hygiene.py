"""Recording hygiene: the recorder pauses before the disk fills (``sinks.min_free_gb``, real free
space, real files: the threshold is put above and then below what the disk has), resumes into a new
file, and a paused or failed recorder shows on screen, in /healthz (degraded, still 200), in /metrics
and in the log; ``sinks.retention_days`` deletes only sonomap's own old recordings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import yaml
from cli import sonomap
from loopback import get
from prometheus_client.parser import text_string_to_metric_families
from runtime_model import dark_onnx

from edge_runtime.config import build_config
from edge_runtime.config_schema import OverlayConfig
from edge_runtime.live_stats import EVENTS
from edge_runtime.manifest import load_manifest
from edge_runtime.pipeline import drawn_state
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.render.overlay import Overlay
from edge_runtime.roi import Roi
from edge_runtime.sinks import recordings
from edge_runtime.sinks.masks import MaskDumpSink
from edge_runtime.sinks.mp4 import Mp4Sink
from edge_runtime.sinks.recordings import REC_FAILED, REC_ON, REC_PAUSED, recorder_state

FPS = 10
WAIT_S = 30.0
DAY_S = 86400


def frame(i: int) -> np.ndarray:
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, (i * 4) % 56 : (i * 4) % 56 + 8] = 255
    return img


def count_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_recorder_pauses_below_min_free_space_and_resumes_into_a_new_file(tmp_path):
    free = recordings.free_gib(tmp_path)
    outputs = {"video": str(tmp_path / "rec.mp4")}
    sink = Mp4Sink(tmp_path / "rec.mp4", fps=FPS, min_free_gb=0.001, outputs=outputs, name="video")
    sink.space.interval_s = 0  # check on every frame, not once a second
    paused_before = EVENTS.snapshot().get("recording_paused", 0)
    try:
        for i in range(10):
            sink.write(frame(i))
        wait_until(lambda: sink.frames == 10, "recording did not start")
        assert recorder_state({"video": sink}) == REC_ON

        sink.space.min_free_gb = free + 1000  # more than this disk has: as if it were nearly full
        for i in range(5):
            sink.write(frame(i))
        wait_until(lambda: sink.paused_frames == 5, "recorder did not pause")
        assert recorder_state({"video": sink}) == REC_PAUSED and sink.frames == 10
        assert count_frames(tmp_path / "rec.mp4") == 10  # what was recorded is finalised and kept
        assert EVENTS.snapshot()["recording_paused"] == paused_before + 1

        sink.space.min_free_gb = recordings.free_gib(tmp_path) * 0.95  # just above the threshold: not yet
        for i in range(3):
            sink.write(frame(i))
        wait_until(lambda: sink.paused_frames == 8, "recorder did not stay paused")
        assert sink.paused and sink.frames == 10  # resuming needs a margin above it: no pause/resume flapping

        sink.space.min_free_gb = 0.001  # space is back
        for i in range(7):
            sink.write(frame(i))
        wait_until(lambda: sink.frames == 17, "recorder did not resume")
        assert recorder_state({"video": sink}) == REC_ON
    finally:
        sink.close()
    assert sink.files == [tmp_path / "rec.mp4", tmp_path / "rec-1.mp4"]
    assert count_frames(tmp_path / "rec-1.mp4") == 7
    assert outputs == {"video": str(tmp_path / "rec.mp4"), "video, resumed 1": str(tmp_path / "rec-1.mp4")}


def test_mask_dump_pauses_below_min_free_space_too(tmp_path):
    sink = MaskDumpSink(tmp_path / "masks", min_free_gb=recordings.free_gib(tmp_path) + 1000)
    sink.space.interval_s = 0
    mask = np.zeros((48, 64), np.uint8)
    try:
        for i in range(3):
            sink.write(i, frame(i)[:, :, 0], mask)
        wait_until(lambda: sink.paused_frames == 3, "mask dump did not pause")
        assert recorder_state({"masks": sink}) == REC_PAUSED and not any((tmp_path / "masks").iterdir())
        sink.space.min_free_gb = 0.001
        sink.write(3, frame(3)[:, :, 0], mask)
    finally:
        sink.close()
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["000003_frame.png", "000003_mask.png"]


def test_failed_recorder_is_reported_as_failed():
    failed_before = EVENTS.snapshot().get("recording_failed", 0)
    sink = Mp4Sink("/dev/full", fps=FPS, block=False)  # every write fails with ENOSPC
    try:
        for i in range(40):
            if sink.error is not None:
                break
            sink.write(frame(i))
            time.sleep(0.01)
        wait_until(lambda: sink.error is not None, "writing to /dev/full did not fail")
        assert recorder_state({"video": sink}) == REC_FAILED
    finally:
        sink.close()
    assert EVENTS.snapshot()["recording_failed"] == failed_before + 1
    assert recorder_state({}) == ""


def test_recorder_state_is_drawn_in_the_hud():
    overlay = Overlay.from_config(load_manifest(dark_onnx()), OverlayConfig(legend=False))
    screen = np.zeros((360, 640, 3), np.uint8)
    roi = Roi(120, 60, 400, 280)

    def hud_width(**extra) -> int:
        out = overlay.render(screen, roi, None, hud={"fps": 30.0, "backend": "onnxruntime cpu", **extra})
        columns = np.flatnonzero(out[: roi.y].max(axis=(0, 2)) > 0)  # the HUD box above the ROI
        return int(columns[-1] - columns[0])

    plain, paused = hud_width(), hud_width(rec=REC_PAUSED)
    assert paused > plain + 100  # "REC PAUSED: disk low" takes room in the HUD line
    assert hud_width(rec=REC_ON) > plain


def _own(path: Path, age_days: float) -> Path:
    sink = Mp4Sink(path, fps=FPS, recording=True)  # a live session's recording
    sink.write(frame(0))
    sink.close()
    old = time.time() - age_days * DAY_S
    os.utime(path, (old, old))
    return path


def _foreign(path: Path, age_days: float) -> Path:
    with av.open(str(path), "w") as c:  # an mp4 sonomap did not write
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for p in s.encode(av.VideoFrame.from_ndarray(frame(0), format="bgr24")):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    old = time.time() - age_days * DAY_S
    os.utime(path, (old, old))
    return path


def test_retention_deletes_only_our_own_old_recordings(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    template = folder / "%Y%m%d-%H%M%S-overlay.mp4"
    old_own = _own(folder / "20261101-101010-overlay.mp4", 30)
    old_own_suffixed = _own(folder / "20261101-101010-overlay-1.mp4", 30)
    new_own = _own(folder / "20261129-090000-overlay.mp4", 1)
    old_foreign = _foreign(folder / "20261101-111111-overlay.mp4", 30)
    old_other_name = _own(folder / "teaching-case.mp4", 30)
    (folder / "20261101-000000-overlay.mp4.d").mkdir()

    assert recordings.apply_retention(template, None) == []  # off by default: nothing is deleted
    deleted = recordings.apply_retention(template, 7)
    assert sorted(deleted) == sorted([old_own, old_own_suffixed])
    assert all(p.exists() for p in (new_own, old_foreign, old_other_name))
    assert not old_own.exists() and not old_own_suffixed.exists()

    again = _own(folder / "20261102-101010-overlay.mp4", 30)
    sink = Mp4Sink(
        folder / "20261130-080000-overlay.mp4", fps=FPS, template=template, retention_days=7, recording=True
    )
    sink.write(frame(0))  # the recorder applies the policy when it starts (and hourly)
    sink.close()
    assert not again.exists() and new_own.exists() and (folder / "20261130-080000-overlay.mp4").exists()


def test_retention_matches_the_templates_own_names_only():
    cases = {
        "overlay.mp4": {"overlay.mp4": True, "overlay-3.mp4": True, "overlay_final.mp4": False},
        "%Y%m%d-%H%M%S.mp4": {"20261101-101010.mp4": True, "20261101-101010-2.mp4": True, "a-b.mp4": False},
        "rec%%-%b.mp4": {"rec%-Nov.mp4": True, "rec-Nov.mp4": False},  # %% is a literal %
    }
    for template, names in cases.items():
        pattern = recordings.template_names(template)
        assert {name: bool(pattern.fullmatch(name)) for name in names} == names, template


def test_a_replay_with_retention_deletes_nothing_and_tags_no_result(tmp_path):
    # a replay's outputs are results, and its input may be an earlier recording: retention is the
    # live service's, and neither the clip, a kept result nor an old own recording beside them goes
    clip = tmp_path / "overlay-1.mp4"  # named like the output's template, 10 days old
    sonomap("make-clip", "--out", clip, "--frames", 3, "--size", "320x180", "--noise", 0)
    kept = tmp_path / "overlay_tumour_board.mp4"
    kept.write_bytes(clip.read_bytes())
    old_recording = _own(tmp_path / "overlay-2.mp4", 10)
    for path in (clip, kept):
        os.utime(path, (time.time() - 10 * DAY_S,) * 2)
    config = tmp_path / "retention.yaml"
    config.write_text("sinks:\n  retention_days: 1\n")
    out = tmp_path / "overlay.mp4"
    sonomap("replay", clip, "--model", dark_onnx(), "--config", config, "--out", out)
    assert clip.exists() and kept.exists() and old_recording.exists()
    assert not recordings.own_recording(clip) and not recordings.own_recording(out)
    assert recordings.own_recording(old_recording)
    # a live session in the same folder applies the policy: only the old own recording goes
    live = ("live", "--source", "synthetic", "--headless", "--duration", 1, "--model", dark_onnx())
    sonomap(*live, "--config", config, "--record", out)
    assert clip.exists() and kept.exists() and not old_recording.exists()
    assert recordings.own_recording(tmp_path / "overlay-3.mp4")  # the live session's: -1 and -2 were taken


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_live_with_a_full_disk_is_degraded_not_down(tmp_path):
    """`sonomap live` whose recording disk is below sinks.min_free_gb: the video goes on, /healthz stays
    200 and says why it is degraded, /metrics and the log say the recorder paused, nothing is written."""
    free = recordings.free_gib(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "source": {"input": "synthetic", "fps": 15, "width": 480, "height": 320},
                "sinks": {"min_free_gb": round(free + 1000)},
            }
        )
    )
    port, rec = _free_port(), tmp_path / "rec" / "live.mp4"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # systemd's side of sd_notify
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(0.2)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_runtime.cli",
            "live",
            "--config",
            str(config),
            "--headless",
            "--model",
            str(dark_onnx()),
            "--record",
            str(rec),
            "--http",
            f"127.0.0.1:{port}",
            "--duration",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = get(f"http://127.0.0.1:{port}/healthz")
            except OSError:
                status, body = None, ""
            if "degraded" in body:
                break
            assert proc.poll() is None and time.monotonic() < deadline, body
            time.sleep(0.3)
        assert status == 200 and f"degraded: {REC_PAUSED}" in body
        metrics = {
            (s.name, tuple(s.labels.items())): s.value
            for f in text_string_to_metric_families(get(f"http://127.0.0.1:{port}/metrics")[1])
            for s in f.samples
        }
        assert metrics[("sonomap_recorder_state", (("state", "paused"),))] == 1
        assert metrics[("sonomap_errors_total", (("kind", "recording_paused"),))] == 1
        assert '"recording": "REC PAUSED: disk low"' in get(f"http://127.0.0.1:{port}/stats.json")[1]
        statuses, deadline = [], time.monotonic() + 10  # systemctl status shows it too
        while not any(REC_PAUSED in m for m in statuses) and time.monotonic() < deadline:
            try:
                statuses.append(notify.recv(4096).decode())
            except TimeoutError:
                continue
        assert any(REC_PAUSED in m for m in statuses if "STATUS=" in m), statuses[-3:]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
        notify.close()
    assert proc.returncode == 0, err[-3000:]
    assert "recording paused" in err and "sinks.min_free_gb" in err
    assert not rec.exists()


def test_a_live_recording_shows_rec_from_the_first_frame(tmp_path):
    """The HUD reads the recorder's state from the stats; a live session that records shows REC on
    its first frame, not only after the first write (an unmarked start reads as "not recording")."""
    config = build_config(
        {
            "source": {"input": "synthetic", "fps": FPS, "width": 64, "height": 48},
            "inference": {"model": str(dark_onnx())},
            "sinks": {"video": str(tmp_path / "rec.mp4")},
        }
    )
    stages = Pipeline(config).stages
    stages.open_outputs(FPS, live=True)
    try:
        assert drawn_state.hud_values(stages.stats, None, stages.show_rec)["rec"] == REC_ON
    finally:
        stages.close_outputs()
