"""The runtime graph: source -> de-identify -> ROI -> inference -> overlay -> sinks (+ observers).

:class:`Pipeline` builds the stages (:class:`edge_runtime.pipeline.stages.FrameStages`) from the config
and wires them in one place, :meth:`Pipeline.run`, which hands them to the replay schedule
(:mod:`edge_runtime.pipeline.replay`: every frame, none dropped) or the live schedule
(:mod:`edge_runtime.pipeline.live`: newest frame wins). A frame travels through the stages in one
direction; the graph is not on its way. It owns what happens around the frames: config reload
(between frames, when requested: the file re-read with the command line's overrides merged over it
again, so a reload changes only what the file changed), the run's summary, closing everything. ``stats()``, ``stop()``
and ``request_reload()`` are safe to call from other threads (HTTP server, signal handlers).
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge_runtime import config as cfg
from edge_runtime import privacy
from edge_runtime.aistate import AiMonitor, backend_settings
from edge_runtime.atomic import atomic_write_text
from edge_runtime.backends import backend_from_config
from edge_runtime.backends.failsafe import GuardedInference
from edge_runtime.config_schema import InferenceConfig, RuntimeConfig
from edge_runtime.cpus import limit_opencv_threads
from edge_runtime.errors import ConfigError, InferenceStalled, InputError, SonomapError
from edge_runtime.frames import Observer, Source
from edge_runtime.jsonfile import json_text
from edge_runtime.live_stats import EVENTS
from edge_runtime.manifest import SHA_SHOWN, load_manifest
from edge_runtime.memory import GIB, peak_rss_bytes
from edge_runtime.pipeline import deidentify
from edge_runtime.pipeline.live import run_live
from edge_runtime.pipeline.replay import SourceFailed, ai_failure, run_replay
from edge_runtime.pipeline.stages import FrameStages
from edge_runtime.render.overlay import Overlay
from edge_runtime.roi import parse_roi
from edge_runtime.sources.corrupt import CORRUPT_INPUT
from edge_runtime.sources.opener import open_source
from edge_runtime.stats import Stats

log = logging.getLogger("sonomap.pipeline")


class Pipeline:
    """Builds one run's stages from ``config`` and runs them (see the module doc). ``source``,
    ``backend``: given ones instead of those the config names (tests, benchmarks, the CLI's capture).
    ``config_path``: the file a reload re-reads; ``overrides``: the command line's overrides that
    ``config`` was built with (section -> key -> value, as :func:`edge_runtime.config.merge` takes them),
    merged over the re-read file at every reload so a flag (``--no-ai``, ``--summary``) outlives it."""

    def __init__(
        self,
        config: RuntimeConfig,
        observers: list[Observer] | None = None,
        config_path: str | Path | None = None,
        source: Source | None = None,
        backend=None,
        overrides: dict | None = None,
    ):
        self.config = config
        self.config_path = config_path
        self.overrides = overrides or {}
        # inference.enabled as the file and flags set it; the AI's on/off may differ (key 'a')
        self._enabled_setting = config.inference.enabled
        self.observers: list[Observer] = list(observers or [])
        stats = Stats()
        self.model_path = (
            cfg.resolve_model(config) if backend is None else getattr(backend, "model_path", None)
        )
        self.manifest = backend.manifest if backend is not None else load_manifest(self.model_path)
        overlay = Overlay.from_config(self.manifest, config.overlay)
        inf = config.inference
        self.ai = AiMonitor.from_config(inf)
        self.guard = GuardedInference(
            self._make_backend,
            stats,
            inf.retry_after_s,
            inf.retry_max_s,
            inf.reload_after_errors,
            backend=backend,
            monitor=self.ai,
        )
        self.stages = FrameStages(config, overlay, self.guard, stats, self.observers, self.apply_reload)
        self.stages.source = source
        # True: the live schedule even for a file (`sonomap live clip.mp4`); None: by the source
        self.live_schedule: bool | None = None
        stats.backend = self.guard.backend.describe()
        stats.backend["selected_because"] = getattr(self.guard.backend, "selected_because", "given")
        self._sink_drops = 0

    # --- construction helpers ---------------------------------------------------
    def _make_backend(self, inference: InferenceConfig | None = None):
        """A backend for ``inference`` (default: the running config's section), only from the model file
        this run started with: a reload or the fail-safe's re-creation opens the file again, and a file
        copied over it is never served; a re-export installed there waits for a restart."""
        current = load_manifest(self.model_path).sha256  # the file's own sha256 checked against it too
        if current != self.manifest.sha256:
            raise ConfigError(
                f"{self.model_path}: replaced while running (sha256 {current[:SHA_SHOWN]}…, this run "
                f"started with {self.manifest.sha256[:SHA_SHOWN]}…); not loaded: restart to serve it"
            )
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

    @property
    def source(self) -> Source | None:
        return self.stages.source

    @source.setter
    def source(self, source: Source | None) -> None:
        self.stages.source = source

    @property
    def overlay(self) -> Overlay:
        return self.stages.overlay

    @property
    def prefer_yuv(self) -> bool:
        """Whether replay may render in the decoder's YUV planes (False forces the BGR path)."""
        return self.stages.prefer_yuv

    @prefer_yuv.setter
    def prefer_yuv(self, prefer: bool) -> None:
        self.stages.prefer_yuv = prefer

    @property
    def yuv_render(self) -> bool:
        """Whether the last replay rendered in YUV planes."""
        return self.stages.yuv_render

    def open_source(self) -> Source:
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

    # --- control ------------------------------------------------------------------
    def stats(self) -> dict:
        stages = self.stages
        out = stages.stats.snapshot()
        out["flicker"] = round(stages.overlay.flicker, 5)
        out["sink_drops"] = self._sink_drops + sum(getattr(k, "dropped", 0) for k in stages.sinks.values())
        decided = stages.roi if stages.roi is not None and not stages.roi.undecided else None
        out["roi"] = decided.as_list() if decided else None
        out["mm_per_pixel"] = decided.mm_per_pixel if decided else None
        out["roi_undecided"] = stages.roi.undecided if stages.roi is not None else ""  # why, at the end
        out["roi_undecided_frames"] = stages.rois.undecided_frames  # blanked whole: no image found
        out["peak_rss_gib"] = round(peak_rss_bytes() / GIB, 4)
        out["ai"] = stages.ai_status(roi=stages.roi).as_dict()  # OFF while no ROI is decided
        out["inference_stalls"] = self.ai.stalls
        # frames handed to the AI that got no answer (a fault, or live's back-off): shown raw, AI ERROR
        out["frames_without_ai"] = self.guard.unanswered
        return out

    def stop(self) -> None:
        self.stages.stop()

    @property
    def stopping(self) -> bool:
        return self.stages.stopping

    def request_reload(self) -> None:
        self.stages.request_reload()

    def apply_reload(self) -> None:
        """Re-read the config file (between frames), the command line's overrides merged over it again:
        overlay, ROI and backend settings change only where the file changed them."""
        if not self.stages.take_reload_request() or self.config_path is None:
            return
        try:
            new = cfg.load_with_overrides(self.config_path, self._reload_overrides())
            overlay = Overlay.from_config(self.manifest, new.overlay)
            self._check_rect(new)
            if backend_settings(new.inference) != backend_settings(self.config.inference):
                # built (and swapped in) before the config is: a section that cannot be built is a
                # rejected reload, and the old backend keeps inferring
                self.guard.replace_backend(lambda: self._make_backend(new.inference))
        except Exception as exc:
            self.stages.stats.last_error = f"reload rejected: {exc}"
            log.warning("config reload rejected, keeping the running config: %s", exc)
            return
        self._keep_running_choices(new)
        self.config = new
        self.stages.reconfigure(new, overlay)
        backend = self.guard.backend
        self.stages.stats.backend = {
            **backend.describe(),
            "selected_because": getattr(backend, "selected_because", ""),
        }
        log.warning("config reloaded from %s", self.config_path)

    def _reload_overrides(self) -> dict:
        """The command line's overrides, with the running model pinned (a reload never swaps models)."""
        pinned = {"model": str(self.model_path)} if self.model_path is not None else {}
        inference = {**self.overrides.get("inference", {}), **pinned}
        return {**self.overrides, "inference": inference}

    def _keep_running_choices(self, new: RuntimeConfig) -> None:
        """A reload whose file and flags leave ``inference.enabled`` as it was keeps the AI on or off as
        the operator has it now (key 'a'); a changed setting applies. The ``privacy`` section is the
        one the run started with (the source was de-identified by it; the summary reports it).
        ``new`` is changed in place."""
        if new.privacy != self.config.privacy:
            log.warning("config reload: the privacy section changed; it applies at the next start")
            new.privacy = self.config.privacy
        if new.inference.enabled == self._enabled_setting:
            new.inference.enabled = self.ai.enabled
        else:
            self._enabled_setting = new.inference.enabled

    def _check_rect(self, config: RuntimeConfig) -> None:
        """A reloaded ``roi.rect`` must fit the frames coming in now (ConfigError naming the frame size
        and index); the ROI chooser would otherwise meet it on the next frame, in the capture thread."""
        rect = parse_roi(config.roi.rect, "roi.rect")
        rois = self.stages.rois
        if rect is None or rois.size is None:  # size: (H, W) of the last frame; None before the first
            return
        try:
            rect.check_inside(rois.size[1], rois.size[0], "roi.rect")
        except ConfigError as exc:
            raise ConfigError(f"{exc} (frame {rois.index})") from exc

    def close(self) -> None:
        self._sink_drops += self.stages.close_outputs()
        for observer in self.observers:
            observer.close()
        self.observers.clear()  # the stages hold the same list
        self.guard.close()
        if self.source is not None:
            self.source.close()

    # --- schedules -----------------------------------------------------------------
    def run(self) -> dict:
        """Run until the source ends, ``stop()`` or max_frames; returns the summary (also written when a
        long AI stall ends the run, before InferenceStalled goes on up)."""
        skipped_before = EVENTS.snapshot().get(CORRUPT_INPUT, 0)  # the counter is process-wide
        source = self.source = deidentify.wrap(self.open_source(), self.config, self.stages.rois.choose)
        limit_opencv_threads()
        stalled = failed = None
        try:
            if self.is_live():
                run_live(self)
            else:
                run_replay(self, source)
        except InferenceStalled as exc:
            stalled = exc
        except SourceFailed as exc:
            failed = exc.error
        finally:
            self.close()
        if failed is not None and not self.stages.stats.frames:  # nothing written: the input's error alone
            raise failed
        summary = self.stats()
        self.stages.stats.state = "stopped"
        summary["state"] = "stopped" if stalled is None else "stalled"
        # the files written, strftime fields and suffixes resolved
        summary["outputs"] = dict(self.stages.outputs)
        summary["failed_outputs"] = dict(self.stages.failed_outputs)  # recorder -> why it stopped
        summary["deidentified"] = bool(self.config.privacy.deidentify)
        # corrupt input frames the source skipped: the outputs lack them, with no error
        summary["input_frames_skipped"] = EVENTS.snapshot().get(CORRUPT_INPUT, 0) - skipped_before
        path = self.config.sinks.summary
        if path:  # atomically: a failed write names the file and keeps a previous summary whole
            atomic_write_text(path, privacy.redact(json_text(summary)))
        if stalled is not None:
            raise stalled
        if failed is not None:
            raise partial_input_error(failed, summary["frames"])
        unanswered = None if self.is_live() else ai_failure(summary, self.model_path)
        if unanswered is not None:  # a replay is a result: one the AI never answered on has failed
            raise unanswered
        return summary


def partial_input_error(error: SonomapError, frames: int) -> SonomapError:
    """``error`` of a source that failed after ``frames`` frames, saying what the outputs hold: the
    frames before the bad one, finalised (every recorder closed its file whole)."""
    message = f"{error} (the outputs were finalised with the {frames} frame(s) before it)"
    try:
        return type(error)(message)
    except TypeError:  # an error type with other arguments: the message as an input error
        return InputError(message)
