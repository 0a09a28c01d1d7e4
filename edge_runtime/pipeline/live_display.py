"""What the live display draws on each frame: which mask, how faded, the AI state and the banners.

The live schedule (:mod:`edge_runtime.pipeline.live`) calls :func:`show` for every captured frame,
with the display's memory (:class:`Shown`) and, in ``strict`` mode, the frame's own prediction.
- ``latest``: the newest mask computed for the frame's ROI is drawn, with its age in the HUD. A mask
  older than ``stale_ms`` fades out over ``fade_ms`` and a banner says the AI lags; once it has faded
  out the frame reads AI STALLED with the newest mask's age;
- ``strict``: a frame gets only its own mask; a frame the AI did not get is shown raw as
  ``AI ON frame not analysed``, with a banner saying so.
A frame with no mask to draw under AI ON reads AI LOADING (waiting for a result), so raw video never
reads as "no cancer". A NO SIGNAL screen is AI OFF, no signal, with its banner, drawn in the last ROI
when that fits the screen; nothing is detected on it.

Inputs: the frame, the stages, the display's memory, the frame's own prediction and the ``live``
config. Outputs: the frame rendered and delivered to the sinks and observers, its times in the stats.
Files: none (the sinks write).
"""

from __future__ import annotations

import time
from dataclasses import replace

from edge_runtime.aistate import (
    GAP_STATES,
    LOADING,
    NO_SIGNAL_DETAIL,
    OFF,
    ON,
    SKIPPED_DETAIL,
    STALLED,
    WAITING_DETAIL,
    smoothing_restarts,
)
from edge_runtime.config_schema import LiveConfig
from edge_runtime.frames import Frame, Prediction
from edge_runtime.pipeline.stages import FrameStages
from edge_runtime.roi import Roi
from edge_runtime.units import MS_PER_S

BANNER_STALE = "AI LAGGING: overlay is {age:.0f} ms old"
BANNER_SKIPPED = "AI ON: frame not analysed - raw ultrasound only"
BANNER_NO_SIGNAL = "NO SIGNAL from the video source"


def _fade(age_ms: float, stale_ms: float, fade_ms: float) -> float:
    if age_ms <= stale_ms:
        return 1.0
    return max(0.0, 1.0 - (age_ms - stale_ms) / max(fade_ms, 1e-6))


class Shown:
    """The display thread's memory: the newest result that may be drawn, the last real frame shown, the
    last frame's ROI and AI state. Results for frames captured before a gap (NO SIGNAL, a new session, the
    AI entering LOADING, ERROR or OFF) are void; the smoothing restarts after a gap, on a new ROI and when
    the AI answers again. A stall voids nothing: the answer ending it is drawn with its true age (faded)."""

    def __init__(self, stages: FrameStages, first: Frame):
        self.stages = stages
        self.last_real = first  # dimmed under the display's own NO SIGNAL screen
        self.newest: tuple[Frame, Prediction | None] | None = None
        self.void_before = float("-inf")  # results for frames captured before this are never drawn
        self.roi: Roi | None = None
        self.state: str | None = None

    def take(self, result: tuple[Frame, Prediction | None] | None) -> None:
        """A result from the inference thread: kept unless its frame was captured before a gap."""
        if result is not None and result[0].timestamp >= self.void_before:
            self.newest = result

    def void(self, since: float) -> None:
        """Results for frames captured before ``since`` are void, and the smoothing starts afresh."""
        self.newest, self.void_before = None, since
        self.stages.reset_smoothing()

    def update(self, frame: Frame, roi: Roi, state: str) -> None:
        """``frame`` is about to be drawn in ``roi`` with the AI in ``state`` (OFF on NO SIGNAL)."""
        if (state != self.state and state in GAP_STATES) or (self.roi is not None and roi != self.roi):
            # this frame on (it may just have been sent to the AI); restarts the smoothing too. A new ROI
            # voids too: back in the old one (A, B, A), a mask from before the change is not drawn again
            self.void(frame.timestamp)
        elif smoothing_restarts(self.roi, self.state, roi, state):
            self.stages.reset_smoothing()  # the AI answers again (after a stall), or another image
        self.state, self.roi = state, roi
        if not frame.meta.get("no_signal"):
            self.last_real = frame

    def for_roi(self, roi: Roi) -> tuple[Frame, Prediction | None] | None:
        """The newest result if computed for ``roi`` (same place and size): only then is it drawn."""
        prediction = self.newest[1] if self.newest else None
        fits = prediction is not None and prediction.roi == roi
        return self.newest if fits and prediction.mask.shape[:2] == (roi.h, roi.w) else None


