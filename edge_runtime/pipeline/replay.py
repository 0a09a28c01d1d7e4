"""Replay schedule: every frame of a file/folder/cine, none dropped, in order.

Stages overlap on threads: decode (the source) + roi | inference + smoothing (the caller's
thread) | overlay drawing (a pool of :func:`edge_runtime.cpus.render_workers` threads, one on
small machines) | sinks + observers (one thread, taking the drawn frames in order). Bounded queues
between them give backpressure, so memory stays flat on long or looping clips.
``source.realtime`` paces decoding at the clip rate. With no overlay video, window or observer
(a replay for ``--save-masks`` or the summary alone) no overlay is drawn.
When the source decodes to yuv420p and nothing downstream needs BGR (no window, no observers),
frames stay in the decoder's YUV planes from decode to encode (:mod:`edge_runtime.yuv`).
A backend fault costs only its own frame (drawn raw with AI ERROR): the fail-safe retries on the next
frame (:meth:`edge_runtime.backends.failsafe.GuardedInference.retry_every_call`), since a replay runs
faster than real time and live's seconds of back-off would leave whole stretches without the AI. The
summary counts the frames without an answer (``frames_without_ai``); a replay the AI never answered on
has failed (:func:`ai_failure`).
Inference runs on its own thread (:class:`edge_runtime.backends.failsafe.InferenceThread`); the caller waits
for it in short slices, so a stuck call is noticed (AI STALLED in the log and metrics; after
``inference.stall_restart_s`` the run ends with :class:`InferenceStalled`, recordings finalised),
and Ctrl-C still works. Each drawn frame carries the AI state as it was when it was inferred.
A source that fails part way (an unreadable image, too many corrupt packets) does not cost the frames
decoded before it: they are inferred, drawn and written, then :class:`SourceFailed` carries the
source's error up, so the graph finalises the outputs and writes the summary before it is reported.
A frame whose ROI is undecided (no image on the screen, :func:`edge_runtime.roi.undecided_roi`) is
not inferred: it is drawn blank with AI OFF.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from edge_runtime.aistate import smoothing_restarts
from edge_runtime.backends.failsafe import InferenceThread
from edge_runtime.cpus import render_workers
from edge_runtime.errors import InferenceStalled, SonomapError
from edge_runtime.frames import Frame, Prediction, Source
from edge_runtime.pipeline.pacing import Pacer
from edge_runtime.pipeline.stages import FrameStages, ScheduledPipeline
from edge_runtime.roi import Roi
from edge_runtime.units import DEFAULT_FPS, MS_PER_S

QUEUE_DEPTH = 4
_END = object()
PUT_POLL_S = 0.1  # a blocked queue put/get re-checks for a stop this often (10 times a second)
DECODER_JOIN_POLL_S = 0.05  # at the end: drain the decoder's queue between short joins so it never blocks
WAIT_S = 0.25  # the caller re-checks for a stall or a stop this often while inference runs
WRITER_JOIN_S = 30.0  # at the end: the sinks thread writes what is queued (a few frames) and finalises


class SourceFailed(SonomapError):
    """The source failed after ``error`` was raised on the decode thread; every frame decoded before it
    went through the stages. The graph reports ``error`` once the outputs are finalised."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


class SmoothingRestarts:
    """Replay's EMA smoothing starts afresh by live's rule (:func:`edge_runtime.aistate.smoothing_restarts`)."""

    def __init__(self, stages: FrameStages):
        self.stages, self.roi, self.state = stages, None, None

    def follow(self, roi: Roi, state: str) -> None:
        """The next frame is drawn in ``roi`` with the AI in ``state``: call before smoothing it."""
        if smoothing_restarts(self.roi, self.state, roi, state):
            self.stages.reset_smoothing()
        self.roi, self.state = roi, state


def _get(q: queue.Queue, errors: list):
    """Blocking get that returns _END when another stage has failed."""
    while not errors:
        try:
            return q.get(timeout=PUT_POLL_S)
        except queue.Empty:
            continue
    return _END


def _put(q: queue.Queue, item, errors: list) -> None:
    """Blocking put that gives up when another stage has failed (no deadlock on a dead consumer)."""
    while not errors:
        try:
            q.put(item, timeout=PUT_POLL_S)
            return
        except queue.Full:
            continue


