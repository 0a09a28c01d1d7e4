"""Injected faults: the source disappears, the backend throws, the recorder's disk fills up.
After each, the display goes on (frames keep being rendered) and the service says what
happened (/healthz, /metrics). Loopback only, a few seconds each."""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
import time

import numpy as np
import pytest
from clips import write_bar_clip
from file_size_limit import small_disk
from loopback import SONOMAP, free_port, get
from prometheus_client.parser import text_string_to_metric_families
from runtime_model import dark_onnx

from edge_runtime import config as cfg
from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_runtime.errors import InputError
from edge_runtime.frames import Frame, Observer, Source
from edge_runtime.live_stats import EVENTS
from edge_runtime.manifest import load_manifest
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.service.http_server import make_http_observer
from edge_runtime.sources.opener import open_source
from edge_runtime.sources.reconnect import ResilientSource

SMALL = {"width": 320, "height": 240}
# Frames rendered through an outage, counted rather than timed (a loaded CI machine stretches the gaps).
# The device's first absence lasts 0.3 + 0.6 + 1.2 s of reconnect waits: ~21 NO SIGNAL frames at the
# source's 10 fps; a source that slept through each wait would show at most 2 a wait. The AI's fault
# lasts 0.2 + 0.4 + 0.8 s of passthrough (then the backend is re-created): ~40 raw frames at 30 fps; a
# display that waited on the faulted AI would show a frame or two per wait. 10 is well clear of both.
MIN_FRAMES_THROUGH_OUTAGE = 10


class Recorder(Observer):
    """Keeps (monotonic time, frame index, no_signal) of every rendered frame."""

    def __init__(self):
        self.rendered: list[tuple[float, int, bool]] = []
        self.with_mask: list[bool] = []

    def on_frame(self, frame, prediction, rendered, stats):
        self.rendered.append((time.monotonic(), frame.index, bool(frame.meta.get("no_signal"))))
        self.with_mask.append(prediction is not None)

    def close(self):
        pass


def run_length(flags: list[bool], start: int) -> int:
    """How many items from ``start`` on equal ``flags[start]`` (the run that starts there)."""
    end = start
    while end < len(flags) and flags[end] == flags[start]:
        end += 1
    return end - start


def live_config(**sinks) -> dict:
    config = cfg.build_config(
        {
            "source": {"input": "synthetic", "fps": 30, **SMALL},
            "inference": {"model": str(dark_onnx()), "retry_after_s": 0.2},
            "sinks": sinks,
        }
    )
    return config


# ---------------------------------------------------------------- source disappears


class FlakyDevice:
    """Opens the runtime's real synthetic source, but like an unplugged capture card: the
    2nd and 3rd open attempts fail, and each session delivers only ``frames`` frames."""

    def __init__(self, frames: int, fail_opens=(1, 2)):
        self.frames, self.fail_opens, self.opens = frames, fail_opens, 0

    def __call__(self) -> Source:
        attempt, self.opens = self.opens, self.opens + 1
        if attempt in self.fail_opens:
            raise InputError("/dev/video0: capture device not found")
        return open_source("synthetic", fps=30, frames=self.frames, **SMALL)


def test_resilient_backoff_and_no_signal_frames():
    clock = [0.0]
    sleeps: list[float] = []

    def sleep(s):
        sleeps.append(s)
        clock[0] += s

    dev = FlakyDevice(frames=3, fail_opens=(1, 2, 3))
    src = ResilientSource(dev, "/dev/video0", clock=lambda: clock[0], sleep=sleep, no_signal_fps=10)
    frames = []
    for f in src:
        frames.append(f)
        if (
            dev.opens == 5
            and not f.meta.get("no_signal")
            and f.image.shape == (240, 320, 3)
            and len(frames) > 10
        ):
            break
    real = [f for f in frames if not f.meta.get("no_signal")]
    ns = [f for f in frames if f.meta.get("no_signal")]
    assert len(real) >= 4 and len(ns) > 0
    assert [f.index for f in frames] == list(range(len(frames)))  # monotonic across reconnects
    assert ns[0].image.shape == (240, 320, 3)  # NO SIGNAL at the device's last size
    assert ns[0].image[:, :, 2].max() > 200  # the title is drawn (orange-ish text)
    # backoff doubled per failed attempt: waits 0.5 (end of stream), 1, 2, 4 s before attempts 2..5
    assert sum(sleeps) == pytest.approx(0.5 + 1 + 2 + 4, abs=0.11)
    assert src.losses == 4 and src.reconnects == 1
    src.close()


