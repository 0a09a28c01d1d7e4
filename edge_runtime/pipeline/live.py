"""Live schedule: the newest frame wins and the raw video never waits for the AI.

Threads: capture (iterates the source and keeps only the newest frame), inference (takes
the newest frame it has not seen, runs the guarded backend) and display (the caller's
thread, so OpenCV windows work): every captured frame is rendered at capture rate.
- ``latest``: the newest mask is drawn over the current frame, with its age in the HUD;
- ``strict``: a frame gets only its own mask (display waits up to ``stale_ms`` for it
  when the AI took that frame; frames the AI skipped are shown raw).
A mask older than ``stale_ms`` fades out over ``fade_ms`` and a banner says the AI lags.

The display never waits on the AI beyond that: a request with no answer after
``inference.deadline_ms`` turns the state STALLED (badge, banner, /healthz 503) while frames flow on,
and one unanswered for ``inference.stall_restart_s`` ends the run with :class:`InferenceStalled`.
Every join has a timeout, so a call stuck inside native code never holds up the shutdown: the
recordings are finalised and the stuck daemon thread is left to the process exit.
A non-live source (a file played by ``sonomap live``) is paced at its frame rate by the capture thread.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from edge_runtime.aistate import OFF, STALLED
from edge_runtime.errors import InferenceStalled
from edge_runtime.frames import Frame, Prediction
from edge_runtime.pipeline.stages import FrameStages, ScheduledPipeline
from edge_runtime.units import DEFAULT_FPS, MS_PER_S

WAIT_S = 0.5  # display wakes at least this often to notice stop/stalls
NO_SIGNAL_AFTER_S = 2.0  # no new frame for this long: NO SIGNAL (the /healthz frame-age limit too)
INFERENCE_JOIN_S = 1.0  # at shutdown: how long to wait for an inference call before leaving it
CAPTURE_JOIN_S = 5.0  # at shutdown: how long to wait for the capture thread's read to return
BANNER_STALE = "AI LAGGING: overlay is {age:.0f} ms old"
BANNER_HIDDEN = "AI LAGGING: overlay hidden (older than {limit:.0f} ms)"


class LatestSlot:
    """One frame slot with a sequence number; ``put`` overwrites (counting what it drops)."""

    def __init__(self):
        self._cond = threading.Condition()
        self.item = None
        self.seq = 0
        self.closed = False
        self.error: BaseException | None = None

    def put(self, item) -> None:
        with self._cond:
            self.item = item
            self.seq += 1
            self._cond.notify_all()

    def close(self, error: BaseException | None = None) -> None:
        with self._cond:
            self.closed = True
            self.error = error
            self._cond.notify_all()

    def wait_newer(self, seq: int, timeout: float):
        """(seq, item) newer than ``seq``, or (seq, None) on timeout/close."""
        with self._cond:
            self._cond.wait_for(lambda: self.seq > seq or self.closed, timeout)
            if self.seq > seq:
                return self.seq, self.item
            return seq, None


def _capture(pipeline: ScheduledPipeline, slot: LatestSlot) -> None:
    error = None
    source = pipeline.stages.source
    paced = not getattr(source, "live", False)  # a file: play it at its own rate, like a capture card
    start, last_index = None, -1
    try:
        for frame in source:
            if paced:
                fps = float(getattr(source, "fps", 0) or pipeline.config.source.fps or DEFAULT_FPS)
                # a recorded sequence keeps its own times; other files play at their frame rate
                at = (
                    frame.pts
                    if getattr(source, "paced_by_pts", False) and frame.pts is not None
                    else frame.index / fps
                )
                if start is None or frame.index <= last_index:  # first frame, or a looping file restarted
                    start = time.monotonic() - at
                last_index = frame.index
                delay = start + at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                frame.timestamp = time.monotonic()
            slot.put(frame)
            if pipeline.stages.stopping:
                break
    except BaseException as exc:
        error = exc
    slot.close(error)


def _infer(stages: FrameStages, requests: LatestSlot, results: LatestSlot) -> None:
    seq = 0
    stats = stages.stats
    stages.guard.prepare()  # TensorRT: context and engine on this thread, shown as AI LOADING
    while not stages.stopping:
        seq, frame = requests.wait_newer(seq, WAIT_S)
        if frame is None and requests.closed:
            break
        prediction = None
        try:
            stages.between_frames()  # also while idle: with the AI off no frame comes to switch it back on
            if frame is None:
                continue
            roi = stages.ensure_roi(frame)  # re-detects the ROI after a reload or a size change
            gray = stages.cut(frame)
            t0 = time.perf_counter()
            prediction = stages.infer(gray, frame, roi)
            stats.record("inference", (time.perf_counter() - t0) * MS_PER_S)
        except Exception as exc:
            stats.errors += 1
            stats.last_error = f"inference thread: {type(exc).__name__}: {exc}"
            stats.state = "degraded"
        stages.ai.answered(prediction is not None)
        results.put((frame, prediction))  # always answer, so the display never waits on a dead request


def _fade(age_ms: float, stale_ms: float, fade_ms: float) -> float:
    if age_ms <= stale_ms:
        return 1.0
    return max(0.0, 1.0 - (age_ms - stale_ms) / max(fade_ms, 1e-6))


def run_live(pipeline: ScheduledPipeline) -> None:
    """Run until the source ends, ``pipeline.stop()``, ``live.duration_s`` or ``source.max_frames``."""
    stages, stats = pipeline.stages, pipeline.stages.stats
    ai = stages.ai
    live = pipeline.config.live
    strict = live.mode == "strict"
    stale_ms, fade_ms = float(live.stale_ms), float(live.fade_ms)
    duration = live.duration_s
    max_frames = pipeline.config.source.max_frames
    frames, requests, results = LatestSlot(), LatestSlot(), LatestSlot()
    capture = threading.Thread(target=_capture, args=(pipeline, frames), name="capture", daemon=True)
    capture.start()
    seq, first = frames.wait_newer(0, None)
    if first is None:
        capture.join(timeout=CAPTURE_JOIN_S)
        if frames.error:
            raise frames.error
        return
    stages.cut(first)
    stages.open_outputs(
        float(getattr(stages.source, "fps", 0) or pipeline.config.source.fps or DEFAULT_FPS),
        live=True,
    )
    inference = threading.Thread(
        target=_infer, args=(stages, requests, results), name="inference", daemon=True
    )
    inference.start()
    stats.state = "running"
    started = time.monotonic()
    frame, result_seq, newest = first, 0, None
    busy_until_seq = 0  # requests.seq whose result has not arrived yet: the AI is busy
    try:
        while frame is not None and not stages.stopping:
            result_seq, got = results.wait_newer(result_seq, 0)
            if got is not None:
                newest = got
            ai_idle = results.seq >= busy_until_seq
            own: Prediction | None = None
            if frame.meta.get("session_start") and frame is not first:  # re-plugged device: new ROI
                stages.rois.forget()
                newest = None  # and masks of the old session are void
                stages.cut(frame)
            if ai.must_restart():
                raise InferenceStalled(
                    f"no answer from the AI for {ai.pending_s():.1f} s "
                    "(inference.stall_restart_s): ending so the service restarts"
                )
            # NO SIGNAL (resilient.py) and a screen with no image found (an undecided ROI): nothing to infer
            if ai_idle and ai.enabled and not frame.meta.get("no_signal") and not _undecided(stages, frame):
                ai.request_sent()
                requests.put(frame)
                busy_until_seq = requests.seq
                if strict:
                    result_seq, got = results.wait_newer(result_seq, stale_ms / MS_PER_S)
                    if got is not None:
                        newest = got
                        own = got[1] if got[0] is frame else None
            _show(stages, frame, newest, own, strict, stale_ms, fade_ms)
            if (duration and time.monotonic() - started >= duration) or (
                max_frames and stats.frames >= max_frames
            ):
                break
            new_seq, frame = frames.wait_newer(seq, NO_SIGNAL_AFTER_S)
            if frame is None and not frames.closed:
                frame = Frame(-1, last_image(newest, first), time.monotonic(), None, {})
                stats.state = "no signal"
                continue
            stats.drops += max(0, new_seq - seq - 1)
            seq = new_seq
    finally:
        stages.stop()
        requests.close()
        inference.join(timeout=INFERENCE_JOIN_S)
        capture.join(timeout=CAPTURE_JOIN_S)
    if frames.error is not None:
        raise frames.error


def _undecided(stages: FrameStages, frame: Frame) -> bool:
    """Whether no ROI is decided on ``frame`` (no image on the screen): the whole frame is blanked."""
    return bool(stages.ensure_roi(frame).undecided)


def last_image(newest: tuple[Frame, Prediction | None] | None, first: Frame) -> np.ndarray:
    """What to show while no frame arrives: the last frame, dimmed, with a banner."""
    return (newest[0].image if newest else first.image) // 3


def _show(
    stages: FrameStages,
    frame: Frame,
    newest: tuple[Frame, Prediction | None] | None,
    own: Prediction | None,
    strict: bool,
    stale_ms: float,
    fade_ms: float,
) -> None:
    now = time.monotonic()
    banners = []
    prediction, fade, age_ms = None, 1.0, None
    roi = stages.ensure_roi(frame) if frame.index >= 0 else stages.roi
    ai_state = stages.ai_status(roi=roi).state
    if frame.index < 0 or frame.meta.get("no_signal"):
        banners.append(("warning", "NO SIGNAL from the video source"))
    elif ai_state in (STALLED, OFF):
        pass  # no mask: the last one is from before the stall (or the AI is off: operator, no image)
    elif strict:
        prediction = own
        age_ms = None if own is None else (now - frame.timestamp) * MS_PER_S
    elif newest is not None and newest[1] is not None:
        src, prediction = newest
        age_ms = (now - src.timestamp) * MS_PER_S
        fade = _fade(age_ms, stale_ms, fade_ms)
        if fade < 1.0:
            banners.append(
                (
                    "warning",
                    BANNER_STALE.format(age=age_ms)
                    if fade > 0
                    else BANNER_HIDDEN.format(limit=stale_ms + fade_ms),
                )
            )
    t0 = time.perf_counter()
    ai = stages.ai_status(age_ms if prediction is not None else None, roi)
    hud_age = age_ms if not strict else None  # strict: a frame's own mask, no age in the HUD line
    rendered = stages.render(frame, prediction, fade, banners, hud_age, smooth=not strict, roi=roi, ai=ai)
    t1 = time.perf_counter()
    stages.deliver(frame, prediction, rendered, ai)
    t2 = time.perf_counter()
    stats = stages.stats
    stats.record("overlay", (t1 - t0) * MS_PER_S)
    stats.record("sinks", (t2 - t1) * MS_PER_S)
    if frame.index >= 0:
        stats.record("capture_to_display", (time.monotonic() - frame.timestamp) * MS_PER_S)
        if hud_age is not None:
            stats.record("mask_age", hud_age)
