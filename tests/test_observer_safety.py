"""What the observers on the display path (biopsy capture, recorders) may and may not do to what the
operator sees: one that fails never stops the display; the local window shows their drawing as the
recording does; the expected yield, an AI finding, shows only under AI ON; a mask hidden by its age
reads AI STALLED and is not reported as shown. Also two rules of what is drawn between frames: replay's smoothing starts
afresh after the AI leaves ON, and a reload keeps the privacy section the run started with.
Stub backends answer by the frame's content (:mod:`test_live_safety_support`)."""

from __future__ import annotations

import json
import tempfile
import threading
import time

import numpy as np
import pytest
import yaml
from test_live_safety_support import (
    CANCER_MARK,
    CLEAR_MARK,
    FAULT_MARK,
    RECT,
    Collect,
    Scanner,
    Stub,
    badge,
    config,
    everywhere,
    mark_of,
    mask_drawn,
    screen,
)

from edge_runtime.biopsy.observer import BAND_BGR, YIELD_TEXT, CaptureObserver
from edge_runtime.biopsy.yield_band import YieldBand
from edge_runtime.frames import Frame, Observer
from edge_runtime.pipeline import deidentify
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.roi import Roi

FAIL_AFTER = 5  # frames an observer draws before it starts to fail
FRAMES = 40
BAND_COLOUR = (255, 255, 0)
MODEL = {"name": "m", "file": "model.onnx", "sha256": "0" * 64}


class Clip(Scanner):
    """The Scanner's frames as a file: replayed, every frame, as fast as they are drawn."""

    live = False

    def __iter__(self):
        for i in range(self.frames):
            yield Frame(i, self.picture(i), time.monotonic())


class Failing(Collect):
    """Collects every frame; on frames FAIL_AFTER and later its ``banners`` or ``draw`` raises."""

    def __init__(self, where: str):
        super().__init__()
        self.where = where

    def banners(self, frame, ai):
        if self.where == "banners" and frame.index >= FAIL_AFTER:
            raise ValueError("observer banners failed")
        return []

    def draw(self, frame, image, roi, ai):
        if self.where == "draw" and frame.index >= FAIL_AFTER:
            raise ValueError("observer draw failed")


@pytest.mark.parametrize("where", ["banners", "draw"])
@pytest.mark.parametrize("source", [Scanner, Clip], ids=["live", "replay"])
def test_an_observer_that_fails_while_drawing_never_stops_the_display(where, source):
    observer = Failing(where)
    summary = Pipeline(config(), observers=[observer], source=source(FRAMES), backend=Stub()).run()
    assert len(observer.items) == FRAMES  # every frame drawn and delivered
    assert summary["sink_errors"] == FRAMES - FAIL_AFTER  # each failing call counted
    assert f"Failing.{where}: observer {where} failed" in summary["last_error"]


class Band(Observer):
    """Outlines a band, as the biopsy capture outlines the one a fire will sample."""

    def on_frame(self, frame, prediction, rendered, stats):
        pass

    def draw(self, frame, image, roi, ai):
        image[roi.y + 50 : roi.y + 52, roi.x + 20 : roi.x + 120] = BAND_COLOUR

    def close(self):
        pass


def test_the_local_window_shows_what_observers_draw():
    """With de-identification on, the window shows a copy drawn from the raw screen: the observers'
    drawing must be on it too, not only on the recorded frame."""
    pipeline = Pipeline(config(), observers=[Band()], backend=Stub())
    raw = screen(0, CLEAR_MARK)
    frame = Frame(0, raw.copy(), time.monotonic())
    roi = Roi(*RECT)
    frame.meta[deidentify.SCREEN_META_KEY] = raw.copy()  # kept for the window when sinks.window is on
    rendered = pipeline.stages.render(frame, None, roi=roi)
    window = deidentify.window_image(frame, rendered)
    band_px = lambda im: int(np.all(im == BAND_COLOUR, axis=2).sum())  # noqa: E731
    assert window is not rendered and band_px(rendered) == 2 * 100
    assert band_px(window) == band_px(rendered)


def test_replay_smoothing_starts_afresh_when_the_ai_comes_back():
    """Cancer on frames 0-5, a backend fault on 6-7 (AI ERROR), nothing after. With a slow EMA the
    smoothed probability of the cancer frames outlives the fault unless the smoothing restarts when
    the AI is ON again: a mask on frames where the model found nothing."""
    marks = lambda i: CANCER_MARK if i < 6 else FAULT_MARK if i < 8 else CLEAR_MARK  # noqa: E731
    collect = Collect()
    source = Clip(20, mark=marks)
    Pipeline(config(overlay={"ema": 0.1}), observers=[collect], source=source, backend=Stub()).run()
    states = {frame.index: ai["state"] for frame, _, _, ai in collect.items}
    assert [states[i] for i in (5, 6, 7, 8)] == ["ON", "ERROR", "ERROR", "ON"]
    frame, _, rendered, _ = collect.items[5]
    assert mask_drawn(frame, rendered)  # the cancer frames show their mask
    for frame, _, rendered, _ in collect.items:
        if mark_of(frame) == CLEAR_MARK:
            assert not mask_drawn(frame, rendered), f"frame {frame.index}: a mask the model did not find"


