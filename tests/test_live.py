"""Live mode against the synthetic 30 fps source, and the fail-safe (throw, NaN, lag)."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from runtime_model import dark_onnx

from edge_runtime.aistate import ON, SKIPPED_DETAIL
from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_runtime.config import build_config
from edge_runtime.frames import Observer
from edge_runtime.manifest import load_manifest
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.render.overlay import BANNER_BGR

SCREEN = {"width": 640, "height": 360}
BANNER_ROWS = 60  # the fault banner's band at the top of the ROI
HUD_ROWS = 60  # the HUD and legend's band at the bottom


class Collect(Observer):
    """Keeps what the render stage hands to observers (rendered copies for a few frames)."""

    def __init__(self, keep_images: int = 1000):
        self.items, self.keep, self.closed = [], keep_images, False

    def on_frame(self, frame, prediction, rendered, stats):
        image = rendered.copy() if len(self.items) < self.keep else None
        self.items.append((frame, prediction, image, stats))

    def close(self):
        self.closed = True


class FaultyBackend(OnnxRuntimeBackend):
    """A real ONNX Runtime backend with injected faults: raises on the listed calls, or is slow."""

    def __init__(self, model, raise_on=(), delay_s=0.0):
        super().__init__(model, load_manifest(model), device="cpu")
        self.calls, self.raise_on, self.delay_s = 0, set(raise_on), delay_s

    def infer(self, gray):
        self.calls += 1
        if self.calls in self.raise_on:
            raise RuntimeError(f"injected fault on call {self.calls}")
        if self.delay_s:
            time.sleep(self.delay_s)
        return super().infer(gray)


class SometimesSlow(FaultyBackend):
    """Every other call takes three frame intervals (at 30 fps); the others answer at once."""

    def infer(self, gray):
        self.delay_s = 0.1 if self.calls % 2 else 0.0
        return super().infer(gray)


def live_config(**sections):
    data = {
        "source": {"input": "synthetic", "fps": 30, **SCREEN},
        "inference": {"model": str(dark_onnx())},
        "live": {"duration_s": 2.0},
    }
    for key, value in sections.items():
        data.setdefault(key, {}).update(value)
    return build_config(data)


def banner_colour(image, roi):
    x, y, w, _ = roi
    return tuple(int(v) for v in image[y + 3, x + w - 4])


def test_live_latest_mode_shows_every_captured_frame_with_newest_mask():
    collect = Collect(keep_images=0)
    pipeline = Pipeline(live_config(), observers=[collect])
    summary = pipeline.run()
    shown = [f.index for f, _, _, _ in collect.items]
    assert collect.closed and summary["state"] == "stopped"
    assert len(shown) >= 15 and shown == sorted(shown)
    # Raw frames are displayed at capture rate: every captured frame is either shown or counted as dropped.
    assert len(shown) + summary["drops"] == shown[-1] + 1
    assert sum(p is not None for _, p, _, _ in collect.items) >= len(shown) // 2
    lat = summary["latency_ms"]
    assert lat["capture_to_display"]["n"] == len(shown) and lat["mask_age"]["p99"] > 0
    assert summary["inferred"] >= 3 and summary["errors"] == 0
    stats = pipeline.stats()
    assert {
        "frames",
        "fps",
        "latency_ms",
        "drops",
        "errors",
        "backend",
        "last_frame_monotonic",
        "state",
    } <= set(stats)


def test_live_strict_mode_draws_only_a_frames_own_mask():
    collect = Collect(keep_images=0)
    Pipeline(live_config(live={"mode": "strict"}), observers=[collect]).run()
    with_mask = [(f, p) for f, p, _, _ in collect.items if p is not None]
    assert with_mask, "no frame got its own mask"
    assert all(p.frame is f for f, p in with_mask)


def test_live_strict_mode_labels_a_frame_the_ai_skipped():
    """A slow AI skips frames in strict mode; each one is shown raw, and must not read as a bare AI ON
    (which over raw video would look like "no cancer"): its badge says "frame not analysed" and a
    banner says raw ultrasound only (or AI STALLED, once answers come later than ``stale_ms``)."""
    collect = Collect()
    slow = SometimesSlow(dark_onnx())
    config = live_config(live={"mode": "strict", "stale_ms": 30})  # waits 30 ms for a frame's own mask
    summary = Pipeline(config, observers=[collect], backend=slow).run()
    answered, skipped = False, []
    for _, p, image, s in collect.items:
        answered = answered or p is not None
        if answered and p is None:
            skipped.append((s["ai"]["state"], s["ai"]["detail"], banner_colour(image, summary["roi"])))
    assert skipped, "the slow AI skipped no frame: the test shows nothing"
    for state, detail, banner in skipped:
        assert state != ON or (detail == SKIPPED_DETAIL and banner == BANNER_BGR["info"]), skipped
    on = [(p is not None, s["ai"]["detail"]) for _, p, _, s in collect.items if s["ai"]["state"] == ON]
    assert any(has_mask for has_mask, _ in on)  # frames with their own mask still say plain AI ON
    assert all(detail != SKIPPED_DETAIL for has_mask, detail in on if has_mask)


def test_failsafe_backend_that_throws_gives_passthrough_banner_and_recovers(busi_sample, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, src in enumerate(sorted((busi_sample / "images").glob("malignant_0*.png"))[:8]):
        shutil.copy(src, folder / f"{i:02d}.png")
    config = build_config(
        {
            "source": {"input": str(folder)},
            "roi": {"rect": "full"},
            "inference": {"model": str(dark_onnx()), "retry_after_s": 0.0},
        }
    )
    collect = Collect()
    summary = Pipeline(config, observers=[collect], backend=FaultyBackend(dark_onnx(), raise_on={3, 4})).run()
    assert summary["frames"] == 8 and summary["errors"] == 2  # every frame still rendered
    predictions = [p for _, p, _, _ in collect.items]
    assert predictions[2] is None and predictions[3] is None  # passthrough on faults
    assert all(p is not None for i, p in enumerate(predictions) if i not in (2, 3))  # recovered by itself
    for i in (2, 3):
        frame, _, image, _ = collect.items[i]
        h, w = frame.image.shape[:2]
        assert banner_colour(image, (0, 0, w, h)) == BANNER_BGR["error"]
        between = slice(BANNER_ROWS, h - HUD_ROWS)  # below the banner, above the HUD
        assert np.array_equal(image[between], frame.image[between])  # exactly the raw ultrasound: no overlay
    overlaid = [i for i, p in enumerate(predictions) if p is not None and p.mask.any()]
    assert overlaid  # ...while a frame with a mask differs there, so the check above can fail
    for i in overlaid:
        frame, _, image, _ = collect.items[i]
        between = slice(BANNER_ROWS, frame.image.shape[0] - HUD_ROWS)
        assert not np.array_equal(image[between], frame.image[between])
    frame, _, image, _ = collect.items[5]
    assert banner_colour(image, (0, 0, frame.image.shape[1], frame.image.shape[0])) != BANNER_BGR["error"]
    assert "injected fault" in summary["last_error"]


def test_failsafe_nan_output_keeps_live_video_running_with_banner():
    collect = Collect(keep_images=5)
    config = live_config(
        inference={"model": str(dark_onnx(nan=True)), "retry_after_s": 0.05}, live={"duration_s": 1.5}
    )
    summary = Pipeline(config, observers=[collect]).run()
    assert summary["errors"] >= 1 and summary["inferred"] == 0
    assert len(collect.items) >= 10  # raw video kept flowing
    assert all(p is None for _, p, _, _ in collect.items)
    roi = summary["roi"]
    images = [img for _, _, img, _ in collect.items if img is not None]
    assert any(banner_colour(img, roi) == BANNER_BGR["error"] for img in images)


def test_live_backend_falling_behind_fades_mask_with_banner_but_video_flows():
    collect = Collect()
    slow = FaultyBackend(dark_onnx(), delay_s=0.6)
    config = live_config(live={"duration_s": 2.5, "stale_ms": 300, "fade_ms": 500})
    summary = Pipeline(config, observers=[collect], backend=slow).run()
    assert slow.calls <= 6 and len(collect.items) >= 3 * slow.calls  # display did not wait for the AI
    roi = summary["roi"]
    colours = [banner_colour(img, roi) for _, _, img, _ in collect.items]
    assert BANNER_BGR["warning"] in colours  # AI LAGGING: a mask 0.6 s old fades (0.3 s stale, 0.5 s fade)
    assert BANNER_BGR["error"] in colours  # AI STALLED once it is older than 0.8 s and hidden
    assert summary["latency_ms"]["mask_age"]["max"] > 300


@pytest.mark.parametrize("key", ["bogus", "live.bogus"])
def test_unknown_config_key_is_named(key):
    from edge_runtime.errors import ConfigError

    data = {"bogus": {}} if key == "bogus" else {"live": {"bogus": 1}}
    with pytest.raises(ConfigError, match="bogus"):
        build_config(data)


def test_stop_from_another_thread_finalises_the_recording(tmp_path):
    import threading

    import av

    out = tmp_path / "rec.mp4"
    collect = Collect(keep_images=0)
    pipeline = Pipeline(
        live_config(live={"duration_s": None}, sinks={"video": str(out)}), observers=[collect]
    )
    threading.Timer(1.5, pipeline.stop).start()  # what SIGTERM's handler does
    summary = pipeline.run()
    assert summary["state"] == "stopped" and collect.closed
    with av.open(str(out)) as c:
        frames = sum(1 for _ in c.decode(c.streams.video[0]))
    assert frames + summary["sink_drops"] == summary["frames"] >= 10  # every shown frame recorded or counted
