"""The run's figures: :func:`snapshot` (``/stats.json``, the service's metrics, the end of a run) and the
run's summary, ``summary.json`` (``sinks.summary``, ``--summary``).

The snapshot is the stage counters (:class:`edge_runtime.stats.Stats`) plus what the stages hold
now: flicker, recorder drops, the decided ROI or why none is, peak memory, the AI's state and
stalls, frames the AI never answered. The summary adds how the run ended (``state``), the files
written and the recorders that failed, whether the input was de-identified and the corrupt input
frames the source skipped (docs/runtime.md lists every field). It is written atomically and
redacted (:mod:`edge_runtime.privacy`): a failed write names the file and keeps a previous summary
whole. :func:`partial_input_error` says what the outputs hold when the input failed part way.

Inputs: the run's stages (:class:`edge_runtime.pipeline.stages.FrameStages`) and config. Outputs: the
summary dict. Files: ``sinks.summary`` when set.
"""

from __future__ import annotations

from edge_runtime import privacy
from edge_runtime.atomic import atomic_write_text
from edge_runtime.config_schema import RuntimeConfig
from edge_runtime.errors import InputError, SonomapError
from edge_runtime.jsonfile import json_text
from edge_runtime.live_stats import EVENTS
from edge_runtime.memory import GIB, peak_rss_bytes
from edge_runtime.pipeline.stages import FrameStages
from edge_runtime.sinks import recordings
from edge_runtime.sources.corrupt import CORRUPT_INPUT


def corrupt_frames() -> int:
    """Corrupt input frames skipped so far in this process (the counter is process-wide: a run
    reports the difference between its end and its start)."""
    return EVENTS.snapshot().get(CORRUPT_INPUT, 0)


def snapshot(stages: FrameStages, sink_drops: int = 0) -> dict:
    """The run's figures now (``sink_drops``: frames dropped by recorders already closed)."""
    out = stages.stats.snapshot()
    out["flicker"] = round(stages.overlay.flicker, 5)
    out["sink_drops"] = sink_drops + sum(getattr(k, "dropped", 0) for k in stages.sinks.values())
    decided = stages.roi if stages.roi is not None and not stages.roi.undecided else None
    out["roi"] = decided.as_list() if decided else None
    out["mm_per_pixel"] = decided.mm_per_pixel if decided else None
    out["roi_undecided"] = stages.roi.undecided if stages.roi is not None else ""  # why, at the end
    out["roi_undecided_frames"] = stages.rois.undecided_frames  # blanked whole: no image found
    out["peak_rss_gib"] = round(peak_rss_bytes() / GIB, 4)
    out["ai"] = stages.ai_status(roi=stages.roi).as_dict()  # OFF while no ROI is decided
    out["inference_stalls"] = stages.ai.stalls
    # frames handed to the AI that got no answer (a fault, or live's back-off): shown raw, AI ERROR
    out["frames_without_ai"] = stages.guard.unanswered
    return out


def finish(
    summary: dict, stages: FrameStages, config: RuntimeConfig, stalled: bool, skipped: int, live: bool = False
) -> dict:
    """``summary`` (a :func:`snapshot` after the outputs closed) completed with how the run ended and
    what it wrote, and written to ``sinks.summary`` when set; ``skipped``: the corrupt input frames
    the source skipped during the run. The stages' state becomes "stopped". ``live``: an earlier
    session's summary there is kept and this one goes beside it (``-1``, ``-2``...), as a recording
    does (a restarted service); a replay's summary is a result and replaces it."""
    stages.stats.state = "stopped"
    summary["state"] = "stalled" if stalled else "stopped"
    # the files written, strftime fields and suffixes resolved; a failed recorder's file is not one
    # of them (it may be missing, partial, or an earlier run's): it is named under failed_outputs
    summary["outputs"] = {k: v for k, v in stages.outputs.items() if k not in stages.failed_outputs}
    summary["failed_outputs"] = dict(stages.failed_outputs)  # recorder -> why it stopped
    summary["deidentified"] = bool(config.privacy.deidentify)
    # corrupt input frames the source skipped: the outputs lack them, with no error
    summary["input_frames_skipped"] = skipped
    path = config.sinks.summary
    if path:  # atomically: a failed write names the file and keeps a previous summary whole
        path = recordings.session_path(path, keep_existing=True) if live else path
        atomic_write_text(path, json_text(privacy.redact_tree(summary)))
    return summary


def partial_input_error(error: SonomapError, frames: int) -> SonomapError:
    """``error`` of a source that failed after ``frames`` frames, saying what the outputs hold: the
    frames before the bad one, finalised (every recorder closed its file whole)."""
    message = f"{error} (the outputs were finalised with the {frames} frame(s) before it)"
    try:
        return type(error)(message)
    except TypeError:  # an error type with other arguments: the message as an input error
        return InputError(message)
