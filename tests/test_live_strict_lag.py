"""Live ``strict`` with an AI slower than ``live.stale_ms``: no answer is ever drawn (each comes too late
for its frame), so every frame is raw and must say so: AI STALLED with the "raw ultrasound only" banner
and an unhealthy state for /healthz, never a green AI ON over raw video (which reads as "no cancer").
An answer in time again ends the stall. The monitor's rule on a fake clock, then real live runs: the
synthetic 30 fps source and a real ONNX Runtime backend made slow with a sleep."""

from __future__ import annotations

import time

from runtime_model import dark_onnx

from edge_runtime.aistate import LOADING, ON, SKIPPED_DETAIL, STALLED, UNHEALTHY, AiMonitor
from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_runtime.config import build_config
from edge_runtime.frames import Observer
from edge_runtime.manifest import load_manifest
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.render.overlay import BANNER_BGR

STALE_MS = 100
SLOW_S = 0.25  # each answer 2.5 times later than the display waits for it


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def answer_after(ai: AiMonitor, clock: Clock, seconds: float) -> None:
    ai.request_sent()
    clock.t += seconds
    ai.answered(True)


def test_strict_answers_later_than_the_wait_are_a_stall_until_one_comes_in_time():
    clock = Clock()
    ai = AiMonitor(deadline_ms=1000, clock=clock)
    ai.expect_within(STALE_MS)
    answer_after(ai, clock, 0.05)
    assert ai.status().state == ON
    answer_after(ai, clock, 0.3)  # too late for its frame: that frame was shown raw
    late = ai.status()
    assert late.state == STALLED and late.detail == "0.3 s" and not late.healthy and late.stalls == 1
    ai.request_sent()
    clock.t += 0.2  # the next frame waits in vain too: still one episode
    assert ai.status().state == STALLED and ai.status().stalls == 1
    ai.answered(True)
    answer_after(ai, clock, 0.05)
    assert ai.status().state == ON and ai.stalls == 1 and not ai.must_restart()
    latest = AiMonitor(deadline_ms=1000, clock=clock)  # latest mode: a late mask is faded, not a stall
    answer_after(latest, clock, 0.3)
    assert latest.status().state == ON


class Slow(OnnxRuntimeBackend):
    """The real ONNX Runtime backend; the calls before ``fast_from`` take ``SLOW_S`` more."""

    def __init__(self, fast_from: int | None = None):
        super().__init__(dark_onnx(), load_manifest(dark_onnx()), device="cpu")
        self.calls, self.fast_from = 0, fast_from

    def infer(self, gray):
        self.calls += 1
        if self.fast_from is None or self.calls < self.fast_from:
            time.sleep(SLOW_S)
        return super().infer(gray)


class Collect(Observer):
    def __init__(self):
        self.items = []

    def on_frame(self, frame, prediction, rendered, stats):
        self.items.append((prediction, rendered.copy(), stats["ai"]))


def run_strict(backend: Slow, duration_s: float):
    config = build_config(
        {
            "source": {"input": "synthetic", "fps": 30, "width": 640, "height": 360},
            "inference": {"model": str(dark_onnx())},
            "live": {"mode": "strict", "stale_ms": STALE_MS, "duration_s": duration_s},
        }
    )
    collect = Collect()
    summary = Pipeline(config, observers=[collect], backend=backend).run()
    return collect.items, summary


def banner_colour(image, roi):
    x, y, w, _ = roi
    return tuple(int(v) for v in image[y + 3, x + w - 4])


def test_a_strict_ai_slower_than_stale_ms_shows_every_frame_stalled_with_the_raw_banner():
    items, summary = run_strict(Slow(), duration_s=1.5)
    assert all(prediction is None for prediction, _, _ in items)  # every answer came too late
    states = [ai["state"] for _, _, ai in items]
    assert STALLED in states, states
    first = states.index(STALLED)
    assert set(states[:first]) <= {LOADING} and set(states[first:]) == {STALLED}, states
    assert all(ai["state"] in UNHEALTHY for _, _, ai in items[first:])  # /healthz: 503
    assert all(banner_colour(image, summary["roi"]) == BANNER_BGR["error"] for _, image, _ in items[first:])
    assert summary["ai"]["state"] == STALLED and summary["inference_stalls"] == 1


def test_a_strict_ai_back_in_time_shows_its_masks_under_ai_on_again():
    items, summary = run_strict(Slow(fast_from=4), duration_s=2.0)
    states = [(ai["state"], prediction is not None) for prediction, _, ai in items]
    first_on = states.index((ON, True))
    assert (STALLED, False) in states[:first_on], states
    raw_on = [ai["detail"] for prediction, _, ai in items if ai["state"] == ON and prediction is None]
    assert set(raw_on) <= {SKIPPED_DETAIL}  # busy with the frame before, which got its mask in time
    assert summary["inference_stalls"] == 1 and summary["ai"]["state"] == ON
