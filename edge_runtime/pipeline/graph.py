"""The runtime graph: source -> roi -> inference -> overlay -> sinks (+ observers).

Each stage is one method taking the previous stage's output; they are wired in one place,
:meth:`Pipeline.run`, which picks the replay schedule (:mod:`edge_runtime.pipeline.replay`: every frame, none
dropped) or the live schedule (:mod:`edge_runtime.pipeline.live`: newest frame wins). ``stats()``, ``stop()`` and
``request_reload()`` are safe to call from other threads (HTTP server, signal handlers).
Every rendered frame carries the AI's state (:mod:`edge_runtime.aistate`): ``stage_overlay`` draws
it, ``stage_sinks`` hands it to observers as ``stats["ai"]``.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np

from edge_runtime import config as cfg
from edge_runtime import privacy, yuv
from edge_runtime.aistate import AiMonitor, AiStatus, backend_settings, state_banner
from edge_runtime.backends import backend_from_config
from edge_runtime.backends.failsafe import GuardedInference
from edge_runtime.config_schema import InferenceConfig, RuntimeConfig
from edge_runtime.cpus import limit_opencv_threads
from edge_runtime.errors import ConfigError, InferenceStalled
from edge_runtime.frames import Frame, Observer, Prediction
from edge_runtime.manifest import load_manifest
from edge_runtime.memory import GIB, peak_rss_bytes
from edge_runtime.pipeline import deidentify
from edge_runtime.preprocess import to_gray
from edge_runtime.render.overlay import Overlay
from edge_runtime.roi import Roi, resolve_roi
from edge_runtime.sinks.writers import WindowSink, open_sinks, recordings
from edge_runtime.sources.opener import open_source
from edge_runtime.stats import Stats
from edge_runtime.units import DEFAULT_FPS

log = logging.getLogger("sonomap.pipeline")
_NOW = object()  # stage_overlay: take the fail-safe banner / smoothed mask from the current state


class Pipeline:
    def __init__(
        self,
        config: RuntimeConfig,
        observers: list[Observer] | None = None,
        config_path: str | Path | None = None,
        source=None,
        backend=None,
    ):
        self.config = config
        self.config_path = config_path
        self.observers: list[Observer] = list(observers or [])
        self._stats = Stats()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self.source = source
        self.model_path = (
            cfg.resolve_model(config) if backend is None else getattr(backend, "model_path", None)
        )
        self.manifest = backend.manifest if backend is not None else load_manifest(self.model_path)
        self.overlay = Overlay.from_config(self.manifest, config.overlay)
        inf = config.inference
        self.ai = AiMonitor.from_config(inf)
        self.guard = GuardedInference(
            self._make_backend,
            self._stats,
            inf.retry_after_s,
            inf.retry_max_s,
            inf.reload_after_errors,
            backend=backend,
            monitor=self.ai,
        )
        # True: the live schedule even for a file (`sonomap live clip.mp4`); None: by the source
        self.live_schedule: bool | None = None
        self._stats.backend = self.guard.backend.describe()
        self._stats.backend["selected_because"] = getattr(self.guard.backend, "selected_because", "given")
        self.roi: Roi | None = None
        self._roi_shape: tuple | None = None
        self.sinks: dict = {}
        self.outputs: dict[str, str] = {}
        self.window: WindowSink | None = None
        self.show_rec = False  # open_sinks: whether the HUD shows the recorder's state (live)
        self._last_prediction: Prediction | None = None
        self._last_mask: np.ndarray | None = None
        self._sink_drops = 0
        # Replay renders and encodes in the decoder's YUV planes when the source gives them and no
        # consumer needs BGR (window, observers); run_replay decides. False forces the BGR path.
        self.prefer_yuv = True
        self.yuv_render = False

    # --- construction helpers ---------------------------------------------------
    def _make_backend(self, inference: InferenceConfig | None = None):
        """A backend for ``inference`` (default: the running config's section)."""
        # on_long_build is used by TensorRT only; other backends ignore it
        return backend_from_config(
            inference or self.config.inference,
            self.model_path,
            self.manifest,
            on_long_build=self.announce_long_build,
        )

    def announce_long_build(self, seconds_estimate: float) -> None:
        """An engine build of about this many seconds starts: observers hear of it (the service
        extends systemd's start timeout); the pipeline itself knows nothing of systemd."""
        for observer in self.observers:
            observer.on_long_build(seconds_estimate)

    def open_source(self):
        if self.source is None:
            src = self.config.source
            if src.input is None:
                raise ConfigError("source.input: no input given")
            options = {
                k: getattr(src, k) for k in ("loop", "fps", "width", "height", "fourcc", "image", "frames")
            }
            self.source = open_source(src.input, **options)
        return self.source

    def is_live(self) -> bool:
        """Whether this run uses the live schedule (newest frame wins, recorders drop rather than wait)."""
        return bool(getattr(self.source, "live", False) if self.live_schedule is None else self.live_schedule)

    def open_sinks(self, fps: float) -> None:
        s = self.config.sinks
        live = self.is_live()
        self.sinks, self.window, self.outputs = open_sinks(s, float(s.fps or fps or DEFAULT_FPS), live)
        self.show_rec = (
            live  # a live session's recorder state is on screen; a replay's output is no recording
        )

    # --- the stages -----------------------------------------------------------------
    def ensure_roi(self, frame: Frame) -> Roi:
        """The ROI for this frame: chosen on the first frame, again on a new size or capture session."""
        if isinstance(
            frame.meta.get(deidentify.ROI_META_KEY), Roi
        ):  # chosen on the raw screen (deidentify.py)
            return frame.meta[deidentify.ROI_META_KEY]
        roi = self.roi
        shape = yuv.frame_shape(frame)
        if roi is None or shape != self._roi_shape or frame.meta.get("session_start"):
            r = self.config.roi
            rect = r.rect
            if rect in (None, "auto") and frame.meta.get("default_roi"):
                rect = frame.meta["default_roi"]  # e.g. OpenIGTLink IMAGEs are already the ultrasound area
            # A YUV frame's full-range luma is the gray screen auto-detection looks at (no BGR made).
            if isinstance(frame, yuv.YuvFrame):
                screen = yuv.full_range_luma(yuv.planes(frame.i420)[0])
            else:
                screen = frame.image
            roi = resolve_roi(rect, screen, frame.meta.get("mm_per_pixel") or r.mm_per_pixel)
            self.roi, self._roi_shape = roi, shape
            log.info("ROI %s", roi)
        return roi

    def stage_roi(self, frame: Frame, roi: Roi | None = None) -> np.ndarray:
        """Frame -> gray ROI pixels; for a YUV frame, the Y plane's ROI. ``roi``: the one
        :meth:`ensure_roi` gave for this frame (default: ask it now)."""
        roi = roi or self.ensure_roi(frame)
        if isinstance(frame, yuv.YuvFrame):
            return yuv.gray_roi(frame.i420, roi)
        return to_gray(roi.crop(frame.image))

    def stage_inference(
        self, gray: np.ndarray, frame: Frame | None = None, roi: Roi | None = None
    ) -> Prediction | None:
        """Gray ROI -> Prediction (tagged with its frame and ROI), or None on a fault (passthrough)."""
        prediction = self.guard.infer(gray)
        if prediction is not None:
            deidentify.clear_blanked(prediction, frame)
            prediction.frame, prediction.roi = frame, roi or self.roi
            self._stats.inferred += 1
            self._stats.record("backend", prediction.latency_ms)
        return prediction

    def ai_status(self, mask_age_ms: float | None = None) -> AiStatus:
        """The AI's state now (``mask_age_ms``: age of the mask drawn on the frame, if any)."""
        return self.ai.status(self.guard.fault, mask_age_ms)

    def stage_overlay(
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
        ``mask``: the output of :meth:`stage_smooth` when the caller ran it already (replay smooths in
        frame order, then draws frames on parallel workers). ``ai``: the AI state drawn on this frame
        (default: now)."""
        if mask is _NOW:
            mask = self.stage_smooth(prediction, smooth)
        fault = self.guard.banner() if fault_banner is _NOW else fault_banner
        ai = ai or self.ai_status(mask_age_ms if mask is not None else None)
        fault = state_banner(ai) or fault
        banners = [b for b in [fault] if b] + list(extra_banners or [])
        banners += [b for observer in self.observers for b in observer.banners(frame)]  # e.g. a capture toast
        hud = {
            "fps": self._stats.recent_fps(),
            "backend": self._hud_backend(),
            "mask_age_ms": mask_age_ms,
            "rec": self._stats.recording if self.show_rec else "",
        }
        latest = self._stats.latest("backend")
        if latest is not None:
            hud["latency_ms"] = latest
        roi = roi or (prediction.roi if prediction is not None and prediction.roi is not None else self.roi)
        if mask is not None and mask.shape != (roi.h, roi.w):
            mask = None  # a mask from before a resolution change does not fit this frame
        deidentify.render_for_window(
            frame, lambda raw: self.overlay.render(raw, roi, mask, fade, hud, banners, ai)
        )
        if self.renders_yuv(frame):
            keep_raw = "raw" in self.sinks or "masks" in self.sinks
            return self.overlay.render_i420(
                frame.i420.copy() if keep_raw else frame.i420, roi, mask, fade, hud, banners, ai
            )
        rendered = self.overlay.render(frame.image, roi, mask, fade, hud, banners, ai)
        for observer in self.observers:
            observer.draw(frame, rendered, roi)  # e.g. the band a biopsy will sample
        return rendered

    def stage_smooth(self, prediction: Prediction | None, smooth: bool = True) -> np.ndarray | None:
        """Prediction -> the mask to draw (EMA-smoothed when enabled). Stateful: call in frame order."""
        if prediction is None:
            return None
        if prediction is self._last_prediction:
            return self._last_mask  # live 'latest' redraws one prediction on many frames: smooth it once
        mask = self.overlay.smooth(prediction.mask, lambda: prediction.prob) if smooth else prediction.mask
        self._last_prediction, self._last_mask = prediction, mask
        return mask

    def renders_yuv(self, frame: Frame) -> bool:
        """Whether this frame is rendered and encoded as I420 (the replay's YUV-native path)."""
        return self.yuv_render and isinstance(frame, yuv.YuvFrame)

    def _hud_backend(self) -> str:
        b = self._stats.backend
        return f"{b.get('backend', '?')} {b.get('device', '')}".strip()

    def stage_sinks(
        self, frame: Frame, prediction: Prediction | None, rendered: np.ndarray, ai: AiStatus | None = None
    ) -> None:
        """Rendered frame -> recorders, window and observers (``stats["ai"]``: the state drawn on it)."""
        in_yuv = self.renders_yuv(frame)
        for name, sink in self.sinks.items():
            try:
                if name in ("video", "raw") and in_yuv:
                    sink.write_i420(rendered if name == "video" else frame.i420)
                elif name in ("video", "raw"):
                    sink.write(rendered if name == "video" else frame.image)
                else:
                    roi = (
                        prediction.roi if prediction is not None and prediction.roi is not None else self.roi
                    )
                    pixels = yuv.gray_roi(frame.i420, roi) if in_yuv else roi.crop(frame.image)
                    sink.write(frame.index, pixels, None if prediction is None else prediction.mask)
            except Exception as exc:
                self._stats.sink_errors += 1
                self._stats.last_error = f"sink {name}: {exc}"
        self._stats.recording = recordings.recorder_state(self.sinks)
        if self.window is not None:
            self.window.write(deidentify.window_image(frame, rendered))  # the whole screen (deidentify.py)
            if self.window.quit_requested:
                self.stop()
            if self.window.take_ai_toggle():
                self.ai.set_enabled(not self.ai.enabled)
        snapshot = None
        for observer in self.observers:
            try:
                if snapshot is None:
                    snapshot = self._stats.snapshot()
                    snapshot["ai"] = (ai or self.ai_status()).as_dict()
                observer.on_frame(frame, prediction, rendered, snapshot)
            except Exception as exc:
                self._stats.sink_errors += 1
                self._stats.last_error = f"observer {type(observer).__name__}: {exc}"
        self._stats.frame_done()

    # --- control ------------------------------------------------------------------
    def stats(self) -> dict:
        out = self._stats.snapshot()
        out["flicker"] = round(self.overlay.flicker, 5)
        out["sink_drops"] = self._sink_drops + sum(getattr(k, "dropped", 0) for k in self.sinks.values())
        out["roi"] = self.roi.as_list() if self.roi else None
        out["mm_per_pixel"] = self.roi.mm_per_pixel if self.roi else None
        out["peak_rss_gib"] = round(peak_rss_bytes() / GIB, 4)
        out["ai"] = self.ai_status().as_dict()
        out["inference_stalls"] = self.ai.stalls
        return out

    def stop(self) -> None:
        self._stop.set()
        if self.source is not None:
            self.source.close()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_reload(self) -> None:
        self._reload.set()

    def apply_reload(self) -> None:
        """Re-read the config file (between frames): overlay, ROI and backend settings."""
        if not self._reload.is_set():
            return
        self._reload.clear()
        if self.config_path is None:
            return
        try:
            new = cfg.load_config(self.config_path)
            new = cfg.merge(new, {"inference": {"model": str(self.model_path)}})
            overlay = Overlay.from_config(self.manifest, new.overlay)
            if backend_settings(new.inference) != backend_settings(self.config.inference):
                # built (and swapped in) before the config is: a section that cannot be built is a
                # rejected reload, and the old backend keeps inferring
                self.guard.replace_backend(lambda: self._make_backend(new.inference))
        except Exception as exc:
            self._stats.last_error = f"reload rejected: {exc}"
            log.error("config reload rejected, keeping the running config: %s", exc)
            return
        self.config, self.overlay = new, overlay
        self._roi_shape = None  # re-detect on the next frame; keep self.roi for the live display thread
        self.ai.configure(new.inference)
        backend = self.guard.backend
        self._stats.backend = {
            **backend.describe(),
            "selected_because": getattr(backend, "selected_because", ""),
        }
        log.warning("config reloaded from %s", self.config_path)

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()
            self._sink_drops += getattr(
                sink, "dropped", 0
            )  # live recorders drop rather than stall the display
        self.sinks = {}
        if self.window is not None:
            self.window.close()
            self.window = None
        for observer in self.observers:
            observer.close()
        self.observers = []
        self.guard.close()
        if self.source is not None:
            self.source.close()

    # --- schedules -----------------------------------------------------------------
    def run(self) -> dict:
        """Run until the source ends, ``stop()`` or max_frames; returns the summary (also written when a
        long AI stall ends the run, before InferenceStalled goes on up)."""
        source = self.source = deidentify.wrap(self.open_source(), self.config, self.ensure_roi)
        limit_opencv_threads()
        stalled = None
        try:
            if self.is_live():
                from edge_runtime.pipeline.live import run_live

                run_live(self)
            else:
                from edge_runtime.pipeline.replay import run_replay

                run_replay(self, source)
        except InferenceStalled as exc:
            stalled = exc
        finally:
            self.close()
        summary = self.stats()
        self._stats.state = "stopped"
        summary["state"] = "stopped" if stalled is None else "stalled"
        summary["outputs"] = dict(self.outputs)  # the files written, strftime fields and suffixes resolved
        summary["deidentified"] = bool(self.config.privacy.deidentify)
        path = self.config.sinks.summary
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(privacy.redact(json.dumps(summary, indent=2)))
        if stalled is not None:
            raise stalled
        return summary