def _band_observer(tmp_path) -> tuple[CaptureObserver, Roi, np.ndarray]:
    observer = CaptureObserver(tmp_path / "cases", MODEL, "synthetic")
    roi = Roi(40, 40, 240, 160, mm_per_pixel=0.1)
    image = np.full((240, 320, 3), 90, np.uint8)
    observer.on_frame(Frame(10, image.copy(), time.monotonic(), None, {"roi": roi}), None, image, {})
    # as the tracker leaves it while a needle is in view over a predicted lesion
    observer.band = YieldBand(
        np.array([[50, 50], [150, 50], [150, 60], [50, 60]], float), 0.42, (150.0, 55.0)
    )
    return observer, roi, image


def _shows_band(observer: CaptureObserver, frame: Frame, roi: Roi, ai: str) -> tuple[bool, bool]:
    """(the yield text among the banners, the band outlined) on ``frame`` drawn with the AI in ``ai``."""
    text = YIELD_TEXT.format(pct=42.0)
    drawn = frame.image.copy()
    observer.draw(frame, drawn, roi, ai)
    outlined = bool(np.all(drawn == BAND_BGR, axis=2).any())
    return any(t == text for _, t in observer.banners(frame, ai)), outlined


def test_the_expected_yield_shows_under_ai_on_only(tmp_path):
    observer, roi, image = _band_observer(tmp_path)
    frame = Frame(11, image.copy(), time.monotonic(), None, {"roi": roi})
    try:
        assert _shows_band(observer, frame, roi, "ON") == (True, True)
        for state in ("LOADING", "STALLED", "ERROR", "OFF"):
            assert _shows_band(observer, frame, roi, state) == (False, False), state
    finally:
        observer.close()


@pytest.mark.parametrize("gap", ["no signal", "AI error", "no answer"])
def test_the_expected_yield_ends_on_a_frame_the_ai_did_not_see(tmp_path, gap):
    """It is an AI finding: after a NO SIGNAL screen (the next image may be another patient's), a
    frame the AI failed on, or one it has no answer for, it is gone until the AI computes it again."""
    observer, roi, image = _band_observer(tmp_path)
    try:
        if gap == "no signal":
            shown = Frame(-1, np.full_like(image, 24), time.monotonic(), None, {"no_signal": True})
            observer.on_frame(shown, None, shown.image, {"ai": {"state": "OFF"}})
        else:
            shown = Frame(11, image.copy(), time.monotonic(), None, {"roi": roi})
            state = "ERROR" if gap == "AI error" else "ON"
            observer.on_frame(shown, None, image, {"ai": {"state": state}})
        after = Frame(12, image.copy(), time.monotonic(), None, {"roi": roi})
        assert observer.band is None
        assert _shows_band(observer, after, roi, "ON") == (False, False)
    finally:
        observer.close()


def test_a_mask_hidden_by_its_age_reads_ai_stalled_and_is_not_handed_on_as_shown():
    """Each answer takes 0.4 s: a new mask is drawn fading (older than stale_ms, 0.3 s) under AI ON, then
    hides once older than stale_ms + fade_ms (0.5 s). A hidden mask leaves raw video, which under an
    AI ON badge would read as "no cancer": the badge says AI STALLED with the mask's age, and the
    observers (the biopsy capture records "the prediction shown", /healthz reads the state drawn) get
    no prediction and that state."""
    collect = Collect()
    source = Scanner(90, mark=CANCER_MARK)
    cfg = config(live={"stale_ms": 300.0, "fade_ms": 200.0})
    Pipeline(cfg, observers=[collect], source=source, backend=Stub(everywhere, delay_s=0.4)).run()
    by_state = {}
    for frame, prediction, rendered, ai in collect.items:
        by_state.setdefault(ai["state"], []).append((frame, prediction, rendered, ai["detail"]))
    assert len(by_state.get("ON", [])) >= 3 and len(by_state.get("STALLED", [])) >= 10, sorted(by_state)
    for frame, prediction, rendered, _ in by_state["ON"]:
        assert prediction is not None and mask_drawn(frame, rendered), f"frame {frame.index}: raw under AI ON"
    for frame, prediction, rendered, detail in by_state["STALLED"]:
        assert not mask_drawn(frame, rendered)
        assert prediction is None, f"frame {frame.index}: a hidden mask handed on as shown"
        assert badge(rendered) == "STALLED"
        assert detail.endswith(" ms") and float(detail.split()[0]) >= 500, detail


def test_a_reload_keeps_the_privacy_section_the_run_started_with():
    """The source was de-identified (or not) by the section read at start; a reload that changes it
    is logged and does not apply, and the summary says what the run did."""
    with tempfile.TemporaryDirectory() as tmp:
        path, summary_path = f"{tmp}/runtime.yaml", f"{tmp}/summary.json"
        data = {
            "source": {"input": "synthetic", "fps": 30},
            "inference": {"model": str(Stub().model_path)},
            "roi": {"rect": ",".join(map(str, RECT))},
            "privacy": {"deidentify": False},
            "sinks": {"summary": summary_path},
        }
        with open(path, "w") as fh:
            yaml.safe_dump(data, fh)
        pipeline = Pipeline(config(**data), config_path=path, source=Scanner(60), backend=Stub())

        def reload():
            data["privacy"]["deidentify"] = True
            data["overlay"] = {"alpha": 0.2}  # a setting a reload does apply
            with open(path, "w") as fh:
                yaml.safe_dump(data, fh)
            pipeline.request_reload()

        threading.Timer(0.8, reload).start()
        pipeline.run()
        assert pipeline.config.overlay.alpha == 0.2  # reloaded
        assert pipeline.config.privacy.deidentify is False
        with open(summary_path) as fh:
            assert json.load(fh)["deidentified"] is False
