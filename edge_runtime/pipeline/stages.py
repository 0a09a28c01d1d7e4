"""The frame's path: cut the ROI -> infer -> smooth -> render -> deliver (recorders, window, observers).

Input: a frame from the de-identified source (:mod:`edge_runtime.pipeline.roi_chooser` chose its ROI on
the raw screen; :mod:`edge_runtime.pipeline.deidentify` blanked the rest and tagged the frame with it).
Output: the rendered frame in the recorders (``sinks.*``), the local window and every observer. A
schedule (``replay``, ``live``) calls the stages in this order, each on the thread it picks; no stage
calls back into a schedule, and none into the graph that built them, except
:meth:`FrameStages.between_frames` (a requested config reload). Every rendered frame carries the AI's
state (:mod:`edge_runtime.aistate`), OFF on a NO SIGNAL screen or a frame whose ROI is undecided, and a
mask only under AI ON (the rule: :mod:`.drawn_state`): :meth:`FrameStages.render` draws them,
:meth:`FrameStages.deliver` hands the state to observers as ``stats["ai"]`` (:mod:`.outputs`).
``stop()`` and ``request_reload()`` are safe from other threads.
Files: through the recorders and mask dumps (``sinks.*``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np

from edge_runtime import yuv
from edge_runtime.aistate import AiMonitor, AiStatus
from edge_runtime.backends.failsafe import GuardedInference
from edge_runtime.config_schema import RuntimeConfig
from edge_runtime.frames import Frame, Observer, Prediction, Source
from edge_runtime.mask_filter import filter_mask
from edge_runtime.pipeline import deidentify, drawn_state, outputs, roi_chooser
from edge_runtime.preprocess import to_gray
from edge_runtime.render.overlay import Overlay
from edge_runtime.roi import Roi, undecided_status
from edge_runtime.sinks import recordings
from edge_runtime.sinks.window import WindowSink
from edge_runtime.sinks.writers import open_sinks
from edge_runtime.stats import Stats
from edge_runtime.units import DEFAULT_FPS

_NOW = object()  # render: take the fail-safe banner / smoothed mask from the current state
_NOTHING_SMOOTHED = (None, None, None)  # smooth()'s cache: (prediction, overlay, mask drawn for it)


class FrameStages:
    """The stages of one run and the state they share (ROI, smoothing, recorders). Built by the graph;
    the schedules read ``config``, ``stats``, ``ai``, ``guard`` and ``observers`` and call the stages."""

    def __init__(
        self,
        config: RuntimeConfig,
        overlay: Overlay,
        guard: GuardedInference,
        stats: Stats,
        observers: list[Observer],
        reload: Callable[[], None],
    ):
        self.config = config
        self.overlay = overlay
        self.guard = guard
        self.ai: AiMonitor = guard.monitor
        self.stats = stats
        self.observers = observers
        self.rois = roi_chooser.RoiChooser(config)
        self.source: Source | None = None
        self.sinks: dict = {}
        self.outputs: dict[str, str] = {}
        self.failed_outputs: dict[str, str] = {}  # recorder name -> the error that stopped it (once closed)
        self.window: WindowSink | None = None
        self.show_rec = False  # open_outputs: whether the HUD shows the recorder's state (live)
        # Replay renders and encodes in the decoder's YUV planes when the source gives them and no
        # consumer needs BGR (window, observers); the replay schedule decides. False forces BGR.
        self.prefer_yuv = True
        self.yuv_render = False
        self._reload = reload
        self._stop = threading.Event()
        self._reload_requested = threading.Event()
        self._smoothed = _NOTHING_SMOOTHED
        self._dumped: Prediction | None = None  # the prediction the mask dump wrote last

    # --- control (any thread) ------------------------------------------------------
    def stop(self) -> None:
        """End the run from any thread; closing the source unblocks a read that waits on it."""
        self._stop.set()
        if self.source is not None:
            self.source.close()

    def finish(self) -> None:
        """A schedule's own end (a stage failed, no frames left); the graph closes the source later."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_reload(self) -> None:
        self._reload_requested.set()

    def take_reload_request(self) -> bool:
        """True once per :meth:`request_reload` (the graph's reload calls it)."""
        requested, _ = self._reload_requested.is_set(), self._reload_requested.clear()
        return requested

    def between_frames(self) -> None:
        """A schedule calls this between frames: a requested config reload is applied here."""
        if self._reload_requested.is_set():
            self._reload()

    def reconfigure(self, config: RuntimeConfig, overlay: Overlay) -> None:
        """A reloaded config and its overlay; the ROI is chosen again on the next frame (the old one
        stays for the live display thread meanwhile)."""
        self.config, self.overlay, self.rois.config = config, overlay, config
        self._smoothed = _NOTHING_SMOOTHED  # a result drawn again is drawn in the new style
        self.rois.forget()
        self.ai.configure(config.inference)

    # --- outputs ---------------------------------------------------------------------
    def open_outputs(self, fps: float, live: bool) -> None:
        s = self.config.sinks
        self.sinks, self.window, self.outputs = open_sinks(s, float(s.fps or fps or DEFAULT_FPS), live)
        self.show_rec = live  # a live session's recorder state is on screen; a replay's is no recording
        if live:  # from the first frame on: a session recording must not look unrecorded until a write
            self.stats.recording = recordings.recorder_state(self.sinks)

    def close_outputs(self) -> int:
        """Finalise the recorders, close the window; the frames live recorders dropped. Their last state
        goes into the stats, their errors into ``failed_outputs`` (the summary)."""
        if self.sinks and self.stats.frames:
            self.stats.recording = recordings.recorder_state(self.sinks)
        dropped = outputs.close_recorders(self.sinks, self.failed_outputs)
        self.sinks = {}
        if self.window is not None:
            self.window.close()
            self.window = None
        return dropped

    # --- the stages, in order ----------------------------------------------------------
    @property
    def roi(self) -> Roi | None:
        """The ROI chosen last (None before the first frame)."""
        return self.rois.roi

    def ensure_roi(self, frame: Frame) -> Roi:
        """The frame's ROI: the one it was blanked for, else chosen now (de-identification off)."""
        return self.rois.choose(frame)

    def cut(self, frame: Frame, roi: Roi | None = None) -> np.ndarray:
        """Frame -> gray ROI pixels (a YUV frame: the Y plane's); ``roi`` default: :meth:`ensure_roi`."""
        roi = roi or self.ensure_roi(frame)
        if isinstance(frame, yuv.YuvFrame):
            return yuv.gray_roi(frame.i420, roi)
        return to_gray(roi.crop(frame.image))

    def infer(
        self, gray: np.ndarray, frame: Frame | None = None, roi: Roi | None = None
    ) -> Prediction | None:
        """Gray ROI -> Prediction (tagged with its frame and ROI), or None on a fault (passthrough) or
        an undecided ROI: the guarded backend (:class:`GuardedInference`), then :meth:`accept`."""
        return None if roi is not None and roi.undecided else self.accept(self.guard.infer(gray), frame, roi)

    def accept(
        self, prediction: Prediction | None, frame: Frame | None, roi: Roi | None
    ) -> Prediction | None:
        """The guarded backend's answer for ``frame``: nothing predicted inside the frame's blanked boxes,
        the mask through the manifest's mask filter (:mod:`edge_runtime.mask_filter`), tagged with the
        frame and its ROI, counted. A schedule that runs ``guard.infer`` on a thread of its own calls
        this with the answer (the backend never calls back into the stages)."""
        if prediction is not None:
            deidentify.clear_blanked(prediction, frame)
            # the finding the cart shows and records is the mask after the model's filter
            prediction.mask = filter_mask(
                prediction.mask, float(prediction.native_prob.max()), self.overlay.mask_filter
            )
            prediction.frame, prediction.roi = frame, roi or self.roi
            self.stats.inferred += 1
            self.stats.record("backend", prediction.latency_ms)
        return prediction

    def ai_status(self, mask_age_ms: float | None = None, roi: Roi | None = None) -> AiStatus:
        """The AI's state now (``mask_age_ms``: age of the mask drawn on the frame, if any); OFF on a
        frame whose ``roi`` is undecided (:func:`edge_runtime.roi.undecided_roi`)."""
        status = self.ai.status(self.guard.fault, mask_age_ms)
        return undecided_status(status) if roi is not None and roi.undecided else status

    def smooth(self, prediction: Prediction | None, smooth: bool = True) -> np.ndarray | None:
        """Prediction -> the mask to draw (EMA-smoothed when enabled and ``smooth``; an own
        ``overlay.threshold`` and the heat map's levels either way). Stateful: call in frame order."""
        if prediction is None:
            return None
        overlay, (last, smoothed_by, mask) = self.overlay, self._smoothed  # a reload swaps the overlay
        if prediction is last and overlay is smoothed_by:
            return mask  # live 'latest' redraws one prediction on many frames: smooth it once
        mask = overlay.smooth(prediction.mask, prediction, temporal=smooth)
        self._smoothed = (prediction, overlay, mask)
        return mask

    def reset_smoothing(self) -> None:
        """Start the smoothing afresh (a new session, ROI or NO SIGNAL; the AI back after a gap)."""
        self._smoothed = _NOTHING_SMOOTHED
        self.overlay.reset_smoothing()

    def render(
        self,
        frame: Frame,
        prediction: Prediction | None,
        fade: float = 1.0,
        extra_banners: list | None = None,
        mask_age_ms: float | None = None,
        smooth: bool = True,
        fault_banner=_NOW,
        roi: Roi | None = None,
        mask=_NOW,
        ai: AiStatus | None = None,
    ) -> np.ndarray:
        """Frame + Prediction -> rendered BGR, or I420 when :meth:`renders_yuv` (drawn in place on the
        decoded planes unless a raw recording or mask dump still needs them). ``fault_banner``: the
        fail-safe banner as it was when this frame was inferred (replay renders on another thread, later).
        ``mask``: the output of :meth:`smooth` when the caller ran it already (replay smooths in
        frame order, then draws frames on parallel workers). ``ai``: the AI state drawn on this frame
        (default: now)."""
        if mask is _NOW:
            mask = self.smooth(prediction, smooth)
        fault = self.guard.banner() if fault_banner is _NOW else fault_banner
        roi = roi or (prediction.roi if prediction is not None and prediction.roi is not None else self.roi)
        ai = ai or self.ai_status(mask_age_ms if mask is not None else None)
        no_signal = bool(frame.meta.get("no_signal"))  # sonomap's own NO SIGNAL screen
        ai, fault, mask, mask_age_ms = drawn_state.decide(ai, fault, mask, mask_age_ms, roi, no_signal)
        banners = [b for b in [fault] if b] + list(extra_banners or [])
        banners += outputs.observer_banners(self.observers, frame, ai.state, self.stats)  # a capture toast
        hud = drawn_state.hud_values(self.stats, mask_age_ms, self.show_rec)
        deidentify.render_for_window(
            frame, lambda raw: self._draw(frame, raw, roi, mask, fade, hud, banners, ai)
        )
        if self.renders_yuv(frame):
            keep_raw = "raw" in self.sinks or "masks" in self.sinks
            return self.overlay.render_i420(
                frame.i420.copy() if keep_raw else frame.i420, roi, mask, fade, hud, banners, ai
            )
        return self._draw(frame, frame.image, roi, mask, fade, hud, banners, ai)

    def _draw(self, frame: Frame, image: np.ndarray, roi: Roi, mask, fade, hud, banners, ai) -> np.ndarray:
        """The overlay and every observer's drawing on a copy of ``image`` (the frame, or the raw
        screen the local window shows), so the window shows what the recording does."""
        rendered = self.overlay.render(image, roi, mask, fade, hud, banners, ai)
        outputs.draw_observers(self.observers, frame, rendered, roi, ai.state, self.stats)
        return rendered

    def renders_yuv(self, frame: Frame) -> bool:
        """Whether this frame is rendered and encoded as I420 (the replay's YUV-native path)."""
        return self.yuv_render and isinstance(frame, yuv.YuvFrame)

    def deliver(
        self, frame: Frame, prediction: Prediction | None, rendered: np.ndarray, ai: AiStatus | None = None
    ) -> None:
        """Rendered frame -> recorders, window and observers (``stats["ai"]``: the state drawn on it)."""
        in_yuv = self.renders_yuv(frame)
        roi = prediction.roi if prediction is not None and prediction.roi is not None else self.roi
        for name, sink in self.sinks.items():
            try:
                if name in ("video", "raw") and in_yuv:
                    sink.write_i420(rendered if name == "video" else frame.i420, frame.timestamp)
                elif name in ("video", "raw"):
                    sink.write(rendered if name == "video" else frame.image, frame.timestamp)
                elif not frame.meta.get("no_signal"):  # the mask dump: no ultrasound on a NO SIGNAL screen
                    pixels = yuv.gray_roi(frame.i420, roi) if in_yuv else roi.crop(frame.image)
                    self._dumped = outputs.dump_masks(sink, frame, pixels, prediction, self._dumped)
            except Exception as exc:
                self.stats.sink_errors += 1
                self.stats.last_error = f"sink {name}: {exc}"
        if self.show_rec or self.observers:  # read per frame only by the HUD and the observers (/metrics)
            self.stats.recording = recordings.recorder_state(self.sinks)
        if self.window is not None:
            self.window.write(deidentify.window_image(frame, rendered))  # the whole screen (deidentify.py)
            if self.window.quit_requested:
                self.stop()
            if self.window.take_ai_toggle():
                self.ai.set_enabled(not self.ai.enabled)
        if self.observers:
            state = (ai or self.ai_status()).as_dict()
            outputs.notify_observers(self.observers, frame, prediction, rendered, self.stats, state)
        self.stats.frame_done()


class ScheduledPipeline(Protocol):
    """What a schedule sees of the pipeline (:class:`edge_runtime.pipeline.graph.Pipeline`): its config
    and its stages (which hold the de-identified source). Nothing else, and nothing private."""

    config: RuntimeConfig
    stages: FrameStages
