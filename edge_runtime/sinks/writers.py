"""Sinks stage: where rendered (or raw) frames go, built from the config's ``sinks`` section.

- :class:`edge_runtime.sinks.mp4.Mp4Sink`: H.264 recordings (overlay ``video``, ``raw``) in fragmented
  mp4, paused below ``sinks.min_free_gb``; :func:`edge_runtime.sinks.recordings.recorder_state` says
  whether they record, paused or failed;
- :class:`edge_runtime.sinks.masks.MaskDumpSink`: ``--save-masks DIR`` mask and ROI PNGs;
- :class:`edge_runtime.sinks.window.WindowSink`: the local window.
:func:`open_sinks` builds them. A sink's ``write`` never blocks the display path for long; its errors
are counted by the pipeline, not raised into it.
"""

from __future__ import annotations

from pathlib import Path

from edge_runtime.config_schema import SinksConfig
from edge_runtime.sinks import recordings
from edge_runtime.sinks.masks import MaskDumpSink
from edge_runtime.sinks.mp4 import Mp4Sink
from edge_runtime.sinks.window import WindowSink


def open_sinks(s: SinksConfig, fps: float, live: bool) -> tuple[dict, WindowSink | None, dict[str, str]]:
    """The config's ``sinks`` section -> (file sinks by name, window or None, the paths they write).
    Live sinks drop frames rather than stall the display, resume after a pause for disk space, and a
    live session never records over an earlier recording (:mod:`edge_runtime.sinks.recordings`: a
    service restarted after a crash). A replay's recorders write every frame or fail: a pause for disk
    space is final, and makes a failed output (:mod:`edge_runtime.sinks.threaded`)."""
    outputs: dict[str, str] = {}
    for k in ("video", "raw", "masks"):
        if getattr(s, k):  # each clear of the paths already taken by the others
            taken = [Path(p) for p in outputs.values()]
            outputs[k] = str(recordings.session_path(getattr(s, k), keep_existing=live, others=taken))
    sinks: dict = {}
    for kind in ("video", "raw"):
        if kind in outputs:
            sinks[kind] = Mp4Sink(
                outputs[kind],
                fps,
                s.preset,
                block=not live,
                name=kind,
                min_free_gb=s.min_free_gb,
                template=getattr(s, kind),
                retention_days=s.retention_days,
                outputs=outputs,
                resume=live,
                timed=live,  # a live session records in real time, whatever the display dropped
                recording=live,  # a replay's output is a result: not tagged, no retention applied
            )
    if "masks" in outputs:
        sinks["masks"] = MaskDumpSink(
            outputs["masks"], block=not live, min_free_gb=s.min_free_gb, resume=live
        )
    window = WindowSink(fullscreen=bool(s.fullscreen)) if s.window else None
    return sinks, window, outputs
