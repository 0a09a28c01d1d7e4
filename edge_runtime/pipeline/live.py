"""Live schedule: the newest frame wins and the raw video never waits for the AI.

Threads: capture (iterates the source and keeps only the newest frame), inference (takes the newest
frame it has not seen, runs the guarded backend) and display (the caller's thread, so OpenCV windows
work): every captured frame is rendered at capture rate.
- ``latest``: the newest mask is drawn over the current frame, with its age in the HUD;
- ``strict``: a frame gets only its own mask (display waits up to ``stale_ms`` for it when the AI took
  that frame; a frame it did not get is shown raw as ``AI ON frame not analysed``, with a banner
  saying so). An answer later than ``stale_ms`` is never drawn, so once answers come that late every
  frame is raw: AI STALLED (badge, banner, /healthz 503) until an answer comes in time again.
A mask older than ``stale_ms`` fades out over ``fade_ms`` and a banner says the AI lags; once it has
faded out the frame reads AI STALLED with the newest mask's age (badge, banner, /healthz 503).

The display never waits on the AI beyond that: a request with no answer after
``inference.deadline_ms`` turns the state STALLED (badge, banner, /healthz 503) while frames flow on,
and one unanswered for ``inference.stall_restart_s`` ends the run with :class:`InferenceStalled`.
Every join has a timeout, so a call stuck inside native code never holds up the shutdown: the
recordings are finalised and the stuck daemon thread is left to the process exit.
A non-live source (a file played by ``sonomap live``) is paced at its frame rate by the capture thread.
A source that fails part way ends the run as in replay (:class:`SourceFailed`): the frames shown before
it stay in the finalised recordings and the summary, and the error says how many they are.

A mask is drawn only under AI ON and only on the ROI it was computed for; without one the badge says
AI LOADING, waiting for a result (:class:`Shown`). NO SIGNAL screens (the reconnecting source's, and the
display's own: the last frame shown, dimmed) are never inferred nor searched for an ROI: AI OFF, no signal.
"""

from __future__ import annotations

import threading
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
from edge_runtime.errors import InferenceStalled, SonomapError
from edge_runtime.frames import Frame, Prediction
from edge_runtime.pipeline.latest_slot import LatestSlot
from edge_runtime.pipeline.pacing import Pacer
from edge_runtime.pipeline.replay import SourceFailed
from edge_runtime.pipeline.stages import FrameStages, ScheduledPipeline
from edge_runtime.roi import Roi
from edge_runtime.units import DEFAULT_FPS, MS_PER_S

WAIT_S = 0.5  # display wakes at least this often to notice stop/stalls
NO_SIGNAL_AFTER_S = 2.0  # no new frame for this long: NO SIGNAL (the /healthz frame-age limit too)
INFERENCE_JOIN_S = 1.0  # at shutdown: how long to wait for an inference call before leaving it
CAPTURE_JOIN_S = 5.0  # at shutdown: how long to wait for the capture thread's read to return
BANNER_STALE = "AI LAGGING: overlay is {age:.0f} ms old"
BANNER_SKIPPED = "AI ON: frame not analysed - raw ultrasound only"
BANNER_NO_SIGNAL = "NO SIGNAL from the video source"
NO_SIGNAL_DIM = 3  # the display's own NO SIGNAL frame: the last frame shown at a third of its brightness


def _capture(pipeline: ScheduledPipeline, slot: LatestSlot) -> None:
    error = None
    source = pipeline.stages.source
    paced = not getattr(source, "live", False)  # a file: play it at its own rate, like a capture card
    # a recorded sequence keeps its own times; other files play at their frame rate
    pacer = Pacer(bool(getattr(source, "paced_by_pts", False)))
    try:
        for frame in source:
            if paced:
                pacer.wait(
                    frame, float(getattr(source, "fps", 0) or pipeline.config.source.fps or DEFAULT_FPS)
                )
                frame.timestamp = time.monotonic()
            slot.put(frame)
            if pipeline.stages.stopping:
                break
    except BaseException as exc:
        error = exc
    slot.close(error)


def _infer(stages: FrameStages, requests: LatestSlot, results: LatestSlot, too_old_s: float) -> None:
    """A frame older than ``too_old_s`` when taken (sent during an engine build) is answered, not inferred."""
    seq, stats = 0, stages.stats
    stages.guard.prepare()  # TensorRT: context and engine on this thread, shown as AI LOADING
    while not stages.stopping:
        seq, frame = requests.wait_newer(seq, WAIT_S)
        if frame is None and requests.closed:
            break
        prediction = None
        try:
            stages.between_frames()  # also while idle (with the AI off no frame comes); may switch the AI off
            if frame is not None and stages.ai.enabled and time.monotonic() - frame.timestamp <= too_old_s:
                roi = stages.ensure_roi(frame)  # re-detects the ROI after a reload or a size change
                gray = stages.cut(frame)
                t0 = time.perf_counter()
                prediction = stages.infer(gray, frame, roi)
                stats.record("inference", (time.perf_counter() - t0) * MS_PER_S)
        except Exception as exc:  # a fault outside the backend call: AI ERROR, never ON without a mask
            stages.guard.report_fault(f"inference thread: {type(exc).__name__}: {exc}")
        if frame is None:  # idle: no frame was asked about, so none is answered
            continue
        stages.ai.answered(prediction is not None)
        results.put((frame, prediction))  # always answer, so the display never waits on a dead request


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
        self.stages, self.last_real = stages, first  # last_real: dimmed under the display's NO SIGNAL
        self.newest: tuple[Frame, Prediction | None] | None = None
        self.void_before = float("-inf")  # results for frames captured before this are never drawn
        self.roi, self.state = None, None

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


