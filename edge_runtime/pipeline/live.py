"""Live schedule: the newest frame wins and the raw video never waits for the AI.

Threads: capture (iterates the source and keeps only the newest frame), inference (takes the newest
frame it has not seen, runs the guarded backend) and display (the caller's thread, so OpenCV windows
work): every captured frame is rendered at capture rate, with what may be drawn on it
(:mod:`edge_runtime.pipeline.live_display`: the mask, its fade, the AI state and the banners).
- ``latest``: the newest mask is drawn over the current frame, with its age in the HUD;
- ``strict``: a frame gets only its own mask (display waits up to ``stale_ms`` for it when the AI took
  that frame; a frame it did not get is shown raw as ``AI ON frame not analysed``, with a banner
  saying so). An answer later than ``stale_ms`` is never drawn, so once answers come that late every
  frame is raw: AI STALLED (badge, banner, /healthz 503) until an answer comes in time again.

The display never waits on the AI beyond that: a request with no answer after
``inference.deadline_ms`` turns the state STALLED (badge, banner, /healthz 503) while frames flow on,
and one unanswered for ``inference.stall_restart_s`` ends the run with :class:`InferenceStalled`.
Every join has a timeout, so a call stuck inside native code never holds up the shutdown: the
recordings are finalised and the stuck daemon thread is left to the process exit.
A non-live source (a file played by ``sonomap live``) is paced at its frame rate by the capture thread.
A source that fails part way ends the run as in replay (:class:`SourceFailed`): the frames shown before
it stay in the finalised recordings and the summary, and the error says how many they are.
No new frame for ``NO_SIGNAL_AFTER_S`` shows the display's own NO SIGNAL screen (the last frame shown,
dimmed). NO SIGNAL screens (the reconnecting source's and the display's) are never inferred nor searched
for an ROI, and a frame whose screen holds no image found (an undecided ROI) is not inferred.
"""

from __future__ import annotations

import threading
import time

from edge_runtime.errors import InferenceStalled, SonomapError
from edge_runtime.frames import Frame, Prediction
from edge_runtime.pipeline.latest_slot import LatestSlot
from edge_runtime.pipeline.live_display import Shown, show
from edge_runtime.pipeline.pacing import Pacer
from edge_runtime.pipeline.replay import SourceFailed
from edge_runtime.pipeline.stages import FrameStages, ScheduledPipeline
from edge_runtime.units import DEFAULT_FPS, MS_PER_S

WAIT_S = 0.5  # display wakes at least this often to notice stop/stalls
NO_SIGNAL_AFTER_S = 2.0  # no new frame for this long: NO SIGNAL (the /healthz frame-age limit too)
INFERENCE_JOIN_S = 1.0  # at shutdown: how long to wait for an inference call before leaving it
CAPTURE_JOIN_S = 5.0  # at shutdown: how long to wait for the capture thread's read to return
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
            # a reload may just have switched the AI off
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
    frame, result_seq, shown = first, 0, Shown(stages, first)
    busy_until_seq = 0  # requests.seq whose result has not arrived yet: the AI is busy
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
            show(stages, frame, shown, own, live)
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