def test_resilient_skips_corrupt_frames_with_counted_warning(caplog):
    class Glitchy(Source):
        live = True

        def __iter__(self):
            good = np.zeros((24, 32, 3), np.uint8)
            yield Frame(0, good, time.monotonic())
            yield Frame(1, good[:10], time.monotonic())  # truncated read
            yield Frame(2, good.astype(np.float32), time.monotonic())  # wrong format
            yield Frame(3, good, time.monotonic())

    before = EVENTS.snapshot().get("corrupt_input", 0)
    src = ResilientSource(Glitchy, "glitchy", sleep=lambda s: None)
    it = iter(src)
    got = [next(it), next(it)]
    src.close()
    assert [f.image.shape for f in got] == [(24, 32, 3), (24, 32, 3)] and src.skipped == 2
    assert EVENTS.snapshot()["corrupt_input"] - before == 2
    assert sum("skipped corrupt frame" in r.message for r in caplog.records) == 2


def test_a_tiny_device_frame_is_skipped_as_corrupt_even_as_a_session_s_first():
    """A capture card's glitch frame below the pipeline's minimum size (1x1 here) would end the run
    with an error in the de-identify stage: the device wrapper skips it, first of a session or not."""

    class Glitchy(Source):
        live = True

        def __iter__(self):
            good = np.zeros((24, 32, 3), np.uint8)
            yield Frame(0, good[:1, :1], time.monotonic())
            yield Frame(1, good, time.monotonic())
            yield Frame(2, np.zeros((8, 8, 3), np.uint8), time.monotonic())
            yield Frame(3, good, time.monotonic())

    src = ResilientSource(Glitchy, "glitchy", sleep=lambda s: None)
    it = iter(src)
    got = [next(it), next(it)]
    src.close()
    assert [f.image.shape for f in got] == [(24, 32, 3), (24, 32, 3)] and src.skipped == 2


def test_a_reconnect_counts_when_a_frame_comes_not_when_the_device_opens(caplog):
    """An open that gives no frame before the stream ends again is no recovery: the log and the
    source_reconnect count wait for the first frame."""
    dev = FlakyDevice(frames=2, fail_opens=())
    sessions = iter([2, 0, 0, 2])  # frames per open: the 2nd and 3rd opens end at once

    def opener():
        dev.frames = next(sessions)
        return dev()

    src = ResilientSource(opener, "/dev/video0", sleep=lambda s: None, initial_backoff_s=0.01)
    real = []
    for frame in src:
        real += [frame] if not frame.meta.get("no_signal") else []
        if len(real) == 4:
            break
    src.close()
    assert src.losses == 3 and src.reconnects == 1
    assert sum("reconnected after 3 loss(es)" in r.message for r in caplog.records) == 1


def test_live_pipeline_shows_no_signal_while_device_gone_then_recovers():
    dev = FlakyDevice(frames=30)
    source = ResilientSource(dev, "/dev/video0", initial_backoff_s=0.3)
    rec = Recorder()
    http = make_http_observer("127.0.0.1", 0, None)
    config = live_config()
    config.live.duration_s = 5.0
    pipe = Pipeline(config, observers=[rec, http], source=source)
    health: list[int] = []

    def probe():
        while not pipe.stopping:
            health.append(get(http.url + "healthz")[0])
            time.sleep(0.1)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    summary = pipe.run()
    t.join()
    flags = [ns for _, _, ns in rec.rendered]
    first_ns, last_ns = flags.index(True), len(flags) - 1 - flags[::-1].index(True)
    assert not any(flags[:first_ns]) and any(not f for f in flags[last_ns + 1 :]), (
        "no recovery after NO SIGNAL"
    )
    assert run_length(flags, first_ns) >= MIN_FRAMES_THROUGH_OUTAGE, (
        "the display stalled while the device was gone"
    )
    assert source.reconnects >= 1 and dev.opens >= 4
    assert not any(
        m for m, (_, _, ns) in zip(rec.with_mask, rec.rendered, strict=True) if ns
    )  # no AI on NO SIGNAL
    assert 200 in health and 503 in health and health[-1] == 200
    assert summary["frames"] == len(rec.rendered)


# ---------------------------------------------------------------- backend throws