def run_live(pipeline: ScheduledPipeline) -> None:
    """Run until the source ends, ``pipeline.stop()``, ``live.duration_s`` or ``source.max_frames``."""
    stages, stats = pipeline.stages, pipeline.stages.stats
    ai = stages.ai
    live = pipeline.config.live
    strict, stale_ms, duration = live.mode == "strict", float(live.stale_ms), live.duration_s
    max_frames = pipeline.config.source.max_frames
    ai.expect_within(stale_ms if strict else None)  # strict draws no answer later than stale_ms
    frames, requests, results = LatestSlot(), LatestSlot(), LatestSlot()
    capture = threading.Thread(target=_capture, args=(pipeline, frames), name="capture", daemon=True)
    capture.start()
    seq, first = frames.wait_newer(0, None)
    # frames replaced before this thread first looked (the capture ran ahead on a loaded machine) are
    # dropped as every later replaced one: each captured frame is shown or counted
    stats.drops += max(0, seq - 1)
    if first is None:
        capture.join(timeout=CAPTURE_JOIN_S)
        _raise_source_error(frames.error)
        return
    if not first.meta.get("no_signal"):  # the ROI, chosen now; none is looked for on NO SIGNAL
        stages.cut(first)
    fps = float(getattr(stages.source, "fps", 0) or pipeline.config.source.fps or DEFAULT_FPS)
    try:
        stages.open_outputs(fps, live=True)
    except BaseException:
        # an output that cannot open (no display, a full disk) ends the run: the capture thread is
        # stopped first, as at every end, so the process never exits with it inside native code
        stages.stop()
        capture.join(timeout=CAPTURE_JOIN_S)
        raise
    too_old_s = (stale_ms + live.fade_ms) / MS_PER_S  # a frame this old when the AI takes it: not inferred
    inference = threading.Thread(
        target=_infer, args=(stages, requests, results, too_old_s), name="inference", daemon=True
    )
    inference.start()
    stats.state = "running"
    started = time.monotonic()
    frame, result_seq, shown, busy_until_seq = first, 0, Shown(stages, first), 0  # busy_until_seq: unanswered
    try:
        while frame is not None and not stages.stopping:
            result_seq, got = results.wait_newer(result_seq, 0)
            shown.take(got)
            ai_idle = results.seq >= busy_until_seq
            own: Prediction | None = None
            no_signal = bool(frame.meta.get("no_signal"))
            if frame.meta.get("session_start") and frame is not first:  # re-plugged device: new ROI
                stages.rois.forget()
                shown.void(frame.timestamp)  # and results and smoothing of the old session are void
                stages.cut(frame)
            if ai.must_restart():
                raise InferenceStalled(
                    f"no answer from the AI for {ai.pending_s():.1f} s "
                    "(inference.stall_restart_s): ending so the service restarts"
                )
            # NO SIGNAL and a screen with no image found (an undecided ROI): nothing to infer
            if not no_signal and ai_idle and ai.enabled and not stages.ensure_roi(frame).undecided:
                ai.request_sent()
                requests.put(frame)
                busy_until_seq = requests.seq
                if strict:
                    result_seq, got = results.wait_newer(result_seq, stale_ms / MS_PER_S)
                    shown.take(got)
                    own = got[1] if got is not None and got[0] is frame else None
            _show(stages, frame, shown, own, live)
            if (duration and time.monotonic() - started >= duration) or (
                max_frames and stats.frames >= max_frames
            ):
                break
            new_seq, frame = frames.wait_newer(seq, NO_SIGNAL_AFTER_S)
            if frame is None and not frames.closed:
                dimmed = shown.last_real.image // NO_SIGNAL_DIM
                frame = Frame(-1, dimmed, time.monotonic(), None, {"no_signal": True})
                stats.state = "no signal"
                continue
            stats.drops += max(0, new_seq - seq - 1)
            seq = new_seq
    finally:
        stages.stop()
        requests.close()
        inference.join(timeout=INFERENCE_JOIN_S)
        capture.join(timeout=CAPTURE_JOIN_S)
    _raise_source_error(frames.error)


def _raise_source_error(error: BaseException | None) -> None:
    """The capture thread's error, if any: bad input as :class:`SourceFailed`, as replay reports it, so
    the graph finalises the outputs and writes the summary before it says how many frames they hold."""
    if isinstance(error, SonomapError):
        raise SourceFailed(error) from error
    if error is not None:  # anything else is a bug: its traceback
        raise error


def _screen_roi(stages: FrameStages, frame: Frame) -> Roi:
    """Where a NO SIGNAL frame's banner and badge go: the last ROI when it fits the frame (the place of
    the image that was there), else the whole frame. Nothing is detected on sonomap's own screen."""
    height, width = frame.image.shape[:2]
    roi = stages.roi
    if roi is not None and not roi.undecided and roi.x + roi.w <= width and roi.y + roi.h <= height:
        return roi
    return Roi(0, 0, width, height)


def _show(stages: FrameStages, frame: Frame, shown: Shown, own: Prediction | None, live: LiveConfig) -> None:
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
        elif fade <= 0:  # faded out: raw video under AI ON would read as "no cancer"; the AI lags past
            ai = replace(ai, state=STALLED, detail=f"{age_ms:.0f} ms")  # what may be drawn, as strict's late
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