def run_replay(pipeline: ScheduledPipeline, source: Source) -> None:
    """Every frame, none dropped: decode+roi | inference | overlay (parallel) | sinks, in order."""
    stages, stats = pipeline.stages, pipeline.stages.stats
    stages.guard.retry_every_call()  # every frame is inferred: a fault skips no frame after it
    workers = render_workers()
    decoded: queue.Queue = queue.Queue(QUEUE_DEPTH)
    # Holds (frame, prediction, drawing future) in frame order; deep enough to keep every worker busy.
    inferred: queue.Queue = queue.Queue(max(QUEUE_DEPTH, 2 * workers))
    errors: list[BaseException] = []  # a stage after the source failed: the run ends at once
    source_errors: list[BaseException] = []  # the source failed: the frames decoded before it go on
    max_frames = pipeline.config.source.max_frames
    realtime = bool(pipeline.config.source.realtime)
    fps = float(getattr(source, "fps", 0) or pipeline.config.source.fps or DEFAULT_FPS)
    by_pts = bool(getattr(source, "paced_by_pts", False))
    stages.yuv_render = bool(stages.prefer_yuv and not stages.observers and not pipeline.config.sinks.window)
    # Without an overlay video, a window or an observer nobody sees a drawn frame (e.g. a replay
    # for --save-masks and the summary only), so the overlay stage is skipped.
    render = bool(pipeline.config.sinks.video or pipeline.config.sinks.window or stages.observers)

    def decode():
        try:
            pacer = Pacer(by_pts)
            it = iter(source)
            while not stages.stopping:
                t0 = time.perf_counter()
                frame = next(it, None)
                if frame is None:
                    break
                t1 = time.perf_counter()
                stats.record("decode", (t1 - t0) * MS_PER_S)
                # The ROI is cut here, so the inference thread (the schedule's slowest stage on a
                # GPU) does nothing but infer.
                roi = stages.ensure_roi(frame)
                gray = None if roi.undecided else stages.cut(frame, roi)  # no image: nothing to infer
                stats.record("roi", (time.perf_counter() - t1) * MS_PER_S)
                if realtime:  # a recorded sequence keeps its own times; other files play at their frame rate
                    pacer.wait(frame, fps)
                _put(decoded, (frame, roi, gray), errors)
                if max_frames and frame.index + 1 >= max_frames:
                    break
        except BaseException as exc:
            if not stages.stopping:  # a read cut short by a stop (SIGTERM, a failed stage) is no input error
                source_errors.append(exc)
        finally:
            decoded.put(_END)

    def draw(frame, roi, prediction, mask, fault, ai):
        t0 = time.perf_counter()
        rendered = stages.render(frame, prediction, fault_banner=fault, roi=roi, mask=mask, ai=ai)
        stats.record("overlay", (time.perf_counter() - t0) * MS_PER_S)
        return rendered

    def write():
        try:
            while True:
                item = inferred.get()
                if item is _END:
                    break
                frame, prediction, drawing, ai = item
                rendered = None if drawing is None else drawing.result()  # re-raises a drawing error here
                t1 = time.perf_counter()
                stages.deliver(frame, prediction, rendered, ai)
                stats.record("sinks", (time.perf_counter() - t1) * MS_PER_S)
                stats.record("end_to_end", (time.monotonic() - frame.timestamp) * MS_PER_S)
        except BaseException as exc:
            errors.append(exc)
            stages.finish()

    restarts = SmoothingRestarts(stages)
    decoder = threading.Thread(target=decode, name="decode", daemon=True)
    writer = threading.Thread(target=write, name="sinks", daemon=True)
    painters = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render")
    inference = InferenceThread()
    decoder.start()
    writer.start()
    stats.state = "running"
    sinks_open = False
    try:
        while True:
            item = _get(decoded, errors)
            if item is _END or errors:
                break
            frame, roi, gray = item
            stages.between_frames()
            if not sinks_open:
                stages.open_outputs(fps, live=False)
                sinks_open = True
            t1 = time.perf_counter()
            prediction = _infer(stages, inference, gray, frame, roi)
            if stages.stopping:
                break
            stats.record("inference", (time.perf_counter() - t1) * MS_PER_S)
            ai = stages.ai_status(roi=roi)
            restarts.follow(roi, ai.state)
            mask = stages.smooth(prediction)  # EMA state: in frame order, here
            drawing = (
                painters.submit(draw, frame, roi, prediction, mask, stages.guard.banner(), ai)
                if render
                else None
            )
            _put(inferred, (frame, prediction, drawing, ai), errors)
    finally:
        stages.finish()
        while decoder.is_alive():  # unblock a decoder waiting on a full queue
            try:
                decoded.get_nowait()
            except queue.Empty:
                decoder.join(DECODER_JOIN_POLL_S)
        while writer.is_alive():  # the writer drains what is queued, then stops
            try:
                inferred.put(_END, timeout=PUT_POLL_S)
                break
            except queue.Full:
                continue
        writer.join(timeout=WRITER_JOIN_S)
        painters.shutdown(wait=True)
    if errors:
        raise errors[0]
    if source_errors and isinstance(source_errors[0], SonomapError):  # bad input: reported with the count
        raise SourceFailed(source_errors[0]) from source_errors[0]
    if source_errors:  # anything else is a bug: its traceback, once the frames before it are written
        raise source_errors[0]


def ai_failure(summary: dict, model: str | Path | None) -> SonomapError | None:
    """The error of a replay whose AI never answered: frames were handed to it (``frames_without_ai``)
    and none got a prediction (``inferred``), so the outputs hold raw ultrasound only. None when the AI
    answered at least once (its faulted frames are counted in the summary) or was never asked (switched
    off, no image found). ``model``: the model file, named in the message."""
    if summary.get("inferred") or not summary.get("frames_without_ai"):
        return None
    return SonomapError(
        f"{model or 'the backend'}: the AI gave no answer on any of the {summary['frames_without_ai']} "
        f"frame(s) it was given ({summary.get('last_error') or 'no prediction'}); the outputs were "
        "finalised with the raw ultrasound only"
    )


def _infer(
    stages: FrameStages, inference: InferenceThread, gray: np.ndarray, frame: Frame, roi: Roi
) -> Prediction | None:
    """The guarded backend on the inference thread, then ``stages.accept``; None when the AI is off or
    the run stops.
    Raises InferenceStalled once no answer came for ``inference.stall_restart_s``."""
    ai = stages.ai
    if not ai.enabled or roi.undecided:
        return None
    ai.request_sent()
    # TensorRT prepares its engine inside the first call, on this thread: AI LOADING, not a stall
    inference.submit(stages.guard.infer, gray)
    while not inference.wait(WAIT_S):
        stages.ai_status()  # logs and counts a stall once it passes the deadline
        if ai.must_restart():
            raise InferenceStalled(
                f"frame {frame.index}: no answer from the AI for {ai.pending_s():.1f} s "
                "(inference.stall_restart_s)"
            )
        if stages.stopping:
            return None
    prediction = stages.accept(inference.result(), frame, roi)
    ai.answered(prediction is not None)
    return prediction
