"""A config reload between frames (SIGHUP, the HTTP viewer's reload): the file re-read, the command
line's overrides merged over it again, and what a reload may not change kept as the run has it.

A reload changes only what the file changed: the command line's overrides (``--no-ai``, ``--summary``,
...) outlive it, the model is pinned to the one the run started with (a reload never swaps models),
the ``privacy`` section stays the one the source was de-identified by, and the AI's on/off stays as
the operator set it (key 'a') unless the file or flags changed ``inference.enabled``. A reloaded
``roi.rect`` must fit the frames coming in now. :meth:`edge_runtime.pipeline.graph.Pipeline.apply_reload`
builds the new overlay and backend from what this returns and swaps them in, or rejects the reload.

Inputs: the config file, the command line's overrides, the running config. Outputs: the new
:class:`RuntimeConfig`, or ConfigError. Files: reads the config file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge_runtime import config as cfg
from edge_runtime.config_schema import RuntimeConfig
from edge_runtime.errors import ConfigError
from edge_runtime.pipeline.roi_chooser import RoiChooser
from edge_runtime.roi import parse_roi

log = logging.getLogger("sonomap.pipeline")


class ConfigReload:
    """What a reload of the run's config re-reads: ``path`` with ``overrides`` (section -> key -> value,
    as :func:`edge_runtime.config.merge` takes them) merged over it, the model pinned to
    ``model_path``. ``enabled_setting``: ``inference.enabled`` as the file and flags set it last (the
    AI's on/off may differ)."""

    def __init__(
        self, path: str | Path | None, overrides: dict, model_path: Path | None, enabled_setting: bool
    ):
        self.path = path
        self.overrides = overrides
        self.model_path = model_path
        self.enabled_setting = enabled_setting

    def read(self) -> RuntimeConfig:
        """The file re-read, validated, with the command line's overrides and the pinned model."""
        return cfg.load_with_overrides(self.path, self.overrides_pinned())

    def overrides_pinned(self) -> dict:
        """The command line's overrides, with the running model pinned (a reload never swaps models)."""
        pinned = {"model": str(self.model_path)} if self.model_path is not None else {}
        inference = {**self.overrides.get("inference", {}), **pinned}
        return {**self.overrides, "inference": inference}

    def keep_running_choices(self, new: RuntimeConfig, running: RuntimeConfig, ai_enabled: bool) -> None:
        """A reload whose file and flags leave ``inference.enabled`` as it was keeps the AI on or off as
        the operator has it now (``ai_enabled``); a changed setting applies. The ``privacy`` section is
        the ``running`` one (the source was de-identified by it; the summary reports it). ``new`` is
        changed in place."""
        if new.privacy != running.privacy:
            log.warning("config reload: the privacy section changed; it applies at the next start")
            new.privacy = running.privacy
        if new.inference.enabled == self.enabled_setting:
            new.inference.enabled = ai_enabled
        else:
            self.enabled_setting = new.inference.enabled


def check_rect(config: RuntimeConfig, rois: RoiChooser) -> None:
    """A reloaded ``roi.rect`` must fit the frames coming in now (ConfigError naming the frame size
    and index); the ROI chooser would otherwise meet it on the next frame, in the capture thread."""
    rect = parse_roi(config.roi.rect, "roi.rect")
    if rect is None or rois.size is None:  # size: (H, W) of the last frame; None before the first
        return
    try:
        rect.check_inside(rois.size[1], rois.size[0], "roi.rect")
    except ConfigError as exc:
        raise ConfigError(f"{exc} (frame {rois.index})") from exc