class FaultyBackend(OnnxRuntimeBackend):
    """The real ONNX Runtime backend, with a fault injected on calls 10..19."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0  # per instance: every test (and every rerun) starts with a healthy backend

    def infer(self, gray_roi):
        self.calls += 1
        if 10 <= self.calls < 20:
            raise RuntimeError("injected CUDA error: an illegal memory access was encountered")
        return super().infer(gray_roi)


def test_backend_throws_display_continues_and_metrics_count_it():
    model = dark_onnx()
    backend = FaultyBackend(model, load_manifest(model), device="cpu")
    rec = Recorder()
    http = make_http_observer("127.0.0.1", 0, None)
    config = live_config()
    config.live.duration_s = 4.0
    pipe = Pipeline(config, observers=[rec, http], backend=backend)
    metrics: list[str] = []
    t = threading.Thread(target=lambda: (time.sleep(3.5), metrics.append(get(http.url + "metrics")[1])))
    t.start()
    summary = pipe.run()
    t.join()
    assert summary["errors"] >= 3 and backend.calls >= 12
    first_gap = rec.with_mask.index(False, rec.with_mask.index(True))
    assert all(rec.with_mask[-20:]) and first_gap < len(rec.with_mask) - 20  # overlay came back by itself
    assert run_length(rec.with_mask, first_gap) >= MIN_FRAMES_THROUGH_OUTAGE, (
        "the display stalled during the fault"
    )
    backend_errors = [
        s.value
        for f in text_string_to_metric_families(metrics[0])
        for s in f.samples
        if s.name == "sonomap_errors_total" and s.labels == {"kind": "backend"}
    ]
    assert backend_errors and backend_errors[0] >= 1


# ---------------------------------------------------------------- recorder disk fills up


def test_recorder_disk_full_display_continues(tmp_path):
    """RLIMIT_FSIZE makes the recording fail with EFBIG after 200 kB, like a full disk."""
    limit = 200_000

    port = free_port()
    cmd = [
        *SONOMAP,
        "live",
        "--source",
        "synthetic",
        "--headless",
        "--width",
        "640",
        "--height",
        "360",
        "--model",
        str(dark_onnx()),
        "--record",
        str(tmp_path / "rec.mp4"),
        "--duration",
        "6",
        "--summary",
        str(tmp_path / "summary.json"),
        "--http",
        f"127.0.0.1:{port}",
    ]
    proc = subprocess.Popen(
        cmd, preexec_fn=small_disk(limit), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    health = []
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            health.append(get(f"http://127.0.0.1:{port}/healthz")[0])
        except (OSError, http.client.HTTPException):
            pass  # not listening yet, or the answer was cut by the process ending after --duration
        time.sleep(0.2)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["sink_errors"] >= 1 and "File too large" in summary["last_error"]
    assert summary["frames"] > 100  # 6 s at 30 fps, minus start-up: display went on
    assert (tmp_path / "rec.mp4").stat().st_size <= limit
    assert health.count(200) > 10 and health[-1] == 200


@pytest.mark.parametrize(
    "spec,wrapped",
    [
        ("/dev/video0", True),
        ("2", True),
        ("rtsp://10.0.0.5/us", True),
        ("synthetic", False),
        ("clip.mp4", False),
        ("frames/", False),
    ],
)
def test_only_devices_and_streams_get_reconnects(spec, wrapped):
    from edge_runtime.sources.opener import reconnecting_source as for_config

    config = cfg.build_config({"source": {"input": spec, "width": 640, "height": 480}})
    src = for_config(config)
    assert (src is not None) == wrapped
    if wrapped:
        assert src.size == (480, 640) and src.live  # NO SIGNAL at the configured size before any frame


# ---------------------------------------------------------------- corrupt input in a file


def test_corrupt_packet_in_video_is_skipped_with_counted_warning(tmp_path, caplog):
    import av

    path = write_bar_clip(tmp_path / "clip.mp4", frames=20, step=3)
    with av.open(str(path)) as c:
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    pos, size = packets[5]
    data[pos : pos + size] = b"\xff" * size  # one packet of garbage, as a bad sector would leave
    path.write_bytes(bytes(data))
    before = EVENTS.snapshot().get("corrupt_input", 0)
    frames = list(open_source(str(path)))
    assert 15 <= len(frames) < 20 and [f.index for f in frames] == list(range(len(frames)))
    assert EVENTS.snapshot()["corrupt_input"] - before >= 1
    skipped = [r.getMessage() for r in caplog.records if "skipped corrupt packet" in r.getMessage()]
    assert skipped and all(m.startswith("video file: ") and "clip.mp4" not in m for m in skipped)  # its kind


def test_unreadable_image_in_folder_is_skipped_but_all_bad_is_an_error(tmp_path, busi_sample):
    import shutil

    for name in sorted(p.name for p in (busi_sample / "images").glob("*.png"))[:3]:
        shutil.copy(busi_sample / "images" / name, tmp_path / name)
    (tmp_path / "b_truncated.png").write_bytes((busi_sample / "images" / "benign_002.png").read_bytes()[:100])
    frames = list(open_source(str(tmp_path)))
    assert len(frames) == 3
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"not a png")
    (bad / "y.png").write_bytes(b"")
    with pytest.raises(InputError, match="none of its 2 images is readable"):
        list(open_source(str(bad)))


def test_first_open_failure_is_an_error_at_a_terminal_but_waits_under_systemd():
    dev = FlakyDevice(frames=3, fail_opens=(0,))
    with pytest.raises(InputError, match="capture device not found"):
        next(iter(ResilientSource(dev, "/dev/video0", fail_first_open=True)))
    dev = FlakyDevice(frames=3, fail_opens=(0,))
    src = ResilientSource(dev, "/dev/video0", size=(240, 320), initial_backoff_s=0.05)
    first = next(iter(src))
    assert first.meta["no_signal"] and first.image.shape == (240, 320, 3)
    src.close()
