"""The runtime graph: source -> de-identify -> ROI -> inference -> overlay -> sinks (+ observers).

:class:`Pipeline` builds the stages (:class:`edge_runtime.pipeline.stages.FrameStages`) from the config
and wires them in one place, :meth:`Pipeline.run`, which hands them to the replay schedule
(:mod:`edge_runtime.pipeline.replay`: every frame, none dropped) or the live schedule
(:mod:`edge_runtime.pipeline.live`: newest frame wins). A frame travels through the stages in one
direction; the graph is not on its way. It owns what happens around the frames: config reload
(between frames, when requested: the file re-read with the command line's overrides merged over it
again, so a reload changes only what the file changed: :mod:`edge_runtime.pipeline.reload`), the run's summary
(:mod:`edge_runtime.pipeline.summary`), closing everything. ``stats()``, ``stop()`` and ``request_reload()``
are safe to call from other threads (HTTP server, signal handlers).

Inputs: the runtime config (and its file, for reloads), observers, optionally a source or backend.
Outputs: the run's summary. Files: through the stages (recorders, mask dumps) and ``sinks.summary``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge_runtime import config as cfg
from edge_runtime.aistate import AiMonitor, backend_settings
from edge_runtime.backends import backend_from_config
from edge_runtime.backends.failsafe import GuardedInference
from edge_runtime.config_schema import InferenceConfig, RuntimeConfig
from edge_runtime.cpus import limit_opencv_threads
from edge_runtime.errors import ConfigError, InferenceStalled
from edge_runtime.frames import Observer, Source
from edge_runtime.manifest import SHA_SHOWN, load_manifest
from edge_runtime.pipeline import deidentify, summary
from edge_runtime.pipeline.live import run_live
from edge_runtime.pipeline.reload import ConfigReload, check_rect
from edge_runtime.pipeline.replay import SourceFailed, ai_failure, run_replay
from edge_runtime.pipeline.stages import FrameStages
from edge_runtime.render.overlay import Overlay
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
        self.observers: list[Observer] = list(observers or [])
        stats = Stats()
        self.model_path = (
            cfg.resolve_model(config) if backend is None else getattr(backend, "model_path", None)
        )
        self.manifest = backend.manifest if backend is not None else load_manifest(self.model_path)
        # load_manifest has just checked the file's sha256: the first backend, made next, needs no
        # second hash of a file that may be hundreds of MB; every later one does
        self._file_checked = backend is None
        self.reloads = ConfigReload(config_path, overrides or {}, self.model_path, config.inference.enabled)
        overlay = overlay_for(self.manifest, config.overlay, config_path)
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
        if self._file_checked:
            self._file_checked = False
        else:
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
        """The run's figures now (:func:`edge_runtime.pipeline.summary.snapshot`)."""
        return summary.snapshot(self.stages, self._sink_drops)

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
        if not self.stages.take_reload_request() or self.reloads.path is None:
            return
        try:
            new = self.reloads.read()
            overlay = overlay_for(self.manifest, new.overlay, self.reloads.path)
            check_rect(new, self.stages.rois)
            if backend_settings(new.inference) != backend_settings(self.config.inference):
                # built (and swapped in) before the config is: a section that cannot be built is a
                # rejected reload, and the old backend keeps inferring
                self.guard.replace_backend(lambda: self._make_backend(new.inference))
        except Exception as exc:
            self.stages.stats.last_error = f"reload rejected: {exc}"
            log.warning("config reload rejected, keeping the running config: %s", exc)
            return
        self.reloads.keep_running_choices(new, self.config, self.ai.enabled)
        self.config = new
        self.stages.reconfigure(new, overlay)
        backend = self.guard.backend
        self.stages.stats.backend = {
            **backend.describe(),
            "selected_because": getattr(backend, "selected_because", ""),
        }
        log.warning("config reloaded from %s", self.reloads.path)

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
        skipped_before = summary.corrupt_frames()
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
        skipped = summary.corrupt_frames() - skipped_before
        figures = summary.finish(
            self.stats(), self.stages, self.config, stalled is not None, skipped, self.is_live()
        )
        if stalled is not None:
            raise stalled
        if failed is not None:
            raise summary.partial_input_error(failed, figures["frames"])
        unanswered = None if self.is_live() else ai_failure(figures, self.model_path)
        if unanswered is not None:  # a replay is a result: one the AI never answered on has failed
            raise unanswered
        return figures


def overlay_for(manifest, overlay_config, config_path: str | Path | None) -> Overlay:
    """``Overlay.from_config``, its one-line error naming the config file the settings came from (a
    class the model lacks is known only here, once the model is: the loader could not name it)."""
    try:
        return Overlay.from_config(manifest, overlay_config)
    except ConfigError as exc:
        if config_path is None or str(exc).startswith(str(config_path)):
            raise
        raise ConfigError(f"{config_path}: {exc}") from exc