def _screen_roi(stages: FrameStages, frame: Frame) -> Roi:
    """Where a NO SIGNAL frame's banner and badge go: the last ROI when it fits the frame (the place of
    the image that was there), else the whole frame. Nothing is detected on sonomap's own screen."""
    height, width = frame.image.shape[:2]
    roi = stages.roi
    if roi is not None and not roi.undecided and roi.x + roi.w <= width and roi.y + roi.h <= height:
        return roi
    return Roi(0, 0, width, height)


def show(stages: FrameStages, frame: Frame, shown: Shown, own: Prediction | None, live: LiveConfig) -> None:
    """Render ``frame`` with what may be drawn on it (``own``: its own prediction, strict mode) and
    deliver it to the sinks and observers; records its overlay, sinks, capture-to-display and mask-age
    times."""
    strict, stale_ms, fade_ms = live.mode == "strict", float(live.stale_ms), float(live.fade_ms)
    now, banners, fade = time.monotonic(), [], 1.0
    no_signal = bool(frame.meta.get("no_signal"))
    roi = _screen_roi(stages, frame) if no_signal else stages.ensure_roi(frame)
    shown.update(frame, roi, OFF if no_signal else stages.ai_status(roi=roi).state)
    result = None if no_signal else (frame, own) if strict else shown.for_roi(roi)
    prediction = None if result is None else result[1]
    age_ms = None if prediction is None else (now - result[0].timestamp) * MS_PER_S
    ai = stages.ai_status(age_ms, roi)
    if ai.state != ON:  # no mask: LOADING, STALLED, ERROR and OFF all say raw ultrasound only
        prediction, age_ms = None, None
    if no_signal:
        ai = replace(ai, state=OFF, detail=NO_SIGNAL_DETAIL)
        banners.append(("warning", BANNER_NO_SIGNAL))
    elif prediction is None and ai.state == ON:  # raw video must not read as a bare AI ON ("no cancer")
        waiting = replace(ai, state=LOADING, detail=WAITING_DETAIL)  # latest: nothing for this ROI yet
        ai = replace(ai, detail=SKIPPED_DETAIL) if strict else waiting  # strict: the AI was busy
        if strict:  # the AI answers in time (else STALLED), but not for this frame: say it is raw
            banners.append(("info", BANNER_SKIPPED))
    elif prediction is not None and not strict:
        fade = _fade(age_ms, stale_ms, fade_ms)
        if 0 < fade < 1:
            banners.append(("warning", BANNER_STALE.format(age=age_ms)))
        elif fade <= 0:
            # faded out: raw video under AI ON would read as "no cancer"; the AI lags past what may be
            # drawn, as strict's late answers do
            ai = replace(ai, state=STALLED, detail=f"{age_ms:.0f} ms")
    t0 = time.perf_counter()
    hud_age = age_ms if not strict else None  # strict: a frame's own mask, no age in the HUD line
    rendered = stages.render(frame, prediction, fade, banners, hud_age, smooth=not strict, roi=roi, ai=ai)
    t1 = time.perf_counter()
    # what the observers and recorders are told was shown: not a mask the fade has hidden
    stages.deliver(frame, prediction if fade > 0 else None, rendered, ai)
    t2 = time.perf_counter()
    stats = stages.stats
    stats.record("overlay", (t1 - t0) * MS_PER_S)
    stats.record("sinks", (t2 - t1) * MS_PER_S)
    if frame.index >= 0:
        stats.record("capture_to_display", (time.monotonic() - frame.timestamp) * MS_PER_S)
        if hud_age is not None:
            stats.record("mask_age", hud_age)
